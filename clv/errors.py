"""The project's error vocabulary: what went wrong decides who hears of it and whether to retry.

Every error the pipeline raises on purpose derives from ``ClvError`` and carries a one-line
message that says what was wrong and what to do. Two bases sort them by cause:

- ``UserError``: the user's input or configuration is wrong (a bad flag, a missing file, a
  malformed setting, a refused environment name). The CLI prints the line and exits with code 2;
  an Airflow task fails at once, without retries (retrying cannot fix it).
- ``TransientError``: the world is not ready yet (a batch still landing, a file being written, the
  warehouse held by another writer). The CLI prints the line and exits with code 2 (nothing was
  changed; run it again later); an Airflow task is retried with its back-off.

``CheckFailed`` is the third outcome: the data broke an error-level check. Not the user's doing
and not transient: exit code 1, no retry, downstream layers do not run.

Anything else is a bug and keeps its traceback. The rules live in one place each:
``clv.cli.main`` (exit codes) and ``clv.airflow.tasks.run_step`` (retry or fail).
"""

from __future__ import annotations


class ClvError(Exception):
    """An error the pipeline raises on purpose, with a one-line message."""

    exit_code = 1
    retry = False
    # True on an error whose owners have heard of it already (clv.notify: a layer's failed checks,
    # sent check by check): its failure alert is recorded, not sent again
    notified = False


class UserError(ClvError):
    """Wrong input or configuration: exit code 2, never retried."""

    exit_code = 2


class TransientError(ClvError):
    """Not ready yet or busy: retried with back-off by Airflow; exit code 2 in the CLI."""

    exit_code = 2
    retry = True


class CheckFailed(ClvError):
    """An error-level check failed: exit code 1, not retried; downstream does not run."""
