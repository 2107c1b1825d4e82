"""Issue 24: a late report of an old quarter, and a corrected EPS, landed after the sessions
they change were published. `marketlake build` (the real CLI, on a local lake of imported
bars) rebuilds incrementally, says so and names the symbol, changes only that symbol's rows,
and publishes exactly what `marketlake build --full` makes of the same raw data."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pytest

from cli_run import marketlake, ok
from import_samples import write_rows
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.lake import earnings
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore

pytestmark = pytest.mark.e2e

SESSIONS = sessions_between(dt.date(2021, 1, 4), dt.date(2023, 12, 29))
SYMBOLS = ("AAA", "BBB")
# (fiscal_date_ending, reported_date, reported_eps), both symbols alike.
QUARTERS = [
    ("2020-12-31", "2021-02-10", "0.50"),
    ("2021-03-31", "2021-05-05", "0.55"),
    ("2021-06-30", "2021-08-04", "0.58"),
    ("2021-09-30", "2021-11-03", "0.60"),
    ("2021-12-31", "2022-02-09", "0.62"),
    ("2022-03-31", "2022-05-04", "0.64"),
    ("2022-06-30", "2022-08-03", "0.66"),
    ("2022-09-30", "2022-11-02", "0.70"),
    ("2022-12-31", "2023-02-08", "0.72"),
    ("2023-03-31", "2023-05-03", "0.75"),
    ("2023-06-30", "2023-08-02", "0.77"),
    ("2023-09-30", "2023-11-01", "0.80"),
]
LATE = QUARTERS[6]  # AAA's 2022Q2: missing at first
CORRECTED = ("2023-03-31", "2023-05-03", "0.95")  # BBB's 2023Q1, was 0.75
EVERYTHING = "SELECT * FROM daily_prices ORDER BY symbol, trade_date"


def bars(seed: int) -> list[dict]:
    rows = []
    for i, day in enumerate(SESSIONS):
        base = 30.0 + seed + 5 * math.sin(i / 17.0) + (i % 7) * 0.3
        rows.append(
            {
                "date": day.isoformat(),
                "open": f"{base:.2f}",
                "high": f"{base + 1:.2f}",
                "low": f"{base - 1:.2f}",
                "close": f"{base + 0.4:.2f}",
                "volume": str(100_000 + 37 * i),
            }
        )
    return rows


def land(home: Path, symbol: str, quarters: list[tuple], day: str) -> None:
    vendor = pd.DataFrame(
        {
            "fiscal_date_ending": [q[0] for q in quarters],
            "reported_date": [q[1] for q in quarters],
            "reported_eps": [q[2] for q in quarters],
        }
    )
    judged = earnings.judge(vendor)
    landed = dt.date.fromisoformat(day)
    count = earnings.land(LocalStore(home), symbol, judged.valid, "import", landed, f"{day} 23:45")
    assert count == len(quarters)


def rows(home: Path, sql: str = EVERYTHING) -> list[dict]:
    with DuckDBEngine(home, read_only=True) as engine:
        return engine.fetch_arrow(sql).to_pylist()


def of(table: list[dict], symbol: str) -> list[dict]:
    return [r for r in table if r["symbol"] == symbol]


def same(a: list[dict], b: list[dict], rel: float = 0.0) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            u, v = x[key], y[key]
            if isinstance(u, float) and isinstance(v, float):
                assert u == v or math.isclose(u, v, rel_tol=rel), (key, x["trade_date"], u, v)
            else:
                assert u == v, (key, x["symbol"], x["trade_date"], u, v)


def differ(a: dict, b: dict) -> bool:
    """Whether two rows differ by more than the rounding of a recomputed window."""
    for key in a:
        u, v = a[key], b[key]
        if isinstance(u, float) and isinstance(v, float):
            if not math.isclose(u, v, rel_tol=1e-12):
                return True
        elif u != v:
            return True
    return False


def test_a_late_and_a_corrected_report_restate_only_their_symbol(tmp_path):
    cwd = tmp_path
    home = cwd / "lake"
    for seed, symbol in enumerate(SYMBOLS):
        write_rows(cwd / f"{symbol}.csv", bars(seed))
        ok(marketlake(cwd, "import", f"{symbol}.csv", "--symbol", symbol))
    land(home, "AAA", [q for q in QUARTERS if q != LATE], "2024-01-02")
    land(home, "BBB", QUARTERS, "2024-01-02")
    ok(marketlake(cwd, "build"))
    first = rows(home)
    assert any(r["eps_ttm"] is not None for r in of(first, "BBB"))
    assert any(r["pe_ratio_ttm"] is not None for r in of(first, "AAA"))

    # A late report of AAA's 2022Q2, published in 2022, lands now.
    land(home, "AAA", [LATE], "2024-01-03")
    said = ok(marketlake(cwd, "build"))
    assert "incremental build (earnings changed for AAA)" in said, said
    late = rows(home)
    same(of(first, "BBB"), of(late, "BBB"))
    # AAA is recomputed from 2022 (its windows' sums rounded anew: the last bits may move);
    # its numbers change from the first session after the late report.
    changed = [a["trade_date"] for a, b in zip(of(first, "AAA"), of(late, "AAA")) if differ(a, b)]
    assert changed and min(changed) == dt.date(2022, 8, 4)
    ok(marketlake(cwd, "build", "--full"))
    full = rows(home)
    same(late, full, rel=1e-14)

    # BBB's 2023Q1 EPS corrected.
    land(home, "BBB", [CORRECTED], "2024-01-04")
    said = ok(marketlake(cwd, "build"))
    assert "incremental build (earnings changed for BBB)" in said, said
    corrected = rows(home)
    same(of(late, "AAA"), of(corrected, "AAA"), rel=1e-14)
    moved = [a["trade_date"] for a, b in zip(of(late, "BBB"), of(corrected, "BBB")) if differ(a, b)]
    assert moved and min(moved) == dt.date(2023, 5, 4)  # the session after the report
    ok(marketlake(cwd, "build", "--full"))
    same(corrected, rows(home), rel=1e-14)
