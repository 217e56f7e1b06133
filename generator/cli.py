"""``python -m generator``: synthetic source systems for the CLV & churn pipeline."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from clv import settings
from clv.errors import UserError
from clv.names import DEFAULT_HISTORY_END, DEFAULT_HISTORY_START
from generator.profiles import PROFILES


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {value!r}: use YYYY-MM-DD") from None


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {value!r}: use a whole number") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {n}")
    return n


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage first by default)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m generator", description=__doc__)
    sub = p.add_subparsers(dest="mode", required=True, parser_class=_Parser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--chaos",
        default="realistic",
        choices=list(PROFILES),
        help="fault injection level: duplicates, malformed rows, orphans, late events, "
        "schema drift, redelivered batches (default: realistic)",
    )
    common.add_argument(
        "--data-dir",
        default=None,
        help="where landing/, state/ and truth/ go (default: $CLV_DATA_DIR or ./data)",
    )
    common.add_argument("--quiet", action="store_true", help="no progress bar")
    h = sub.add_parser(
        "history",
        parents=[common],
        help="write the whole history as one batch",
        description="Simulate every customer from signup to one year past --end; write "
        "what the sources exported by --end as the history batch.",
    )
    h.add_argument(
        "--customers",
        type=_positive_int,
        default=None,
        help="customers who sign up between --start and --end (default: $CLV_CUSTOMERS or 100000)",
    )
    h.add_argument(
        "--start",
        type=_date,
        default=DEFAULT_HISTORY_START,
        help=f"first signup date (default {DEFAULT_HISTORY_START})",
    )
    h.add_argument(
        "--end",
        type=_date,
        default=DEFAULT_HISTORY_END,
        help="business end date of the history batch (default 2024-12-31)",
    )
    h.add_argument("--seed", type=int, default=42, help="random seed; same seed, same bytes (default 42)")
    h.add_argument("--force", action="store_true", help="replace an existing history in the data dir")
    d = sub.add_parser(
        "day",
        parents=[common],
        help="write one business day's batch",
        description="Write the batch the sources export on DATE, continuing the history.",
    )
    d.add_argument("date", type=_date, help="business date, YYYY-MM-DD, after the history's end date")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = settings.paths(args.data_dir)
    from generator import runner  # heavy (numpy, pyarrow, scipy): not needed for --help or bad args

    try:
        if args.mode == "history":
            summary = runner.history(
                paths,
                args.customers if args.customers is not None else settings.customers(),
                args.start,
                args.end,
                seed=args.seed,
                chaos=args.chaos,
                force=args.force,
                progress=not args.quiet,
            )
        else:
            summary = runner.day(paths, args.date, chaos=args.chaos)
    except UserError as e:  # GeneratorError and SettingError: one line, exit code 2
        print(f"generator: error: {e}", file=sys.stderr)
        return 2
    print(summary.line())
    return 0
