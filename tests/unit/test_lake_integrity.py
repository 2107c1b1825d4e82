"""Issue 11: a lake that was moved, killed, half-published or damaged still serves exactly
what its version registry says, or says what is wrong and what to do."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import pytest

from marketlake.build import wap
from marketlake.config import Settings
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.ingest.runner import run_ingest
from marketlake.lock import lake_lock
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.sessions import EASTERN
from marketlake.storage import LocalStore


def after_close(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(23, 0), tzinfo=EASTERN)


class Lake:
    def __init__(self, root) -> None:
        self.root = root
        self.store = LocalStore(root)
        self.settings = Settings.from_env(
            {
                "MARKETLAKE_HOME": str(root),
                "MARKETLAKE_TICKERS": "NVDA,AMD",
                "MARKETLAKE_HISTORY_DAYS": "60",
            }
        )

    def ingest(self, day: str, **kwargs):
        moment = after_close(day)
        return run_ingest(
            self.settings, self.store, SyntheticProvider(), moment, now=lambda: moment, **kwargs
        )

    def build(self, **kwargs):
        with DuckDBEngine(self.root) as engine:
            return wap.run_build(self.settings, self.store, engine, **kwargs)

    def scalar(self, sql: str):
        """What a reader (`marketlake query`) sees: a read-only catalog."""
        with DuckDBEngine(self.root, read_only=True) as engine:
            getattr(wap, "follow_registry_read_only", lambda *a: None)(self.store, engine)
            return engine.fetch_df(sql).iloc[0, 0]


@pytest.fixture()
def lake(tmp_path):
    return Lake(tmp_path / "lake")


# -- 8. a moved or copied lake reads its own files ------------------------------------------


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
