"""Two full builds of one lake publish the same bits.

A GROUP BY sum() of doubles adds in the order DuckDB's threads hand the rows over, which
changes from run to run; floating-point addition is not associative, so the trailing
dividends (dividend_yield_ttm, payout_ratio_ttm), a multi-split adj_factor and the four
quarters of eps_ttm could differ in the last bit between two builds of the same raw data.
The staging SQL names each sum's order, so they may not.

The lake is sized so that the unordered sums did vary (a monthly payer's amounts like 0.07 and
0.13 are not exact in binary; three splits per symbol; quarters like 0.1, 0.2, -0.3), and the
builds run on four threads whatever the machine has.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketlake.config import Settings
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.lake import actions, earnings
from marketlake.lake.raw import bars_to_frame, frame_to_csv, raw_key
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore
from marketlake.wap.pipeline import TABLE, run_build

SYMBOLS = [f"S{i:02d}" for i in range(40)]
SESSIONS = sessions_between(dt.date(2019, 1, 2), dt.date(2024, 6, 28))
INGESTED = dt.date(2024, 7, 1)
STAMP = f"{INGESTED} 23:00:00.000"
BUILDS = 3
# Split factors whose logarithms do not add exactly in every order.
SPLITS = [(dt.date(2020, 3, 16), 3.0), (dt.date(2021, 7, 15), 1.5), (dt.date(2023, 5, 15), 7.0)]
AMOUNTS = [0.07, 0.13, 0.1, 0.11, 0.09, 0.17, 0.03, 0.19, 0.21, 0.05, 0.23, 0.29]
EPS = [0.1, 0.2, -0.3, 0.7, 0.13, 0.31, 0.17, -0.11]
COLUMNS = ["adj_factor", "adj_close", "dividend_yield_ttm", "eps_ttm", "payout_ratio_ttm"]


def month_days(first: dt.date, last: dt.date, day: int) -> list[dt.date]:
    out, (year, month) = [], (first.year, first.month)
    while dt.date(year, month, day) <= last:
        out.append(dt.date(year, month, day))
        year, month = year + month // 12, month % 12 + 1
    return out


def land(store: LocalStore, index: int, symbol: str) -> None:
    rng = np.random.default_rng(index)
    n = len(SESSIONS)
    close = 80.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    bars = pd.DataFrame(
        {
            "trade_date": SESSIONS,
            "open": close.round(4),
            "high": (close * 1.01).round(4),
            "low": (close * 0.99).round(4),
            "close": close.round(4),
            "volume": rng.integers(1_000, 100_000, n),
        }
    )
    store.put_bytes(
        raw_key(INGESTED, symbol), frame_to_csv(bars_to_frame(symbol, bars, "import", STAMP))
    )
    paydays = month_days(SESSIONS[0], SESSIONS[-1], 10)
    events = {
        actions.SPLITS: [(d, f) for d, f in SPLITS],
        actions.DIVIDENDS: [
            (d, AMOUNTS[(i + index) % len(AMOUNTS)]) for i, d in enumerate(paydays)
        ],
    }
    for kind, rows in events.items():
        frame = pd.DataFrame(
            {"date": [d.isoformat() for d, _ in rows], "value": [repr(v) for _, v in rows]}
        )
        valid = actions.judge_actions(kind, frame)[0]
        actions.land_actions(store, kind, symbol, valid, "import", INGESTED, STAMP)
    ends = month_days(dt.date(2018, 12, 1), dt.date(2024, 3, 1), 1)[::3]
    quarter_ends = [d - dt.timedelta(days=1) for d in ends]  # Nov 30, Feb 28/29, ...
    reports = pd.DataFrame(
        {
            "fiscal_date_ending": [d.isoformat() for d in quarter_ends],
            "reported_date": [(d + dt.timedelta(days=30)).isoformat() for d in quarter_ends],
            "reported_eps": [repr(EPS[(i + index) % len(EPS)]) for i in range(len(quarter_ends))],
        }
    )
    judged = earnings.judge(reports)
    assert judged.rejected.empty
    earnings.land(store, symbol, judged.valid, "import", INGESTED, STAMP)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("determinism") / "lake"
    store = LocalStore(root)
    for index, symbol in enumerate(SYMBOLS):
        land(store, index, symbol)
    return root, store


def published(root, store) -> pd.DataFrame:
    settings = Settings.from_env({}, home=root, tickers=",".join(SYMBOLS))
    with DuckDBEngine(root, threads=4) as engine:
        assert run_build(settings, store, engine, full=True).status == "published"
        return engine.fetch_df(
            f"SELECT symbol, trade_date, {', '.join(COLUMNS)} FROM {TABLE} "
            "ORDER BY symbol, trade_date"
        )


def test_full_builds_of_one_lake_publish_the_same_bits(lake):
    first = published(*lake)
    # Every column compared has values, so the comparison can tell builds apart.
    for column in COLUMNS:
        assert first[column].notna().sum() > len(first) // 2, column
    assert (first["adj_factor"] != 1.0).sum() > 0
    for _ in range(BUILDS - 1):
        again = published(*lake)
        for column in COLUMNS:
            a, b = first[column].to_numpy(float), again[column].to_numpy(float)
            differ = np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))
            assert differ.size == 0, (
                column,
                [(first["symbol"][i], first["trade_date"][i], a[i], b[i]) for i in differ[:3]],
            )
