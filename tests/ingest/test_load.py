"""Loading landed batches: exact, idempotent, quarantining what breaks the contract, reconciled."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pcsv

from clv import ingest
from clv.contract import SOURCES
from generator.chaos import FAULT_FIELDS
from tests.generator.helpers import batches, manifest


def _faults(paths) -> list[dict]:
    opts = pcsv.ConvertOptions(column_types={f.name: f.type for f in FAULT_FIELDS})
    files = sorted((paths.truth / "faults").glob("*.csv"))
    return pa.concat_tables([pcsv.read_csv(f, convert_options=opts) for f in files]).to_pylist()


def test_a_clean_dataset_loads_exactly(clean_loaded):
    paths, summary, con = clean_loaded
    assert summary.rows_quarantined == 0 and not summary.failed
    for name, src in SOURCES.items():
        delivered = sum(manifest(b)["files"][name]["rows"] for b in batches(paths.landing))
        assert con.sql(f"SELECT count(*) FROM raw.{name}").fetchone()[0] == delivered
        # the typed values equal an independent read of the files
        cols = ", ".join(c.name for c in src.columns)
        diff = con.sql(f"""
            SELECT count(*) FROM (
                (SELECT {cols} FROM raw.{name})
                EXCEPT ALL
                (SELECT {cols} FROM read_csv('{paths.landing}/*/{src.filename}', header=true,
                    columns={{{", ".join(f"'{c.name}': '{c.type}'" for c in src.columns)}}}, auto_detect=false))
            )""").fetchone()[0]
        assert diff == 0, name


def test_lineage_points_back_to_the_exact_line(clean_loaded):
    _paths, _, con = clean_loaded
    rows = con.sql("""SELECT order_id, _source_file, _row_number, _batch_date, _file_sha256, _loaded_at
                      FROM raw.orders USING SAMPLE 50 ROWS (reservoir, 7)""").fetchall()
    cache = {}
    for order_id, path, rn, batch_date, sha, loaded_at in rows:
        if path not in cache:
            with open(path, encoding="utf-8") as fh:
                cache[path] = fh.read().split("\n")
        assert cache[path][rn].split(",")[0].strip('"') == order_id
        assert path.split("/")[-2].startswith(str(batch_date))
        assert len(sha) == 64 and loaded_at is not None


def test_replaying_changes_nothing(clean_loaded):
    paths, first, con = clean_loaded
    before = {n: con.sql(f"SELECT count(*) FROM raw_data.{n}").fetchone()[0] for n in SOURCES}
    manifest_rows = con.sql("SELECT count(*) FROM ops.load_manifest").fetchone()[0]
    con.close()
    again = ingest.load(paths.data_dir)
    import duckdb

    con2 = duckdb.connect(str(paths.warehouse))
    assert again.files == [] and again.skipped == len(first.files)
    assert {n: con2.sql(f"SELECT count(*) FROM raw_data.{n}").fetchone()[0] for n in SOURCES} == before
    assert con2.sql("SELECT count(*) FROM ops.load_manifest").fetchone()[0] == manifest_rows
    con2.close()


def test_every_malformed_row_kind_is_quarantined_with_its_reason(heavy_loaded):
    paths, _, con = heavy_loaded
    drifted = {(f["batch"], f["source"]) for f in _faults(paths) if f["fault"] == "schema_drift"}
    expected_reason = {
        "bad_date": "unparseable {column}",
        "bad_enum": "invalid {column}",
        "bad_quantity": "out of range {column}",
        "missing_id": "missing required id {column}",
    }
    checked = {k: 0 for k in expected_reason}
    for f in _faults(paths):
        kind = f["fault"]
        if kind not in expected_reason or (f["batch"], f["source"]) in drifted:
            continue
        row = con.execute(
            f"""SELECT q._reason, q._raw_line FROM raw_invalid.{f["source"]} q
                JOIN ops.load_manifest m ON m.load_id = q._load_id
                WHERE m.batch = ? AND q._row_number = ?""",
            [f["batch"], f["row_number"]],
        ).fetchone()
        assert row is not None, f
        reason, raw_line = row
        want = expected_reason[kind].format(column=f["column"])
        if kind == "bad_date":
            # the parser rejected the line: the original line is kept, the reason names the column
            assert raw_line is not None and f["column"] in reason and f["value"] in raw_line, (f, row)
        else:
            assert want in reason, (f, reason)
        checked[kind] += 1
    assert all(n > 10 for n in checked.values()), checked


def test_duplicates_and_orphans_stay_in_raw(heavy_loaded):
    """Raw is the faithful record: a duplicated row is loaded twice, an orphan is loaded as is."""
    paths, _, con = heavy_loaded
    faults = [f for f in _faults(paths) if f["fault"] in ("duplicate", "orphan_fk")]
    drifted = {(f["batch"], f["source"]) for f in _faults(paths) if f["fault"] == "schema_drift"}
    corrupted = {
        (f["batch"], f["source"], f["row_number"])
        for f in _faults(paths)
        if f["fault"] in ("bad_date", "bad_enum", "bad_quantity", "missing_id")
    }
    n = 0
    for f in faults[:300]:
        if (f["batch"], f["source"]) in drifted or (f["batch"], f["source"], f["row_number"]) in corrupted:
            continue
        src = SOURCES[f["source"]]
        got = con.execute(
            f"""SELECT r.{src.primary_key[0]} FROM raw.{f["source"]} r
                WHERE r._batch = ? AND r._row_number = ?""",
            [f["batch"], f["row_number"]],
        ).fetchone()
        if f["fault"] == "duplicate":
            original = int(f["detail"].removeprefix("copy of row "))
            if (f["batch"], f["source"], original) in corrupted:
                continue
            assert got is not None and got[0] == f["key"]
        else:
            assert got is not None
            cust = con.execute(
                f"SELECT customer_id FROM raw.{f['source']} WHERE _batch = ? AND _row_number = ?",
                [f["batch"], f["row_number"]],
            ).fetchone()[0]
            assert cust == f["value"]
        n += 1
    assert n > 50


def test_drifted_files_are_quarantined_whole_and_siblings_load(heavy_loaded):
    paths, _summary, con = heavy_loaded
    drifts = {(f["batch"], f["source"]): f for f in _faults(paths) if f["fault"] == "schema_drift"}
    assert drifts
    quarantined = {
        (b, s): (reason, found)
        for b, s, reason, found in con.sql(
            "SELECT batch, source, reason, found_columns FROM raw_invalid.files"
        ).fetchall()
    }
    assert set(quarantined) == set(drifts)
    for key, (reason, found) in quarantined.items():
        assert reason.startswith("schema drift:")
        header = (paths.landing / key[0] / SOURCES[key[1]].filename).open().readline().rstrip("\n").split(",")
        assert found == header
    for batch, _source in drifts:
        siblings = con.execute(
            "SELECT count(*) FROM ops.load_manifest WHERE batch = ? AND status = 'loaded'", [batch]
        ).fetchone()[0]
        assert siblings >= len(SOURCES) - sum(1 for b, _ in drifts if b == batch)


def test_redelivered_batches_are_recorded_as_duplicates(heavy_loaded):
    paths, _, con = heavy_loaded
    redelivered = [b.name for b in batches(paths.landing) if b.name.endswith("-redelivery")]
    assert redelivered, "heavy chaos redelivers a batch for this seed"
    for b in redelivered:
        rows = con.execute(
            "SELECT status, duplicate_of FROM ops.load_manifest WHERE batch = ?", [b]
        ).fetchall()
        assert len(rows) == len(SOURCES)
        assert all(status == "duplicate" and dup is not None for status, dup in rows)
        assert con.execute("SELECT count(*) FROM raw.orders WHERE _batch = ?", [b]).fetchone()[0] == 0


def test_reconciliation_is_exact_under_heavy_chaos(heavy_loaded):
    _, summary, con = heavy_loaded
    rows = ingest.reconcile(con)
    assert rows and all(r["reconciled"] for r in rows), [r for r in rows if not r["reconciled"]]
    assert sum(r["rows_quarantined"] for r in rows) == summary.rows_quarantined
    assert summary.rows_quarantined > 1000
    # the delivering system's own row counts agree with what we counted
    assert all(r["rows_delivered"] == r["rows_in_file"] for r in rows if r["rows_delivered"] is not None)


def test_the_summary_counts_reasons(heavy_loaded):
    _, summary, _ = heavy_loaded
    d = summary.as_dict()
    assert d["rows_quarantined"] == sum(f.rows_quarantined for f in summary.files)
    reasons = d["quarantine_reasons"]
    assert any(k.startswith("unparseable") for k in reasons)
    assert any(k.startswith("missing required id") for k in reasons)
    assert any(k.startswith("file: schema drift") for k in reasons)
