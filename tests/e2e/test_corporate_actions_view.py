"""The corporate_actions view on a lake with known actions, imported with the real CLI: the
splits the published prices reflect (a split on a weekend at the next session, two on one
weekend as their product; none before the first bar or after the last) and the dividends
going ex on a published session (a weekend one at the next session, as a split), each with
the traded closes around it; and latest_prices' dividend_yield_ttm."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from cli_run import marketlake, ok
from import_samples import write_rows
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.sessions import sessions_between

pytestmark = pytest.mark.e2e

SESSIONS = sessions_between(dt.date(2024, 3, 1), dt.date(2024, 4, 30))
SPLITS = [
    (dt.date(2024, 2, 1), 10.0),  # before the first bar: no bar changes scale
    (dt.date(2024, 3, 15), 2.0),  # a Friday session
    (dt.date(2024, 4, 6), 3.0),  # Saturday and Sunday: one step of 1.5 on Monday the 8th
    (dt.date(2024, 4, 7), 0.5),
    (dt.date(2024, 4, 20), 0.25),  # a 1:4 reverse split on a Saturday: Monday the 22nd
    (dt.date(2024, 5, 15), 2.0),  # after the last bar: every bar scales, none steps
]
DIVIDENDS = [
    (dt.date(2024, 3, 11), 0.5),
    (dt.date(2024, 3, 30), 0.1),  # a Saturday after Good Friday: ex on Monday April 1st
    (dt.date(2024, 4, 10), 0.25),
]
EXPECTED_SPLITS = [
    (dt.date(2024, 3, 15), 2.0),
    (dt.date(2024, 4, 8), 1.5),
    (dt.date(2024, 4, 22), 0.25),
]


def later_factor(day: dt.date) -> float:
    """The product of the factors of the splits after `day`: traded = adjusted * this."""
    return math.prod(f for d, f in SPLITS if d > day)


def ex_session(day: dt.date) -> dt.date:
    """The session a dividend goes ex on: its date, or the next session if it is none."""
    return next(s for s in SESSIONS if s >= day)


def traded_bars() -> list[dict]:
    rows = []
    for day in SESSIONS:
        base = 40.0 + (day.toordinal() % 9) * 0.5  # the split-adjusted price
        scale = later_factor(day)
        rows.append(
            {
                "date": day.isoformat(),
                "open": f"{base * scale:.2f}",
                "high": f"{(base + 1) * scale:.2f}",
                "low": f"{(base - 1) * scale:.2f}",
                "close": f"{(base + 0.5) * scale:.2f}",
                "volume": "1000000",
            }
        )
    return rows


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> tuple[Path, list[dict]]:
    cwd = tmp_path_factory.mktemp("user")
    bars = traded_bars()
    write_rows(cwd / "bars.csv", bars)
    write_rows(cwd / "splits.csv", [{"date": d.isoformat(), "split_factor": f} for d, f in SPLITS])
    write_rows(cwd / "divs.csv", [{"date": d.isoformat(), "amount": a} for d, a in DIVIDENDS])
    ok(marketlake(cwd, "import", "bars.csv", "--symbol", "TEST"))
    ok(marketlake(cwd, "import", "--splits", "splits.csv", "--symbol", "TEST"))
    ok(marketlake(cwd, "import", "--dividends", "divs.csv", "--symbol", "TEST"))
    ok(marketlake(cwd, "build"))
    return cwd / "lake", bars


def fetch(home: Path, sql: str) -> list[dict]:
    with DuckDBEngine(home, read_only=True) as engine:
        return engine.fetch_arrow(sql).to_pylist()


def test_the_view_lists_the_splits_and_dividends_the_published_prices_reflect(lake):
    home, bars = lake
    closes = {dt.date.fromisoformat(b["date"]): float(b["close"]) for b in bars}

    def around(day: dt.date) -> tuple[float, float]:
        return closes[SESSIONS[SESSIONS.index(day) - 1]], closes[day]

    expected = [
        ("TEST", day, "split", factor, None, *around(day)) for day, factor in EXPECTED_SPLITS
    ] + [
        ("TEST", ex_session(day), "dividend", None, amount, *around(ex_session(day)))
        for day, amount in DIVIDENDS
    ]
    rows = fetch(home, "SELECT * FROM corporate_actions ORDER BY ex_date, kind")
    found = [tuple(r.values()) for r in rows]
    assert list(rows[0]) == [
        "symbol",
        "ex_date",
        "kind",
        "split_factor",
        "dividend",
        "previous_close",
        "close",
    ]
    assert found == sorted(expected, key=lambda r: (r[1], r[2]))  # factors exact: rounded
    # What landed is more than what the prices reflect: all six splits are in the raw table.
    assert len(fetch(home, "SELECT * FROM corporate_splits WHERE symbol = 'TEST'")) == 6


def test_latest_prices_carries_the_trailing_dividend_yield(lake):
    """Every dividend at the newest bar's share scale (amount * its later factors / the
    bar's), over that bar's close: the Saturday dividend counts too, from its Monday."""
    home, bars = lake
    last = SESSIONS[-1]
    close = float(bars[-1]["close"])
    at_scale = sum(a * later_factor(last) / later_factor(d) for d, a in DIVIDENDS)
    (row,) = fetch(home, "SELECT trade_date, dividend_yield_ttm FROM latest_prices")
    assert row["trade_date"] == last
    assert row["dividend_yield_ttm"] == pytest.approx(at_scale / close, rel=1e-12)
