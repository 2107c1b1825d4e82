"""The earnings view on a lake with known bars, a split, dividends and quarterly reports,
built with the real CLI: one row per report the published prices applied, on the first
session after it (a Saturday report on the Monday), with that day's close, trailing EPS,
P/E and payout ratio on that day's share basis; none for the reports before the first bar
(they count in the trailing EPS) or after the last; and latest_prices' P/E and payout."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cli_run import marketlake, ok
from earnings_samples import land_earnings
from import_samples import write_rows
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.sessions import sessions_between

pytestmark = pytest.mark.e2e

D = dt.date
SESSIONS = sessions_between(D(2024, 1, 2), D(2024, 8, 30))
SPLIT = (D(2024, 6, 3), 2.0)  # a Monday: bars from then on are on twice the shares
DIVIDENDS = [(D(2024, 2, 15), 0.25), (D(2024, 5, 15), 0.25), (D(2024, 8, 15), 0.15)]
# (fiscal_date_ending, reported_date, EPS as reported, on the shares of its reported_date)
QUARTERS = [
    (D(2022, 12, 31), D(2023, 2, 1), 0.90),  # before the first bar: no row
    (D(2023, 3, 31), D(2023, 4, 26), 1.00),  # no row either, but in January's TTM
    (D(2023, 6, 30), D(2023, 7, 26), 1.10),
    (D(2023, 9, 30), D(2023, 10, 25), 1.20),
    (D(2023, 12, 31), D(2024, 1, 25), 1.30),  # a Thursday: on Friday the 26th
    (D(2024, 3, 31), D(2024, 4, 27), 1.40),  # a Saturday: on Monday the 29th
    (D(2024, 6, 30), D(2024, 7, 24), -3.00),  # after the split; a loss: the TTM is < 0
    (D(2024, 9, 30), D(2024, 10, 23), 1.60),  # after the last bar: no row
]
FIRST_SESSIONS = {D(2024, 1, 25): D(2024, 1, 26), D(2024, 4, 27): D(2024, 4, 29)}
FIRST_SESSIONS[D(2024, 7, 24)] = D(2024, 7, 25)


def later_factor(day: dt.date) -> float:
    """Shares after the splits later than `day` per share of `day`: traded = adjusted * it."""
    return SPLIT[1] if day < SPLIT[0] else 1.0


def on_basis_of(amount: float, basis: dt.date, day: dt.date) -> float:
    """A per-share amount on `basis`'s shares put on `day`'s."""
    return amount * later_factor(day) / later_factor(basis)


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
def lake(tmp_path_factory) -> tuple[Path, dict[dt.date, float]]:
    cwd = tmp_path_factory.mktemp("user")
    bars = traded_bars()
    write_rows(cwd / "bars.csv", bars)
    write_rows(cwd / "splits.csv", [{"date": SPLIT[0].isoformat(), "split_factor": SPLIT[1]}])
    write_rows(cwd / "divs.csv", [{"date": d.isoformat(), "amount": a} for d, a in DIVIDENDS])
    ok(marketlake(cwd, "import", "bars.csv", "--symbol", "TEST"))
    ok(marketlake(cwd, "import", "--splits", "splits.csv", "--symbol", "TEST"))
    ok(marketlake(cwd, "import", "--dividends", "divs.csv", "--symbol", "TEST"))
    assert land_earnings(cwd / "lake", "TEST", QUARTERS) == len(QUARTERS)
    ok(marketlake(cwd, "build"))
    return cwd / "lake", {dt.date.fromisoformat(b["date"]): float(b["close"]) for b in bars}


def fetch(home: Path, sql: str) -> list[dict]:
    with DuckDBEngine(home, read_only=True) as engine:
        return engine.fetch_arrow(sql).to_pylist()


def trailing(day: dt.date) -> tuple[float | None, float]:
    """(EPS of the four latest quarters known on session `day`, on its shares, or None when
    they are no TTM; the dividends gone ex in the 365 days up to `day`, on its shares)."""
    known = sorted(q for q in QUARTERS if q[1] < day)[-4:]
    eps = None
    recent = len(known) == 4 and known[-1][0] >= day - dt.timedelta(days=365)
    if recent and 240 <= (known[-1][0] - known[0][0]).days <= 300:
        eps = sum(on_basis_of(e, reported, day) for _, reported, e in known)
    paid = sum(
        on_basis_of(a, d, day) for d, a in DIVIDENDS if day - dt.timedelta(days=365) < d <= day
    )
    return eps, paid


def test_one_row_per_report_on_the_first_session_after_it(lake):
    home, closes = lake
    rows = fetch(home, "SELECT * FROM earnings ORDER BY symbol, reported_date")
    assert list(rows[0]) == [
        "symbol",
        "fiscal_date_ending",
        "reported_date",
        "eps",
        "eps_ttm",
        "first_session",
        "close",
        "pe_ratio_ttm",
        "payout_ratio_ttm",
    ]
    expected = []
    for fiscal, reported, eps in QUARTERS:
        if reported not in FIRST_SESSIONS:
            continue
        first = FIRST_SESSIONS[reported]
        ttm, paid = trailing(first)
        assert ttm is not None
        close = closes[first]
        pe, payout = (close / ttm, paid / ttm) if ttm > 0 else (None, None)
        eps_then = on_basis_of(eps, reported, first)
        expected.append(("TEST", fiscal, reported, eps_then, ttm, first, close, pe, payout))
    assert [r["reported_date"] for r in rows] == sorted(FIRST_SESSIONS)
    for row, want in zip(rows, expected):
        got = tuple(row.values())
        assert got[:3] == want[:3] and got[5] == want[5]
        for name, value, wanted in zip(list(row)[3:], got[3:], want[3:]):
            if wanted is None:
                assert value is None, name
            elif isinstance(wanted, float):
                assert value == pytest.approx(wanted, rel=1e-9), (row, name)
    # The numbers behind it: the P/E of the day after the January report, and the April
    # one's EPS and payout, by hand (no split between them and their sessions).
    january, april, july = rows
    assert january["eps_ttm"] == pytest.approx(1.0 + 1.1 + 1.2 + 1.3)
    assert january["pe_ratio_ttm"] == pytest.approx(closes[D(2024, 1, 26)] / 4.6)
    assert april["payout_ratio_ttm"] == pytest.approx(0.25 / (1.1 + 1.2 + 1.3 + 1.4))
    # July: the three earlier quarters on the split's doubled shares, plus the loss.
    assert july["eps_ttm"] == pytest.approx((1.2 + 1.3 + 1.4) / 2 - 3.0)
    assert july["eps"] == -3.0 and july["pe_ratio_ttm"] is None


def test_the_view_is_the_reports_daily_prices_applied(lake):
    home, _ = lake
    (applied,) = fetch(
        home, "SELECT count(*) AS n FROM daily_prices WHERE eps_reported_date IS NOT NULL"
    )
    assert applied["n"] == len(FIRST_SESSIONS)
    same = fetch(
        home,
        "SELECT count(*) AS n FROM earnings AS e JOIN daily_prices AS d "
        "ON d.symbol = e.symbol AND d.trade_date = e.first_session "
        "AND d.pe_ratio_ttm IS NOT DISTINCT FROM e.pe_ratio_ttm AND d.eps_ttm = e.eps_ttm",
    )
    assert same == [{"n": len(FIRST_SESSIONS)}]
    # What landed is more than what the prices applied: all eight reports are in raw.
    assert len(fetch(home, "SELECT * FROM corporate_earnings WHERE symbol = 'TEST'")) == 8


def test_latest_prices_carries_the_pe_and_payout_of_the_newest_bar(lake):
    """After the loss the trailing EPS is negative: no P/E and no payout ratio, and the
    session before the report still had both."""
    home, closes = lake
    rows = fetch(
        home, "SELECT trade_date, pe_ratio_ttm, payout_ratio_ttm, close FROM latest_prices"
    )
    assert rows == [
        {
            "trade_date": SESSIONS[-1],
            "pe_ratio_ttm": None,
            "payout_ratio_ttm": None,
            "close": closes[SESSIONS[-1]],
        }
    ]
    day = D(2024, 7, 24)
    ttm, paid = trailing(day)
    assert ttm is not None and ttm > 0
    (before,) = fetch(
        home,
        "SELECT pe_ratio_ttm, payout_ratio_ttm FROM daily_prices WHERE trade_date = DATE "
        f"'{day.isoformat()}'",
    )
    assert before["pe_ratio_ttm"] == pytest.approx(closes[day] / ttm, rel=1e-9)
    assert before["payout_ratio_ttm"] == pytest.approx(paid / ttm, rel=1e-9)
