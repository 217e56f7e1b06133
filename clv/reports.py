"""Where a check report lives and how a link names it.

Every layer's Soda scan writes ``<data dir>/reports/<run>/<layer>.md`` (``clv.quality``), and a
link names a report by its *key*, ``<run>/<layer>``: the dashboard opens ``?report=<key>``, and
``CLV_REPORTS_URL`` serves ``<key>.md``. A key arrives from outside (a URL a person edited, a run
id read back from the warehouse), so it is checked here, once, before it becomes a path: one
folder name and one file name of plain characters, and a path that, resolved (symlinks
followed), still lies inside the reports folder. Anything else is refused with a ``ReportKeyError``
and no file is touched. (``clv.notify.report_link`` builds the links; the dashboard and
``clv.publish`` read reports through ``read``.)
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from clv.errors import UserError

SUFFIX = ".md"
# A run folder (``ops.StepRun.report_id``: letters, digits, ``-_.``; an environment's runs add
# ``@<environment>``), then a report's name (a layer, ``summary``, ``review``).
KEY = re.compile(r"(?P<run>[A-Za-z0-9_][A-Za-z0-9._@-]{0,199})/(?P<name>[A-Za-z0-9_-]{1,64})")
QUERY_PARAM = "report"  # the dashboard's ?report=<key>


class ReportKeyError(UserError):
    """A report key that does not name a report inside the reports folder."""


def path_of(key: str, reports_dir: Path) -> Path:
    """The file of the report ``key`` names; refuses a key that is not ``<run>/<name>`` of plain
    characters, or whose file (symlinks resolved) lies outside ``reports_dir``. The file need not
    exist."""
    m = KEY.fullmatch(key or "")
    if m is None or m["run"].strip(".") == "":
        raise ReportKeyError(f"{key!r} is not a report key (<run>/<layer>, e.g. 2024-12-31-manual/raw)")
    root = Path(reports_dir).resolve()
    path = (root / m["run"] / (m["name"] + SUFFIX)).resolve()
    if not path.is_relative_to(root):
        raise ReportKeyError(f"{key!r} points outside the reports folder {root}")
    return path


def key_of(path: str | Path, reports_dir: Path) -> str | None:
    """The key of a report file directly in a run folder of ``reports_dir``; None for any other
    path (a folder, ``alerts.jsonl``, a file elsewhere)."""
    path = Path(path)
    if path.suffix != SUFFIX:
        return None
    try:
        parts = path.resolve().relative_to(Path(reports_dir).resolve()).parts
    except ValueError:
        return None
    if len(parts) != 2:
        return None
    key = f"{parts[0]}/{Path(parts[1]).stem}"
    return key if KEY.fullmatch(key) else None


def read(key: str, reports_dir: Path) -> str | None:
    """The report's Markdown, or None when there is no such file (or it cannot be read);
    ``ReportKeyError`` for a key that escapes the folder (``path_of``)."""
    path = path_of(key, reports_dir)
    try:
        return path.read_text(errors="replace") if path.is_file() else None
    except OSError:
        return None


def dashboard_link(key: str, dashboard_url: str) -> str:
    """The dashboard's page of one report: ``<dashboard url>/?report=<run>/<layer>``."""
    return f"{dashboard_url.rstrip('/')}/?{QUERY_PARAM}={quote(key, safe='/@')}"
