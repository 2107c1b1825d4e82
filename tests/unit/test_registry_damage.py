"""Issue 20: a registry whose `current` names a version that is gone, and an audit file that
cannot be read, no longer lock the lake: each is one line naming the file and the remedy,
and the remedy works."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest
from test_failure_paths import Lake

from marketlake.engines.duckdb import DuckDBEngine
from marketlake.errors import LakeUnreachable
from marketlake.wap import pipeline as wap
from marketlake.wap import publish as wap_publish
from marketlake.wap import rollback as wap_rollback
from marketlake.wap.versions import DamagedRegistry, load_registry, registry_key

GHOST = "20990101T000000000Z-dead"


@pytest.fixture()
def lake(tmp_path):
    return Lake(tmp_path / "lake", tickers="NVDA,AMD")


def two_versions(lake: Lake):
    lake.ingest("2024-06-03")
    v1 = lake.build()
    lake.ingest("2024-06-10")
    v2 = lake.build()
    return v1, v2


def set_current(lake: Lake, run_id: str) -> None:
    body = json.loads(lake.store.get_bytes(registry_key(wap.TABLE)))
    body["current"] = run_id
    lake.store.put_bytes(registry_key(wap.TABLE), json.dumps(body).encode())


def test_a_dangling_current_is_a_damaged_registry_naming_the_versions_left(lake):
    v1, v2 = two_versions(lake)
    set_current(lake, GHOST)
    with pytest.raises(DamagedRegistry) as caught:
        lake.build()
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith("state/versions/daily_prices.json is damaged: `current` names ")
    assert f"version {GHOST}, which it does not list" in line
    # Newest first, the versions one can switch to, and how.
    assert line.index(v2.run_id) < line.index(v1.run_id)
    assert "marketlake rollback --to RUN_ID" in line
    with pytest.raises(DamagedRegistry):
        lake.rollback()  # no --to: there is no parent to go back to
    with DuckDBEngine(lake.root, read_only=True) as engine, pytest.raises(DamagedRegistry):
        wap.follow_registry_read_only(lake.store, engine)


def test_rollback_to_an_existing_version_repairs_a_dangling_current(lake, monkeypatch):
    v1, _ = two_versions(lake)
    set_current(lake, GHOST)
    commits = []
    real_commit = wap_rollback._commit

    def commit(store, expected, run_id, version=None):
        commits.append((expected, run_id))
        return real_commit(store, expected, run_id, version)

    monkeypatch.setattr(wap_rollback, "_commit", commit)
    assert lake.rollback(to=v1.run_id).run_id == v1.run_id
    # The one conditional write, expecting the damaged current it read.
    assert commits == [(GHOST, v1.run_id)]
    assert load_registry(lake.store, wap.TABLE).current == v1.run_id
    assert lake.count() > 0
    lake.ingest("2024-06-17")
    result = lake.build()
    assert result.status == "published"
    assert load_registry(lake.store, wap.TABLE).get(result.run_id).parent == v1.run_id


def test_a_current_whose_files_are_gone_is_a_damaged_registry(lake):
    v1, v2 = two_versions(lake)
    shutil.rmtree(lake.root / wap.CURATED_PREFIX / f"version={v2.run_id}")
    with pytest.raises(DamagedRegistry) as caught:
        lake.build()
    line = str(caught.value)
    assert f"version {v2.run_id}, whose files are gone" in line
    assert f"version={v2.run_id}/year=" in line
    # Only versions whose files are all there are offered.
    offered = line.split("all there:", 1)[1]
    assert v1.run_id in offered and v2.run_id not in offered
    lake.rollback(to=v1.run_id)
    assert load_registry(lake.store, wap.TABLE).current == v1.run_id


@pytest.mark.parametrize("damage", ["dangling", "files gone"])
def test_build_full_publishes_over_a_damaged_current_with_no_parent(lake, damage):
    _, v2 = two_versions(lake)
    if damage == "dangling":
        set_current(lake, GHOST)
        replaced = GHOST
    else:
        shutil.rmtree(lake.root / wap.CURATED_PREFIX / f"version={v2.run_id}")
        replaced = v2.run_id
    result = lake.build(full=True)
    assert result.status == "published" and result.mode == "full"
    assert f"replaces run {replaced}" in result.message
    registry = load_registry(lake.store, wap.TABLE)
    assert registry.current == result.run_id
    assert registry.get(result.run_id).parent is None
    assert lake.count() > 0


def test_a_build_sets_an_unreadable_audit_file_aside_and_says_so(lake):
    v1, _ = two_versions(lake)
    junk = lake.root / "audit" / "pipeline_runs" / f"{v1.run_id}.parquet"
    junk.write_bytes(b"not parquet at all")
    result = lake.build(force=True)
    assert result.status == "published"
    moved = f"quarantine/audit/pipeline_runs/{v1.run_id}.parquet"
    assert any(
        f"audit/pipeline_runs/{v1.run_id}.parquet" in w and moved in w for w in result.warnings
    )
    assert not junk.exists()
    assert (lake.root / moved).read_bytes() == b"not parquet at all"
    # Every warning is about the file: the views and the run record were made.
    assert len(result.warnings) == 1
    with DuckDBEngine(lake.root, read_only=True) as engine:
        runs = engine.fetch_df("SELECT count(*) AS n FROM pipeline_runs")["n"].iloc[0]
    assert runs == 2  # v2 and this run; v1's record is the one set aside


# -- a full disk names the lake file or folder, and leaves no half-written version ----------


class FullDisk:
    """A DuckDB connection whose disk fills up: `when` statements write, then fail as
    DuckDB fails on ENOSPC."""

    def __init__(self, con, when: str) -> None:
        self.con, self.when = con, when

    def execute(self, sql, *args):
        if sql.startswith(self.when):
            self.con.execute(sql, *args).fetchall()  # some files reach the disk first
            raise duckdb.IOException(
                'IO Error: Could not write file "/tmp/x/data_0.parquet": No space left on device'
            )
        return self.con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.con, name)


def test_a_full_disk_while_duckdb_writes_a_version_names_it_and_leaves_nothing(lake):
    lake.ingest("2024-06-03")
    first = lake.build()
    lake.ingest("2024-06-10")
    with DuckDBEngine(lake.root) as engine:
        engine.con = FullDisk(engine.con, "COPY")
        with pytest.raises(LakeUnreachable) as caught:
            wap.run_build(lake.settings, lake.store, engine)
        engine.con = engine.con.con
    line = str(caught.value)
    assert f"{lake.root / wap.CURATED_PREFIX}/version=" in line
    assert "no space left on device" in line and "free some space" in line
    # abandon() deleted the half-written version; the published one is untouched.
    assert lake.store.list_prefixes(wap.CURATED_PREFIX + "/") == [f"version={first.run_id}"]
    assert load_registry(lake.store, wap.TABLE).current == first.run_id


def test_a_full_disk_while_duckdb_writes_the_catalog_names_it(lake):
    lake.ingest("2024-06-03")
    with DuckDBEngine(lake.root) as engine:
        engine.con = FullDisk(engine.con, "CREATE OR REPLACE VIEW")
        with pytest.raises(LakeUnreachable) as caught:
            engine.create_or_replace_view("v", "SELECT 1 AS x")
        engine.con = engine.con.con
    assert str(caught.value).startswith(f"{lake.root / 'catalog.duckdb'}: no space left")


def test_a_run_record_the_full_disk_refuses_does_not_hide_the_runs_error(lake, monkeypatch):
    lake.ingest("2024-06-03")
    first = lake.build()
    lake.ingest("2024-06-10")

    def refuse(*args, **kwargs):
        raise LakeUnreachable("lake/audit/pipeline_runs/x.parquet", "full", "free space")

    monkeypatch.setattr(wap_publish, "record_run", refuse)
    with DuckDBEngine(lake.root) as engine:
        engine.con = FullDisk(engine.con, "COPY")
        with pytest.raises(LakeUnreachable, match="version="):
            wap.run_build(lake.settings, lake.store, engine)
        engine.con = engine.con.con
    assert lake.store.list_prefixes(wap.CURATED_PREFIX + "/") == [f"version={first.run_id}"]
