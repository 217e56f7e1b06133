"""Check reports reachable from the UI: the key a link carries never leads out of the reports
folder, every link (alerts, the task's summary line, the run's note) is built by one function, and
the serving file carries each layer's report of the pipeline's run, text for text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clv import notify, reports
from clv.airflow import notes, tasks
from clv.names import CHECKED_LAYERS, SUMMARY_PREFIX
from tests.dashboard.conftest import D, query

RUN = "2024-12-31-manual"


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """A data directory with one run's raw report, a secret beside the reports folder, and a
    symlink inside it pointing at that secret."""
    data = tmp_path / "data"
    (data / "reports" / RUN).mkdir(parents=True)
    (data / "reports" / RUN / "raw.md").write_text("# raw checks\n")
    (data / "secret.md").write_text("warehouse password\n")
    (data / "reports" / "evil").mkdir()
    os.symlink(data / "secret.md", data / "reports" / "evil" / "raw.md")
    for name in ("CLV_REPORTS_URL", "CLV_DASHBOARD_URL", "CLV_DASHBOARD_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLV_DATA_DIR", str(data))
    return data / "reports"


@pytest.mark.parametrize(
    "key",
    ["../secret", "..", f"{RUN}/../../secret", "/etc/passwd", "../../etc/passwd", "a/b/c", "./raw", "..%2fsecret",
     f"{RUN}/raw.md", "", "evil/raw"],
)  # fmt: skip
def test_a_key_leading_out_of_the_reports_folder_is_refused(folder, key):
    with pytest.raises(reports.ReportKeyError):
        reports.read(key, folder)


def test_a_key_inside_the_folder_reads_its_report(folder):
    assert reports.read(f"{RUN}/raw", folder) == "# raw checks\n"
    assert reports.read(f"{RUN}/core", folder) is None  # no such file: nothing, not an error
    assert reports.key_of(folder / RUN / "raw.md", folder) == f"{RUN}/raw"
    assert reports.key_of(folder / RUN, folder) is None  # a folder is not a report
    assert reports.key_of(folder.parent / "secret.md", folder) is None


def test_one_function_links_reports_everywhere(folder, monkeypatch):
    path = folder / RUN / "raw.md"
    # the default: the dashboard `make dashboard` serves, on its port
    monkeypatch.setenv("CLV_DASHBOARD_PORT", "8599")
    link = f"http://localhost:8599/?report={RUN}/raw"
    assert notify.report_link(path) == link
    assert notify.report_link(folder.parent / "alerts.jsonl") == str(folder.parent / "alerts.jsonl")
    assert notify.report_link(folder / RUN) == str(folder / RUN)  # the run's folder: its path
    checks = {"passed": 3, "warned": 0, "failed": 0, "warned_checks": [], "report": str(path)}
    assert tasks.summary_line("scan_raw", 1.0, None, checks) == (
        f"{SUMMARY_PREFIX} scan_raw done in 1.0 s | checks 3 passed, 0 warned, 0 failed | report {link}"
    )
    note = notes.note_text("success", {"business_date": "2024-12-31", "scan_raw": {"checks": checks}}, [])
    assert f"- check reports: [raw]({link})" in note.splitlines()
    # a dashboard elsewhere
    monkeypatch.setenv("CLV_DASHBOARD_URL", "https://clv.example.com/dash/")
    assert notify.report_link(path) == f"https://clv.example.com/dash/?report={RUN}/raw"
    # CLV_REPORTS_URL wins
    monkeypatch.setenv("CLV_REPORTS_URL", "https://files.example.com/reports")
    assert notify.report_link(path) == f"https://files.example.com/reports/{RUN}/raw.md"
    # no dashboard, no reports URL: the file's path, as before
    monkeypatch.delenv("CLV_REPORTS_URL")
    monkeypatch.setenv("CLV_DASHBOARD_URL", "none")
    assert notify.report_link(path) == str(path)
    note = notes.note_text("success", {"business_date": "2024-12-31", "scan_raw": {"checks": checks}}, [])
    assert f"- check reports: raw `{path}`" in note.splitlines()


def test_the_serving_file_carries_each_layers_report_of_the_run(pipeline_data):
    """Counted from the files on disk: each layer's report of the business date's run, its text
    exactly as the scan wrote it."""
    on_disk = {p.stem: p.read_text() for p in (pipeline_data / "reports").glob(f"{D}-*/*.md")}
    assert set(CHECKED_LAYERS) <= set(on_disk)
    served = query(
        pipeline_data,
        "SELECT layer, report_key, markdown, passed + warned + failed FROM check_reports WHERE business_date = ?",
        [D],
    )
    assert sorted(layer for layer, *_ in served) == sorted(CHECKED_LAYERS)
    for layer, key, markdown, n in served:
        assert markdown == on_disk[layer] == reports.read(key, pipeline_data / "reports")
        assert markdown.count("\n| ") - 1 >= n > 0  # a table row per check (and the header)
