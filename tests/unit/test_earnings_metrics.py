"""Issue 24's columns of daily_prices (eps_ttm, pe_ratio_ttm, payout_ratio_ttm and the
eps_quarter* columns) against an independent pandas computation written from the issue's
definitions, over a daily_prices the build wrote from a local lake's raw bars, splits,
dividends and earnings.

The definitions: a report counts for the sessions t with reported_date < t. eps_ttm(t) is the
sum of the 4 latest quarters (by fiscal_date_ending) known at t, each EPS put on t's share
basis (reported_eps * adj_factor(t) / adj_factor(eps_basis_date), adj_factor(d) the product
of the split factors with ex_date > d); NULL unless 4 are known, their quarter ends span 240
to 300 days, and the newest ended within 365 days before t; a sum within 1e-9 of 0 is 0.
pe_ratio_ttm = close / eps_ttm, payout_ratio_ttm = the trailing 365 days' dividends at t's
share basis / eps_ttm, both NULL when eps_ttm is NULL or <= 0. eps_quarter*: on the symbol's
first bar after a report (the newest quarter when several first show there).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from marketlake.engines.duckdb import DuckDBEngine
from marketlake.lake import actions, earnings
from marketlake.lake.raw import bars_to_frame, frame_to_csv, raw_key
from marketlake.sessions import sessions_between
from marketlake.wap.pipeline import TABLE, run_build

REL = 1e-9
SESSIONS = sessions_between(dt.date(2021, 1, 4), dt.date(2024, 6, 28))
INGESTED = dt.date(2024, 7, 1)
SPLIT_DAY = dt.date(2022, 6, 15)  # SPL 4:1
FETCHED = dt.date(2024, 6, 1)  # the day an Alpha-Vantage-style EPS is on the basis of
EARNINGS_COLUMNS = ["eps_ttm", "pe_ratio_ttm", "payout_ratio_ttm", "eps_quarter"]

SPLITS = {"SPL": [(SPLIT_DAY, 4.0)]}
# Dividends on sessions, per symbol: (ex_date, amount as declared).
DIVIDENDS = {
    "SPL": [
        (dt.date(2021, 9, 15), 0.40),
        (dt.date(2021, 12, 15), 0.40),
        (dt.date(2022, 3, 15), 0.40),
        (dt.date(2022, 9, 15), 0.10),  # after the split: a tenth of a dollar on 4x the shares
        (dt.date(2023, 3, 15), 0.11),
    ],
    "LOSS": [(dt.date(2022, 2, 15), 0.25), (dt.date(2022, 8, 15), 0.25)],
}


def quarters(first: dt.date, count: int) -> list[dt.date]:
    """`count` consecutive quarter ends from `first` (a quarter's last day)."""
    ends, (year, month) = [], (first.year, first.month)
    for _ in range(count):
        nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
        ends.append(nxt - dt.timedelta(days=1))
        month += 3
        if month > 12:
            year, month = year + 1, month - 12
    return ends


def reports(symbol: str, ends: list[dt.date], eps: list[float], lag: int = 35) -> list[tuple]:
    return [(symbol, end, end + dt.timedelta(days=lag), e, None) for end, e in zip(ends, eps)]


Q = quarters(dt.date(2020, 12, 31), 14)  # 2020Q4 .. 2024Q1
GAP_SATURDAY = dt.date(2022, 8, 6)  # GAP's 2022Q2 report: counts from Monday 2022-08-08
ON_A_SESSION = dt.date(2023, 2, 8)  # a Wednesday, GAP's 2022Q4 report: counts from Thursday
# (symbol, fiscal_date_ending, reported_date, reported_eps, basis or None = as reported)
EARNINGS = [
    # A 4:1 split inside the TTM window: the quarters reported before it per old share,
    # 2021Q3 as Alpha Vantage gives it (per new share, on the basis of its fetch day), the
    # quarters reported after it per new share.
    *reports("SPL", Q[:3], [1.20, 1.32, 1.40]),
    ("SPL", Q[3], Q[3] + dt.timedelta(days=30), 1.52 / 4, FETCHED),
    *reports("SPL", Q[4:6], [1.60, 1.68]),
    *reports("SPL", Q[6:], [0.44, 0.45, 0.47, 0.50, 0.52, 0.55, 0.56, 0.60]),
    # A loss quarter inside a positive TTM, then losses that sink the TTM below 0.
    *reports("LOSS", Q, [1.0, 1.1, -0.4, 1.2, 1.3, -0.5, -1.9, -0.8, -0.2, 0.4, 0.5, 0.9, 1, 1]),
    # A missing quarter (2022Q1); reports dated on a Saturday and on a session.
    *reports("GAP", Q[:5], [0.5, 0.6, 0.7, 0.8, 0.9]),
    ("GAP", Q[6], GAP_SATURDAY, 1.1, None),
    *reports("GAP", Q[7:8], [1.2]),
    ("GAP", Q[8], ON_A_SESSION, 1.3, None),
    *reports("GAP", Q[9:], [1.4, 1.5, 1.6, 1.7, 1.8]),
    # Three quarters only, two of them reported on one day (a backlog).
    ("FEW", Q[0], dt.date(2021, 5, 20), 2.0, None),
    ("FEW", Q[1], dt.date(2021, 8, 20), 2.1, None),
    ("FEW", Q[2], dt.date(2021, 8, 20), 2.2, None),
    # Reports that stop: the last quarter ends 2022-12-31.
    *reports("STOP", Q[:9], [0.3, 0.31, 0.32, 0.33, 0.34, 0.35, 0.36, 0.37, 0.38]),
    # Reported on the session before the first bar (2020-12-31): shows on it.
    ("FIRST", dt.date(2020, 9, 30), dt.date(2020, 12, 31), 0.7, None),
    *reports("FIRST", Q[:4], [0.8, 0.9, 1.0, 1.1]),
]
SYMBOLS = ["SPL", "LOSS", "GAP", "FEW", "STOP", "FIRST"]


# -- the independent reference -----------------------------------------------------------


def adj_factor(symbol: str, day: dt.date) -> float:
    return math.prod(f for ex, f in SPLITS.get(symbol, []) if ex > day)


def reference(bars: pd.DataFrame) -> pd.DataFrame:
    """The issue's definitions, session by session, for one symbol's bars."""
    symbol = bars["symbol"].iloc[0]
    rows = [r for r in EARNINGS if r[0] == symbol]
    days = list(bars["trade_date"])
    out = []
    for i, (t, close) in enumerate(zip(days, bars["close"])):
        scale = adj_factor(symbol, t)
        known = sorted((r for r in rows if r[2] < t), key=lambda r: r[1])[-4:]
        eps_ttm = math.nan
        if (
            len(known) == 4
            and 240 <= (known[-1][1] - known[0][1]).days <= 300
            and (t - known[-1][1]).days <= 365
        ):
            eps_ttm = sum(r[3] / adj_factor(symbol, r[4] or r[2]) for r in known)
            eps_ttm = 0.0 if abs(eps_ttm) < 1e-9 else eps_ttm * scale
        paid = sum(
            amount * scale / adj_factor(symbol, ex)
            for ex, amount in DIVIDENDS.get(symbol, [])
            if t - dt.timedelta(days=365) < ex <= t
        )
        positive = eps_ttm > 0  # False for NaN
        # The first bar after a report: the previous bar (the previous session on the first).
        before = days[i - 1] if i else sessions_between(t - dt.timedelta(days=10), t)[-2]
        first_seen = sorted((r for r in rows if before <= r[2] < t), key=lambda r: r[1])
        newest = first_seen[-1] if first_seen else None
        out.append(
            {
                "eps_ttm": eps_ttm,
                "pe_ratio_ttm": close / eps_ttm if positive else math.nan,
                "payout_ratio_ttm": paid / eps_ttm if positive else math.nan,
                "eps_quarter": (
                    newest[3] * scale / adj_factor(symbol, newest[4] or newest[2])
                    if newest
                    else math.nan
                ),
                "eps_quarter_end": newest[1] if newest else None,
                "eps_reported_date": newest[2] if newest else None,
            }
        )
    return pd.DataFrame(out)


# -- the lake, built -----------------------------------------------------------------------


def make_bars(symbol: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(SESSIONS)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    if symbol in SPLITS:  # traded before the split at 4x: never adjusted in raw
        close = np.where(np.array(SESSIONS) < SPLIT_DAY, close * 4, close)
    open_ = close * np.exp(rng.normal(0, 0.005, n))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    return pd.DataFrame(
        {
            "trade_date": SESSIONS,
            "open": open_.round(4),
            "high": high.round(4),
            "low": low.round(4),
            "close": close.round(4),
            "volume": rng.integers(1_000, 100_000, n),
        }
    )


def land_earnings(store, symbol: str, rows: list[tuple], basis: dt.date | None) -> None:
    vendor = pd.DataFrame(
        {
            "fiscal_date_ending": [r[1].isoformat() for r in rows],
            "reported_date": [r[2].isoformat() for r in rows],
            "reported_eps": [repr(r[3]) for r in rows],
        }
    )
    judged = earnings.judge(vendor)
    assert judged.rejected.empty and len(judged.valid) == len(rows)
    stamp = f"{INGESTED} 23:50:00.000" if basis is None else f"{INGESTED} 23:55:00.000"
    landed = earnings.land(store, symbol, judged.valid, "import", INGESTED, stamp, basis=basis)
    assert landed == len(rows)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(daily_prices as the build published it, the reference), row for row."""
    from marketlake.config import Settings
    from marketlake.storage import LocalStore

    root = tmp_path_factory.mktemp("earnings") / "lake"
    store = LocalStore(root)
    stamp = f"{INGESTED} 23:00:00.000"
    bars = {s: make_bars(s, seed) for seed, s in enumerate(SYMBOLS)}
    for symbol, frame in bars.items():
        data = frame_to_csv(bars_to_frame(symbol, frame, "import", stamp))
        store.put_bytes(raw_key(INGESTED, symbol), data)
    for kind, table in ((actions.SPLITS, SPLITS), (actions.DIVIDENDS, DIVIDENDS)):
        for symbol, events in table.items():
            rows = pd.DataFrame(
                {"date": [d.isoformat() for d, _ in events], "value": [repr(v) for _, v in events]}
            )
            valid = actions.judge_actions(kind, rows)[0]
            actions.land_actions(store, kind, symbol, valid, "import", INGESTED, stamp)
    for symbol in SYMBOLS:
        as_reported = [r for r in EARNINGS if r[0] == symbol and r[4] is None]
        land_earnings(store, symbol, as_reported, None)
        restated = [r for r in EARNINGS if r[0] == symbol and r[4] is not None]
        if restated:
            land_earnings(store, symbol, restated, restated[0][4])
    settings = Settings.from_env({}, home=root, tickers=",".join(SYMBOLS))
    with DuckDBEngine(root) as engine:
        assert run_build(settings, store, engine, full=True).status == "published"
        out = engine.fetch_df(f"SELECT * FROM {TABLE} ORDER BY symbol, trade_date")
    out["trade_date"] = pd.to_datetime(out["trade_date"]).dt.date
    parts = []
    for symbol in sorted(SYMBOLS):
        frame = bars[symbol].assign(symbol=symbol)
        parts.append(reference(frame).assign(symbol=symbol, trade_date=frame["trade_date"]))
    ref = pd.concat(parts, ignore_index=True)
    assert list(out["symbol"]) == list(ref["symbol"])
    assert list(out["trade_date"]) == list(ref["trade_date"])
    return out, ref


def _day(value) -> dt.date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


@pytest.mark.parametrize("column", EARNINGS_COLUMNS)
def test_every_row_matches_the_definition(built, column):
    out, ref = built
    got, want = out[column].to_numpy(float), ref[column].to_numpy(float)
    null, want_null = out[column].isna().to_numpy(), np.isnan(want)
    wrong = np.flatnonzero(null != want_null)
    where = [f"{out['symbol'][i]} {out['trade_date'][i]}" for i in wrong[:5]]
    assert wrong.size == 0, f"{column}: NULL where the reference disagrees at {where}"
    assert np.isfinite(got[~null]).all()
    close = np.isclose(got[~null], want[~null], rtol=REL, atol=0.0)
    bad = np.flatnonzero(~null)[~close]
    assert bad.size == 0, [
        (out["symbol"][i], out["trade_date"][i], got[i], want[i]) for i in bad[:5]
    ]
    # Every case has values to compare, not only NULLs.
    for symbol in ("SPL", "LOSS", "GAP"):
        assert (~null[(out["symbol"] == symbol).to_numpy()]).sum() > 10, (column, symbol)


@pytest.mark.parametrize("column", ["eps_quarter_end", "eps_reported_date"])
def test_the_report_dates_are_on_the_first_bar_after_each_report(built, column):
    out, ref = built
    assert [_day(v) for v in out[column]] == list(ref[column])
    assert out[column].notna().sum() == len(EARNINGS) - 1  # FEW's backlog shares one bar


def rows_of(out: pd.DataFrame, symbol: str) -> dict[dt.date, pd.Series]:
    mine = out[out["symbol"] == symbol]
    return {day: row for day, (_, row) in zip(mine["trade_date"], mine.iterrows())}


def test_a_split_inside_the_window_puts_every_quarter_on_the_sessions_basis(built):
    out, _ = built
    spl = rows_of(out, "SPL")
    # The day before the split: 2021Q2..2022Q1 per old share (2021Q3's 0.38, given per new
    # share on 2024-06-01's basis, is 1.52 per old); on the split day the same four per new
    # share, a quarter of it.
    before = spl[dt.date(2022, 6, 14)]["eps_ttm"]
    assert before == pytest.approx(1.40 + 1.52 + 1.60 + 1.68, rel=1e-12)
    after = spl[SPLIT_DAY]["eps_ttm"]
    assert after == pytest.approx(before / 4, rel=1e-12)
    # P/E does not jump at the split: price and EPS change scale together.
    ratio = spl[SPLIT_DAY]["pe_ratio_ttm"] / spl[dt.date(2022, 6, 14)]["pe_ratio_ttm"]
    moved = spl[SPLIT_DAY]["close"] * 4 / spl[dt.date(2022, 6, 14)]["close"]
    assert ratio == pytest.approx(moved, rel=1e-12)
    # A quarter reported after the split, per new share, adds to the three before it / 4.
    late = spl[dt.date(2022, 8, 5)]  # 2022Q2 reported 2022-08-04
    assert late["eps_ttm"] == pytest.approx((1.52 + 1.60 + 1.68) / 4 + 0.44, rel=1e-12)


def test_a_loss_ttm_has_no_pe_or_payout(built):
    out, _ = built
    loss = out[out["symbol"] == "LOSS"]
    negative = loss[loss["eps_ttm"] <= 0]
    assert len(negative) > 50
    assert negative["pe_ratio_ttm"].isna().all() and negative["payout_ratio_ttm"].isna().all()
    # A loss quarter inside a positive TTM: 1.0 + 1.1 - 0.4 + 1.2, with a P/E.
    row = rows_of(out, "LOSS")[Q[3] + dt.timedelta(days=36)]
    assert row["eps_ttm"] == pytest.approx(2.9, rel=1e-12) and row["pe_ratio_ttm"] > 0


def test_a_report_counts_from_the_next_session(built):
    out, _ = built
    gap = rows_of(out, "GAP")
    # 2022Q2 reported on Saturday 2022-08-06: Friday has 2021Q1..Q4; from Monday the four
    # latest are 2021Q2, Q3, Q4 and 2022Q2, not consecutive (2022Q1 is missing): NULL.
    friday, monday = gap[dt.date(2022, 8, 5)], gap[dt.date(2022, 8, 8)]
    assert friday["eps_ttm"] == pytest.approx(0.6 + 0.7 + 0.8 + 0.9, rel=1e-12)
    assert pd.isna(monday["eps_ttm"]) and monday["eps_quarter"] == 1.1
    assert _day(monday["eps_reported_date"]) == GAP_SATURDAY
    # 2022Q4 reported on Wednesday 2023-02-08, a session: it counts from Thursday.
    assert pd.isna(gap[ON_A_SESSION]["eps_quarter"])
    assert _day(gap[dt.date(2023, 2, 9)]["eps_reported_date"]) == ON_A_SESSION


def test_a_missing_quarter_is_null_until_four_consecutive_are_known(built):
    out, _ = built
    gap = out[out["symbol"] == "GAP"]
    nulls = gap[(gap["trade_date"] > dt.date(2022, 8, 5)) & gap["eps_ttm"].isna()]
    # From 2022Q2 until 2023Q1 (2022Q2..2023Q1) is reported.
    assert nulls["trade_date"].min() == dt.date(2022, 8, 8)
    assert nulls["trade_date"].max() == Q[9] + dt.timedelta(days=35)
    reported = Q[9] + dt.timedelta(days=35)
    next_session = sessions_between(reported + dt.timedelta(days=1), Q[10])[0]
    first = rows_of(out, "GAP")[next_session]
    assert first["eps_ttm"] == pytest.approx(1.1 + 1.2 + 1.3 + 1.4, rel=1e-12)


def test_fewer_than_four_quarters_and_stopped_reports_are_null(built):
    out, _ = built
    assert out[out["symbol"] == "FEW"]["eps_ttm"].isna().all()
    few = rows_of(out, "FEW")[dt.date(2021, 8, 23)]  # the Monday after the backlog
    assert few["eps_quarter"] == 2.2 and _day(few["eps_quarter_end"]) == Q[2]
    stop = out[out["symbol"] == "STOP"].set_index("trade_date")["eps_ttm"]
    assert stop[dt.date(2023, 12, 29)] == pytest.approx(0.35 + 0.36 + 0.37 + 0.38, rel=1e-12)
    assert stop[stop.index > dt.date(2023, 12, 31)].isna().all()


def test_payout_counts_the_trailing_dividends_at_the_sessions_basis(built):
    out, _ = built
    spl = rows_of(out, "SPL")
    # After the split: two dividends of 0.40 per old share within 365 days, one of 0.10.
    row = spl[dt.date(2022, 9, 16)]
    paid = 2 * 0.40 / 4 + 0.10
    assert row["payout_ratio_ttm"] == pytest.approx(paid / row["eps_ttm"], rel=1e-12)
    assert row["dividend_yield_ttm"] == pytest.approx(paid / row["close"], rel=1e-12)


def test_the_first_bar_shows_a_report_of_the_session_before_it(built):
    out, _ = built
    first = rows_of(out, "FIRST")[SESSIONS[0]]
    assert first["eps_quarter"] == 0.7 and _day(first["eps_reported_date"]) == dt.date(2020, 12, 31)
