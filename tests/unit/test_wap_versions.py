"""Versions, rollback, retention and incremental builds of daily_prices on DuckDB."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from marketlake import sqlfiles
from marketlake.config import Settings
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.errors import MarketlakeError
from marketlake.ingest.runner import run_ingest
from marketlake.lake import actions, raw
from marketlake.lake.state import load_state
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.sessions import EASTERN, sessions_between
from marketlake.storage import LocalStore
from marketlake.wap.pipeline import (
    CURATED_PREFIX,
    RSI_SEEDED_WINDOWS,
    TABLE,
    plan,
    rollback,
    run_build,
)
from marketlake.wap.versions import load_registry

ALL = f"SELECT * FROM {TABLE} ORDER BY symbol, trade_date"


def after_close(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(23, 0), tzinfo=EASTERN)


class Lake:
    def __init__(self, root, history_days: int = 3000, keep: int = 5) -> None:
        self.root = root
        self.store = LocalStore(root)
        self.settings = Settings.from_env(
            {
                "MARKETLAKE_HOME": str(root),
                "MARKETLAKE_TICKERS": "NVDA,AMD",
                "MARKETLAKE_HISTORY_DAYS": str(history_days),
                "MARKETLAKE_KEEP_VERSIONS": str(keep),
            }
        )

    def ingest(self, day: str, tickers=None):
        moment = after_close(day)
        return run_ingest(
            self.settings,
            self.store,
            SyntheticProvider(),
            moment,
            tickers=tickers,
            now=lambda: moment,
        )

    def build(self, **kwargs):
        with DuckDBEngine(self.root) as engine:
            return run_build(self.settings, self.store, engine, **kwargs)

    def rows(self, sql: str = ALL) -> list[dict]:
        with DuckDBEngine(self.root, read_only=True) as engine:
            return engine.fetch_arrow(sql).to_pylist()

    def rollback(self, to=None):
        with DuckDBEngine(self.root) as engine:
            return rollback(self.settings, self.store, engine, to)


def same_rows(a: list[dict], b: list[dict], rel: float = 0.0) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            u, v = x[key], y[key]
            if isinstance(u, float) and isinstance(v, float):
                assert u == v or math.isclose(u, v, rel_tol=rel, abs_tol=0.0), (key, x, y)
            else:
                assert u == v, (key, x["symbol"], x["trade_date"], u, v)


@pytest.fixture()
def lake(tmp_path):
    return Lake(tmp_path / "lake")


def test_an_incremental_day_equals_a_full_build_and_leaves_published_rows_alone(lake):
    lake.ingest("2024-06-28")
    first = lake.build()
    assert first.mode == "full" and first.years[0] <= 2016
    before = lake.rows()

    lake.ingest("2024-07-12")
    daily = lake.build()
    assert daily.mode == "incremental"
    assert daily.years == [2024]  # only the year new bars touch is rewritten
    incremental = lake.rows()
    # Every row published before is carried over bit for bit.
    earlier = {(r["symbol"], r["trade_date"]): r for r in incremental}
    same_rows(before, [earlier[(r["symbol"], r["trade_date"])] for r in before])
    assert len(incremental) == len(before) + 2 * 9  # Jul 1-3, 5, 8-12 (Jul 4 closed)

    full = lake.build(full=True)
    assert full.mode == "full"
    # Same keys, NULLs, strings, ints and booleans; floats at most a rounding apart
    # (window sums add the same numbers in another order).
    same_rows(incremental, lake.rows(), rel=1e-14)


def test_a_daily_build_does_not_read_again_a_partition_that_did_not_change(lake):
    lake.ingest("2024-06-28")  # the history lands in ingest_date=2024-06-28
    lake.build()
    lake.ingest("2024-07-12")
    registry = load_registry(lake.store, TABLE)
    assert plan(lake.store, registry, full=False).raw_from == "2024-07-12"
    daily = lake.build()
    assert daily.mode == "incremental" and daily.new_rows == 2 * 9


def test_a_partition_that_changed_after_it_was_read_is_read_again(lake):
    lake.ingest("2024-06-28")
    lake.build()
    later = after_close("2024-06-28") + dt.timedelta(minutes=30)
    # Lands later in the partition already read.
    run_ingest(
        lake.settings, lake.store, SyntheticProvider(), later, tickers=["INTC"], now=lambda: later
    )
    lake.ingest("2024-07-12", tickers=["NVDA", "AMD", "INTC"])
    registry = load_registry(lake.store, TABLE)
    assert plan(lake.store, registry, full=False).raw_from == "2024-06-28"
    daily = lake.build()
    assert daily.mode == "incremental"
    symbols = lake.rows("SELECT symbol, count(*) AS n FROM daily_prices GROUP BY symbol")
    counts = {r["symbol"]: r["n"] for r in symbols}
    assert counts["INTC"] == counts["NVDA"] == counts["AMD"]


def test_the_lookback_is_the_longest_window_of_the_sql(lake):
    metrics = sqlfiles.load("staging/daily_prices.sql")
    # rsi_14: 499 preceding + the lag; + 2 for report_bars' lags (see test_sql.py)
    assert sqlfiles.longest_lookback(metrics) == 502
    # An incremental build seeds rsi_14's sums: sma_50's 49 preceding + the lag, + 2 again.
    assert sqlfiles.longest_lookback(metrics, seeded=RSI_SEEDED_WINDOWS) == 52
    assert (
        sqlfiles.longest_lookback(
            "SELECT lag(x, 3) OVER (ORDER BY d), avg(x) OVER "
            "(ORDER BY d ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) FROM t"
        )
        == 12
    )


def test_a_sql_change_makes_the_next_build_full(lake, monkeypatch):
    lake.ingest("2024-06-28")
    lake.build()
    lake.ingest("2024-07-01")
    monkeypatch.setattr(sqlfiles, "fingerprint", lambda: "a different SQL")
    result = lake.build()
    assert result.mode == "full" and "SQL changed" in result.message


def test_raw_landing_in_an_older_ingest_date_forces_a_full_build(lake):
    lake.ingest("2024-06-28", tickers=["NVDA"])
    lake.build()
    lake.ingest("2024-06-27", tickers=["AMD"])  # an --as-of in the past: an older partition
    assert load_state(lake.store).rebuild_needed
    result = lake.build()
    assert result.mode == "full"
    assert {r["symbol"] for r in lake.rows("SELECT DISTINCT symbol FROM daily_prices")} == {
        "NVDA",
        "AMD",
    }
    assert not load_state(lake.store).rebuild_needed


def test_rollback_switches_back_and_the_next_build_starts_from_there(lake):
    lake.ingest("2024-06-28")
    v1 = lake.build()
    one = lake.rows()
    lake.ingest("2024-07-05")
    v2 = lake.build()
    assert len(lake.rows()) > len(one)

    target = lake.rollback()
    assert target.run_id == v1.run_id
    same_rows(one, lake.rows())
    assert load_registry(lake.store, TABLE).current == v1.run_id
    runs = lake.rows("SELECT status, version FROM pipeline_runs WHERE status = 'rolled_back'")
    assert runs == [{"status": "rolled_back", "version": v1.run_id}]

    lake.rollback(to=v2.run_id)
    assert len(lake.rows()) == len(one) + 2 * 4
    with pytest.raises(MarketlakeError, match="no version nope"):
        lake.rollback(to="nope")

    lake.rollback(to=v1.run_id)
    # Built from v1: it reads the raw data v1 had not read, so the same rows come back.
    again = lake.build()
    assert again.mode == "incremental"
    assert len(lake.rows()) == len(one) + 2 * 4


def test_rollback_before_anything_is_published_says_what_to_do(lake):
    lake.ingest("2024-06-28")
    with pytest.raises(MarketlakeError, match="marketlake build"):
        lake.rollback()


def test_only_the_newest_versions_are_kept(tmp_path):
    lake = Lake(tmp_path / "lake", history_days=60, keep=2)
    days = ["2024-06-24", "2024-06-25", "2024-06-26", "2024-06-27"]
    results = []
    for day in days:
        lake.ingest(day)
        results.append(lake.build())
    registry = load_registry(lake.store, TABLE)
    assert [v.run_id for v in registry.versions] == [r.run_id for r in results[-2:]]
    kept_dirs = set(lake.store.list_prefixes(CURATED_PREFIX + "/"))
    in_use = {loc.split("/")[2] for loc in registry.locations_in_use(2)}
    assert kept_dirs == in_use
    assert f"version={results[0].run_id}" not in kept_dirs
    with pytest.raises(MarketlakeError):
        lake.rollback(to=results[0].run_id)


def _land_raw(lake: Lake, day: str, rows: list[tuple]) -> None:
    """Raw rows as an ingest would land them (symbol, date, o, h, l, c, v)."""
    frame = raw.pd.DataFrame(
        rows, columns=["symbol", "trade_date", "open", "high", "low", "close", "volume"]
    ).astype(str)
    frame["source"] = "import"
    frame["ingested_at"] = f"{day} 23:00:00.000"
    key = f"{raw.RAW_PREFIX}ingest_date={day}/TEST.csv"
    lake.store.put_bytes(key, raw.frame_to_csv(frame))


def test_warnings_are_recorded_without_blocking(lake):
    # A 10:1 move (price_jump), a gap in the sessions (missing_sessions) and a symbol that
    # stopped 6 sessions before the newest bar (stale_symbol).
    rows = [
        ("JMP", "2024-06-03", 100, 101, 99, 100, 10),
        ("JMP", "2024-06-04", 10, 10.1, 9.9, 10, 10),
        ("GAP", "2024-06-03", 5, 6, 4, 5, 10),
        ("GAP", "2024-06-06", 5, 6, 4, 5, 10),
        ("OLD", "2024-06-03", 5, 6, 4, 5, 10),
    ]
    rows += [("NEW", f"2024-06-{d:02d}", 5, 6, 4, 5, 10) for d in (3, 4, 5, 6, 7, 10, 11)]
    _land_raw(lake, "2024-06-12", rows)
    result = lake.build()
    assert result.status == "published"
    warned = {c.check_name: c.failing_rows for c in result.checks if c.status == "fail"}
    assert warned == {
        "price_jump": 1,
        "likely_missing_split": 1,
        "missing_sessions": 2,
        "stale_symbol": 1,
    }
    assert {c.severity for c in result.checks if c.status == "fail"} == {"warning"}
    recorded = lake.rows(
        "SELECT check_name, status FROM dq_results WHERE severity = 'warning' ORDER BY 1"
    )
    assert {r["check_name"] for r in recorded if r["status"] == "fail"} == set(warned)
    assert {r["status"] for r in recorded if r["check_name"] not in warned} == {"pass"}


def test_a_recorded_split_silences_the_jump_and_an_unrecorded_one_is_flagged(lake):
    """A 10:1 split: with it recorded, price_jump and likely_missing_split stay silent (the
    adjusted closes do not jump); without it, the session is flagged as a likely missing
    split, and a 45% move that no split explains is flagged too, below price_jump's 50%."""
    rows = [
        ("SPL", "2024-06-03", 100, 101, 99, 100, 10),
        ("SPL", "2024-06-04", 10, 10.1, 9.9, 10, 100),
        ("SPL", "2024-06-05", 10, 10.2, 9.8, 10.1, 100),
        ("DRP", "2024-06-03", 100, 101, 99, 100, 10),
        ("DRP", "2024-06-04", 55, 56, 54, 55, 10),
    ]
    _land_raw(lake, "2024-06-12", rows)
    unrecorded = lake.build()
    flagged = {c.check_name: c.failing_rows for c in unrecorded.checks if c.status == "fail"}
    assert flagged["likely_missing_split"] == 2  # SPL's split day and DRP's 45% drop
    assert flagged["price_jump"] == 1  # only SPL's 90% move is past 50%

    valid = actions.judge_actions(
        actions.SPLITS, raw.pd.DataFrame({"date": ["2024-06-04"], "value": ["10"]})
    )[0]
    actions.land_actions(
        lake.store,
        actions.SPLITS,
        "SPL",
        valid,
        "import",
        dt.date(2024, 6, 12),
        "2024-06-12 23:30:00.000",
    )
    recorded = lake.build(full=True)
    flagged = {c.check_name: c.failing_rows for c in recorded.checks if c.status == "fail"}
    assert "price_jump" not in flagged
    assert flagged["likely_missing_split"] == 1  # DRP alone: no split explains it
    pct = lake.rows(
        "SELECT price_change_pct FROM daily_prices WHERE symbol = 'SPL' AND "
        "trade_date = DATE '2024-06-04'"
    )[0]["price_change_pct"]
    assert abs(pct) < 1


def test_every_view_is_created_and_answers(lake):
    lake.ingest("2024-06-28")
    lake.build()
    views = sorted(p.stem for p in (sqlfiles.sql_root() / "views").glob("*.sql"))
    assert {"latest_prices", "avg_price_90d", "volatility_comparison", "pipeline_health"} <= set(
        views
    )
    for view in views:
        lake.rows(f"SELECT * FROM {view} LIMIT 3")
    latest = lake.rows("SELECT symbol, trade_date FROM latest_prices ORDER BY symbol")
    assert latest == [
        {"symbol": "AMD", "trade_date": dt.date(2024, 6, 28)},
        {"symbol": "NVDA", "trade_date": dt.date(2024, 6, 28)},
    ]
    oldest = lake.rows("SELECT min(trade_date) AS d FROM avg_price_90d")[0]["d"]
    assert oldest > dt.date(2024, 6, 28) - dt.timedelta(days=90)
    health = lake.rows("SELECT status, mode FROM pipeline_health")
    assert health == [{"status": "published", "mode": "full"}]


def _land(lake: Lake, symbol: str, first: str, last: str, ingest_date: str, seed: int) -> None:
    days = sessions_between(dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
    open_ = close * np.exp(rng.normal(0, 0.01, len(days)))
    frame = pd.DataFrame(
        {
            "trade_date": days,
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": rng.integers(1_000, 100_000, len(days)),
        }
    )
    stamp = f"{ingest_date} 23:00:00.000"
    lake.store.put_bytes(
        raw.raw_key(dt.date.fromisoformat(ingest_date), symbol),
        raw.frame_to_csv(raw.bars_to_frame(symbol, frame, "import", stamp)),
    )


def test_a_daily_build_reads_one_year_back_unless_a_symbol_returns_after_a_gap(lake, monkeypatch):
    """rsi_14 continues from the published averages, so a daily build reads the year before
    the one it rebuilds, not the three its 500-row sums span. A symbol whose last bar is
    older than that (back after a two-year gap) makes it read every year: its windows and
    seed need that bar. Both equal a full build."""
    _land(lake, "AAA", "2019-01-02", "2021-12-31", "2024-01-02", seed=1)  # then quiet
    _land(lake, "BBB", "2019-01-02", "2023-12-29", "2024-01-02", seed=2)
    assert lake.build().mode == "full"
    read: list[list[str]] = []
    older: list[list[str]] = []
    attach = DuckDBEngine.attach

    def recorded(self, name, partitions):
        {"previous_daily_prices": read, "older_daily_prices": older}.get(name, []).append(
            sorted(partitions)
        )
        return attach(self, name, partitions)

    monkeypatch.setattr(DuckDBEngine, "attach", recorded)
    _land(lake, "BBB", "2024-01-02", "2024-01-31", "2024-02-01", seed=3)
    daily = lake.build()
    assert daily.mode == "incremental" and read == [["2023"]] and older == []
    same_rows(lake.rows(), (lake.build(full=True), lake.rows())[1], rel=1e-14)

    read.clear()
    _land(lake, "AAA", "2024-02-01", "2024-02-29", "2024-03-01", seed=4)
    _land(lake, "BBB", "2024-02-01", "2024-02-29", "2024-03-01", seed=5)
    daily = lake.build()
    assert daily.mode == "incremental"
    assert read == [["2023", "2024"]] and older == [["2019", "2020", "2021", "2022"]]
    incremental = lake.rows()
    resumed = [r for r in incremental if r["symbol"] == "AAA" and r["year"] == 2024]
    assert resumed and all(r["sma_50"] is not None and r["rsi_14"] is not None for r in resumed)
    lake.build(full=True)
    same_rows(incremental, lake.rows(), rel=1e-14)
