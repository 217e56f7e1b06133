"""The check reports the dashboard's report page shows, read from the serving file.

``clv.publish`` copies each layer's latest Markdown check report of the last
``CLV_HEALTH_HISTORY_DAYS`` business dates into ``check_reports``: the dashboard reads them there
because in the team deployment the serving file is all it mounts (docker-compose.yaml). A report
the serving file does not hold — a run that stopped before publishing, on the very failure an
alert links to — is read from ``<data dir>/reports`` when that folder is reachable (`make
dashboard` on the pipeline's machine). A key from the page's URL becomes a path only through
``clv.reports.path_of``, which refuses anything outside the reports folder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from clv import reports, settings
from dashboard.data import LAYERS, Serving

SERVING = "the serving file"


@dataclass(frozen=True)
class Report:
    key: str
    markdown: str | None  # None: listed, but its file was gone at publish
    source: str  # SERVING, or the reports folder it was read from
    business_date: dt.date | None = None
    layer: str | None = None


def available(s: Serving) -> bool:
    return s.has("check_reports")


def listing(s: Serving) -> pd.DataFrame:
    """Every report in the serving file, newest business date first, layers in build order:
    report_key, business_date, layer, passed, warned, failed, scanned_at."""
    if not available(s):
        return pd.DataFrame(
            columns=["report_key", "business_date", "layer", "passed", "warned", "failed", "scanned_at"]
        )
    return s.df(
        "SELECT report_key, business_date, layer, passed, warned, failed, scanned_at FROM check_reports "
        "ORDER BY business_date DESC, coalesce(list_position(?, layer), 99), layer",
        [list(LAYERS)],
    )


def report(s: Serving, key: str) -> Report | None:
    """The report ``key`` names: the serving file's copy, else the file in the reports folder,
    else None. ``clv.reports.ReportKeyError`` for a key that is malformed or leads out of the
    reports folder, before anything is read."""
    folder = settings.paths().reports
    reports.path_of(key, folder)  # refuses a bad key whichever source answers
    if available(s):
        row = s.con.execute(
            "SELECT markdown, business_date, layer FROM check_reports WHERE report_key = ?", [key]
        ).fetchone()
        if row is not None:
            return Report(key, row[0], SERVING, row[1], row[2])
    text = reports.read(key, folder)
    return None if text is None else Report(key, text, str(folder))


def for_display(markdown: str) -> str:
    """The report's Markdown as Streamlit should draw it: a dollar sign is a dollar, not the
    start of a formula (values and failing rows carry amounts)."""
    return markdown.replace("$", "\\$")
