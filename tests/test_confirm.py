"""A second `clv run` for a business date already published confirms it (clv/confirm.py): nothing
runs, the serving file stays as it is, the run report and summary are printed again; and what
makes the day run again (a file that landed, a step that ran since) is noticed. The first run also
shows its layer steps sharing one SQLMesh context."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import pytest

from clv import confirm, pipeline
from clv.names import DEFAULT_HISTORY_END
from clv.settings import PROJECT_ROOT

D = DEFAULT_HISTORY_END


def _run(data, *extra: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "SQLMESH__DISABLE_ANONYMIZED_ANALYTICS": "1"}
    cmd = [sys.executable, "-m", "clv.cli", "run", "--no-airflow", "--data-dir", str(data)]
    cmd += ["--customers", "800", "--start", "2024-06-01", "--chaos", "none", *extra]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def _state(data) -> tuple[dict, object]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        steps = dict(con.execute("SELECT task_id, count(*) FROM ops.pipeline_runs GROUP BY 1").fetchall())
    with duckdb.connect(str(data / "serving.duckdb"), read_only=True) as con:
        (published,) = con.execute("SELECT published_at FROM serving_info").fetchone()
    return steps, published


@pytest.mark.slow
def test_a_published_day_is_confirmed_until_something_changes(tmp_path):
    data = tmp_path / "data"
    first = _run(data)
    assert "already published" not in first
    steps, published = _state(data)
    assert steps["publish"] == 1 and confirm.CONFIRM_TASK not in steps
    # The layer steps of the run shared one SQLMesh context (clv.transform.shared_context).
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        loaded = dict(
            con.execute(
                "SELECT task_id, json_extract_string(detail, '$.sqlmesh_context') FROM ops.pipeline_runs "
                "WHERE task_id LIKE 'transform_%'"
            ).fetchall()
        )
    assert loaded["transform_staging"].startswith("loaded in"), loaded
    assert all(
        loaded[f"transform_{layer}"].startswith("reused") for layer in ("core", "intermediate", "marts")
    )

    second = _run(data)
    assert f"business date {D} is already published" in second, second[-2000:]
    assert "Top customers by predicted 12-month CLV" in second  # the summary, read again
    assert "transform_marts" in second  # the run report of the run that published it
    again, published_again = _state(data)
    assert published_again == published  # the serving file was not rebuilt
    assert again == {**steps, confirm.CONFIRM_TASK: 1}  # nothing ran but the confirmation

    assert confirm.check(D, data)
    # A file lands for the date: until it is loaded, the day is not confirmed.
    late = data / "landing" / f"{D.isoformat()}-late"
    late.mkdir()
    (late / "orders.csv").write_text((data / "landing" / D.isoformat() / "orders.csv").read_text()[:2000])
    assert "still arriving" in confirm.check(D, data).reason
    (late / "_manifest.json").write_text(json.dumps({"batch_date": D.isoformat()}))
    assert "has not been loaded" in confirm.check(D, data).reason
    for p in late.iterdir():
        p.unlink()
    late.rmdir()
    assert confirm.check(D, data)
    # A step runs after the publish (here a raw scan): the day runs again.
    pipeline.scan_raw(D, data_dir=data)
    reason = confirm.check(D, data).reason
    assert reason and "ran after it was published" in reason
    # Another date is never confirmed by this one's publish.
    assert "serving file holds" in confirm.check(D.replace(day=30), data).reason
