"""Issue 11: a lake that was moved, killed, half-published or damaged still serves exactly
what its version registry says, or says what is wrong and what to do."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil

import duckdb
import pytest
from test_failure_paths import Lake as FailureLake

from marketlake import storage
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.errors import BuildBlocked, MarketlakeError
from marketlake.lake import raw
from marketlake.lake.state import forget_landed, landed_key, load_landed
from marketlake.lock import lake_lock
from marketlake.wap import build as wap_build
from marketlake.wap import pipeline as wap
from marketlake.wap import publish as wap_publish
from marketlake.wap.versions import load_registry, registry_key


class Lake(FailureLake):
    def __init__(self, root) -> None:
        super().__init__(root, tickers="NVDA,AMD")

    def scalar(self, sql: str):
        """What a reader (`marketlake query`) sees: a read-only catalog."""
        with DuckDBEngine(self.root, read_only=True) as engine:
            wap.follow_registry_read_only(self.store, engine)
            return engine.fetch_df(sql).iloc[0, 0]


@pytest.fixture()
def lake(tmp_path):
    return Lake(tmp_path / "lake")


# -- 8. a moved or copied lake reads its own files ------------------------------------------


def newest(lake: Lake, relation: str) -> str:
    return str(lake.scalar(f"SELECT max(trade_date) FROM {relation}"))[:10]


def catalog_sql(lake: Lake, name: str = "daily_prices") -> str:
    """The catalog's own definition of a view, as any DuckDB client sees it."""
    con = duckdb.connect(str(lake.root / "catalog.duckdb"), read_only=True)
    try:
        found = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = ?", [name]).fetchall()
    finally:
        con.close()
    return found[0][0] if found else ""


def test_a_copied_lake_reads_its_own_files_not_the_originals(lake, tmp_path):
    lake.ingest("2024-06-03")
    lake.build()
    rows = lake.scalar("SELECT count(*) FROM daily_prices")
    copy = Lake(tmp_path / "copy")
    shutil.copytree(lake.root, copy.root, symlinks=True)
    # The original goes away: a copy that still read it would fail or answer wrongly.
    shutil.rmtree(lake.root)
    assert copy.scalar("SELECT count(*) FROM daily_prices") == rows
    assert copy.scalar("SELECT count(*) FROM raw_daily_prices") == rows
    assert copy.scalar("SELECT count(*) FROM pipeline_runs") == 1
    assert copy.scalar("SELECT count(*) FROM latest_prices") == 2


def test_the_confined_query_reader_reads_a_copied_lakes_own_files(lake, tmp_path):
    """`marketlake query`'s reader may open only the lake's zones, and DuckDB checks a path
    as written: the catalog's lake-relative views must still read, and read the copy."""
    lake.ingest("2024-06-03")
    lake.build()
    rows = lake.scalar("SELECT count(*) FROM daily_prices")
    copy = tmp_path / "copy"
    shutil.copytree(lake.root, copy, symlinks=True)
    shutil.rmtree(lake.root)
    with DuckDBEngine(copy, read_only=True, confined=True) as reader:
        for table, expected in (("daily_prices", rows), ("raw_daily_prices", rows)):
            got = reader.fetch_read(f"SELECT count(*) AS n FROM {table}").to_pylist()
            assert got == [{"n": expected}], table
        assert reader.fetch_read("SELECT count(*) AS n FROM latest_prices").to_pylist() == [
            {"n": 2}
        ]
        with pytest.raises(MarketlakeError, match="outside the lake"):
            reader.fetch_read(f"SELECT * FROM read_csv('{copy}/state/ingest_state.json')")


def test_the_catalog_holds_no_absolute_path(lake):
    lake.ingest("2024-06-03")
    lake.build()
    con = duckdb.connect(str(lake.root / "catalog.duckdb"), read_only=True)
    try:
        sql = " ".join(s for (s,) in con.execute("SELECT sql FROM duckdb_views()").fetchall())
    finally:
        con.close()
    assert "curated/daily_prices/version=" in sql
    assert str(lake.root) not in sql


# -- 9. leftovers of a kill are cleaned by the next command that holds the lock ---------------


def test_the_lock_holder_removes_temp_files_a_kill_left(lake):
    lake.ingest("2024-06-03")
    leftovers = [
        lake.root / "state" / "versions" / ".daily_prices.json.k1ll3d.tmp",
        lake.root / "audit" / "pipeline_runs" / ".20240603T000000000Z-abcd.parquet.x1.tmp",
        lake.root / "state" / ".ingest_state.json.x2.tmp",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    kept = lake.root / "state" / "ingest_state.json"
    with lake_lock(lake.root):
        assert [p for p in leftovers if p.exists()] == []
    assert kept.is_file()
    assert (lake.root / ".lock").is_file()


# -- 6. the registry and the catalog never disagree -------------------------------------------


def two_versions(lake: Lake):
    lake.ingest("2024-06-03")
    first = lake.build()
    lake.ingest("2024-06-10")
    return first


def test_readers_follow_the_registry_when_a_kill_left_the_catalog_behind(lake):
    two_versions(lake)
    catalog = (lake.root / "catalog.duckdb").read_bytes()
    second = lake.build()
    rows = lake.scalar("SELECT count(*) FROM daily_prices")
    # The kill came after the registry named the second version, before the catalog did.
    (lake.root / "catalog.duckdb").write_bytes(catalog)
    assert f"version={second.run_id}" not in catalog_sql(lake)
    assert lake.scalar("SELECT count(*) FROM daily_prices") == rows
    assert newest(lake, "latest_prices") == "2024-06-10"
    # The next build completes the publish in the catalog itself.
    assert lake.build().status == "skipped"
    assert f"version={second.run_id}" in catalog_sql(lake)


def test_readers_follow_the_registry_when_the_catalog_is_ahead_of_it(lake):
    first = two_versions(lake)
    registry = lake.store.get_bytes(registry_key(wap.TABLE))
    lake.build()
    # The registry never named the second version: readers must not see it.
    lake.store.put_bytes(registry_key(wap.TABLE), registry)
    assert newest(lake, "daily_prices") == "2024-06-03"
    lake.build()  # builds the second day again, from the first version
    current = load_registry(lake.store, wap.TABLE).current_version()
    assert current.parent == first.run_id
    assert all(loc in catalog_sql(lake) for loc in current.partitions.values())


def test_a_deleted_catalog_is_rebuilt_by_the_next_build(lake):
    lake.ingest("2024-06-03")
    lake.build()
    rows = lake.scalar("SELECT count(*) FROM daily_prices")
    (lake.root / "catalog.duckdb").unlink()
    assert lake.build().status == "skipped"
    assert lake.scalar("SELECT count(*) FROM daily_prices") == rows
    for view in ("latest_prices", "symbol_freshness", "pipeline_health", "price_history"):
        assert lake.scalar(f"SELECT count(*) FROM {view}") > 0, view
    assert lake.scalar("SELECT count(*) FROM raw_daily_prices") == rows


@pytest.mark.parametrize("step", ["catalog", "run record", "views"])
def test_a_failure_after_the_publish_is_a_warning_not_a_failed_build(lake, monkeypatch, step):
    two_versions(lake)
    real_publish, real_write_run = DuckDBEngine.publish, wap_build.write_run

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if step == "catalog":
        calls = []

        def publish(self, table, partitions):
            calls.append(table)
            if len(calls) > 1:  # the switch to the new version, not the follow at the start
                disk_full()
            return real_publish(self, table, partitions)

        monkeypatch.setattr(DuckDBEngine, "publish", publish)
    elif step == "run record":
        monkeypatch.setattr(
            wap_build,
            "write_run",
            lambda store, rec: (
                disk_full() if rec.status == "published" else real_write_run(store, rec)
            ),
        )
    else:
        monkeypatch.setattr(wap_publish, "create_views", disk_full)
    result = lake.build()
    monkeypatch.undo()
    assert result.status == "published"
    assert any("No space left" in w for w in result.warnings)
    assert load_registry(lake.store, wap.TABLE).current == result.run_id
    assert newest(lake, "daily_prices") == "2024-06-10"


# -- 7. durable before visible ---------------------------------------------------------------


def test_the_new_versions_files_and_directories_are_synced_before_the_publish(lake, monkeypatch):
    lake.ingest("2024-06-03")
    synced, at_publish = [], []
    real_fsync, real_save = storage.os.fsync, wap_publish.update_registry

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    def update_registry(store, table, change):
        at_publish.extend(synced)
        return real_save(store, table, change)

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(wap_publish, "update_registry", update_registry)
    result = lake.build()
    version = lake.root / wap.CURATED_PREFIX / f"version={result.run_id}"
    files = [str(p) for p in version.rglob("*.parquet")]
    folders = [str(p) for p in version.rglob("*") if p.is_dir()]
    assert files and folders
    needed = files + folders + [str(version), str(version.parent)]
    assert [p for p in needed if p not in at_publish] == []


# -- 2. a raw file that loses bars is detected, never published around ----------------------


def truncate(lake: Lake, day: str, symbol: str, keep: int) -> str:
    """Keep the header and the first `keep` rows of a raw object, as a damaged disk might."""
    key = f"{raw.RAW_PREFIX}ingest_date={day}/{symbol}.csv"
    lines = lake.store.get_bytes(key).split(b"\r\n")
    lake.store.put_bytes(key, b"\r\n".join(lines[: 1 + keep]) + b"\r\n")
    return key


def symbol_rows(lake: Lake, symbol: str) -> int:
    return int(lake.scalar(f"SELECT count(*) FROM daily_prices WHERE symbol = '{symbol}'"))


def test_every_symbol_short_of_rows_is_in_the_refetch_remedy(lake):
    two_versions(lake)
    truncate(lake, "2024-06-10", "NVDA", 1)
    truncate(lake, "2024-06-10", "AMD", 0)
    with pytest.raises(BuildBlocked) as caught:
        lake.build()
    assert "`marketlake ingest --refetch AMD,NVDA`" in str(caught.value)
    assert "(and 1 more raw object(s))" in str(caught.value)


def test_a_new_folder_is_synced_into_its_parent(lake, monkeypatch):
    """A power cut must not lose a new ingest_date=D/ folder (and the object in it): each new
    folder's entry is synced in its parent, as the file's is in its folder."""
    lake.root.mkdir(parents=True, exist_ok=True)
    synced = []
    real = storage._fsync_dir
    monkeypatch.setattr(storage, "_fsync_dir", lambda path: (synced.append(path), real(path)))
    lake.store.put_bytes("raw/daily_prices/ingest_date=2024-06-03/NVDA.csv", b"x")
    root = lake.root
    assert synced == [
        root,
        root / "raw",
        root / "raw" / "daily_prices",
        root / "raw" / "daily_prices" / "ingest_date=2024-06-03",
    ]


def test_a_raw_object_that_lost_rows_blocks_the_build_naming_it(lake):
    first = two_versions(lake)
    landed = (
        len(lake.store.get_bytes(f"{raw.RAW_PREFIX}ingest_date=2024-06-10/NVDA.csv").split(b"\r\n"))
        - 2
    )
    key = truncate(lake, "2024-06-10", "NVDA", 1)
    with pytest.raises(BuildBlocked) as caught:
        lake.build()
    message = str(caught.value)
    assert f"raw object {key} changed since it landed (its {landed} rows were recorded" in message
    assert "S3 versioning" in message and "marketlake ingest --refetch NVDA" in message
    assert "\n" not in message
    assert load_registry(lake.store, wap.TABLE).current == first.run_id


def test_a_row_the_csv_reader_cannot_parse_is_quarantined_not_counted_as_lost(lake):
    """Reconciliation counts the rows the reader rejected: they are kept, in quarantined_rows
    (issue 11, point 3), so only rows that are gone block the build."""
    two_versions(lake)
    key = f"{raw.RAW_PREFIX}ingest_date=2024-06-10/NVDA.csv"
    lines = lake.store.get_bytes(key).split(b"\r\n")
    lines[2] = lines[2] + b",surplus,fields"
    lake.store.put_bytes(key, b"\r\n".join(lines))
    # An object with a landing record is checked by digest first (and blocks): this one is
    # as a lake from before the records, or one put there by hand, would have it.
    forget_landed(lake.store, key)
    # One lake of one symbol: one bad row of six is over the default 5% gate.
    lake.settings = dataclasses.replace(lake.settings, max_bad_row_pct=50.0)
    result = lake.build()
    assert result.status == "published"
    kept = lake.scalar(f"SELECT count(*) FROM quarantined_rows WHERE raw_object = '{key}'")
    assert kept == 1


def test_a_full_build_blocks_on_an_emptied_raw_object_of_any_day(lake):
    two_versions(lake)
    lake.build()
    key = truncate(lake, "2024-06-03", "AMD", 0)
    with pytest.raises(BuildBlocked, match=f"raw object {key} changed since it landed"):
        lake.build(full=True)


def test_refetch_lands_the_window_again_so_the_build_publishes_every_bar(lake, tmp_path):
    clean = Lake(tmp_path / "clean")
    two_versions(clean)
    clean.build(full=True)
    two_versions(lake)
    lake.build()
    truncate(lake, "2024-06-03", "NVDA", 3)
    with pytest.raises(BuildBlocked):
        lake.build(full=True)
    report = lake.ingest("2024-06-10", refetch=["NVDA"])
    assert [r.status for r in report.results if r.symbol == "NVDA"] == ["fetched"]
    assert lake.build(full=True).status == "published"
    assert symbol_rows(lake, "NVDA") == symbol_rows(clean, "NVDA")
    assert symbol_rows(lake, "AMD") == symbol_rows(clean, "AMD")


def test_ingest_and_import_record_rows_and_digest_of_each_raw_object(lake):
    lake.ingest("2024-06-03")
    key = f"{raw.RAW_PREFIX}ingest_date=2024-06-03/NVDA.csv"
    data = lake.store.get_bytes(key)
    record = load_landed(lake.store, landed_key(key))[key]
    assert record["rows"] == len(raw.read_csv(data))
    assert record["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_reader_shadows_the_catalog_only_when_it_disagrees_with_the_registry(lake):
    two_versions(lake)
    catalog = (lake.root / "catalog.duckdb").read_bytes()
    lake.build()
    current = load_registry(lake.store, wap.TABLE).current_version()
    with DuckDBEngine(lake.root, read_only=True) as engine:
        assert engine.follow(wap.TABLE, current.partitions) is False
    (lake.root / "catalog.duckdb").write_bytes(catalog)
    with DuckDBEngine(lake.root, read_only=True) as engine:
        assert engine.follow(wap.TABLE, current.partitions) is True
