"""The benchmark's Polars peer (bench/polars_peer.py) computes what the build computes: every
column of daily_prices, row for row, on a lake with 10:1, 2:1 and 1:4 splits and quarterly
dividends. A peer that did less work would make the speed ratio a lie."""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
from pathlib import Path

import pandas as pd
import polars as pl

from marketlake.config import Settings
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.ingest.runner import run_ingest
from marketlake.lake import earnings
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.sessions import EASTERN
from marketlake.storage import LocalStore
from marketlake.wap.pipeline import TABLE, run_build

PEER = Path(__file__).resolve().parents[2] / "bench" / "polars_peer.py"
TICKERS = "NVDA,AVGO,AMAT,TXN,INTC,MSFT"


def load_peer():
    spec = importlib.util.spec_from_file_location("polars_peer", PEER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def land_earnings(store: LocalStore) -> None:
    """Quarters 2021Q4..2026Q1: NVDA's as reported, its older ones per post-split share as
    Alpha Vantage gives them; MSFT's with 2023Q2 missing; AMAT's with a loss year."""
    ends = pd.date_range("2021-12-31", "2026-03-31", freq="QE").date
    landed = dt.date(2026, 6, 1)
    for symbol, step in (("NVDA", 0.05), ("MSFT", 0.03), ("AMAT", -0.09)):
        rows = [
            (end, end + dt.timedelta(days=30 + i % 3), 1.0 + step * i)
            for i, end in enumerate(ends)
            if not (symbol == "MSFT" and end == dt.date(2023, 6, 30))
        ]
        for basis, part in ((None, rows[8:]), (landed, rows[:8])):
            valid = pd.DataFrame(part, columns=["fiscal", "reported", "eps"])
            stamp = f"{landed} 23:0{basis is None}:00.000"
            earnings.land(store, symbol, valid, "import", landed, stamp, basis=basis)


def test_the_polars_peer_computes_every_column_of_the_build(tmp_path):
    lake = tmp_path / "lake"
    settings = Settings.from_env(
        {
            "MARKETLAKE_HOME": str(lake),
            "MARKETLAKE_TICKERS": TICKERS,
            "MARKETLAKE_HISTORY_DAYS": "1500",
        }
    )
    store = LocalStore(lake)
    moment = dt.datetime(2026, 6, 30, 23, 0, tzinfo=EASTERN)
    run_ingest(settings, store, SyntheticProvider(), moment, now=lambda: moment)
    land_earnings(store)
    with DuckDBEngine(lake) as engine:
        run_build(settings, store, engine, full=True)
        built = engine.fetch_arrow(f"SELECT * FROM {TABLE} ORDER BY symbol, trade_date")

    out = tmp_path / "peer"
    rows = load_peer().write(lake, out)
    peer = (
        pl.read_parquet(out, hive_partitioning=True)
        .to_pandas()
        .sort_values(["symbol", "trade_date"])
    )
    ours = built.to_pandas()

    assert rows == len(ours) > 4000
    assert sorted(peer.columns) == sorted(ours.columns)
    splits = ours[ours["adj_factor"] != 1.0]["symbol"].unique()
    assert set(splits) == {"NVDA", "AVGO", "AMAT", "TXN", "INTC"}  # every split is exercised
    assert (ours["dividend"] > 0).sum() > 20
    assert ours["pe_ratio_ttm"].notna().sum() > 1000 and (ours["eps_ttm"] < 0).sum() > 10
    assert ours["eps_quarter"].notna().sum() > 30
    peer = peer[list(ours.columns)].reset_index(drop=True)
    peer["trade_date"] = peer["trade_date"].dt.date
    for column in ("eps_quarter_end", "eps_reported_date"):  # Parquet dates read back as NaT
        peer[column] = [None if pd.isna(v) else v.date() for v in peer[column]]
    mismatches = []
    for column in ours.columns:
        for a, b, sym, day in zip(ours[column], peer[column], ours["symbol"], ours["trade_date"]):
            if isinstance(a, float) or isinstance(b, float):
                a_missing = a is None or (isinstance(a, float) and math.isnan(a))
                b_missing = b is None or (isinstance(b, float) and math.isnan(b))
                same = (a_missing and b_missing) or (
                    not a_missing
                    and not b_missing
                    and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
                )
            else:
                same = a == b
            if not same:
                mismatches.append((column, sym, day, a, b))
    assert not mismatches, (sorted({m[0] for m in mismatches}), mismatches[:10])
