"""The earnings rules review found loose (issue 24): when a landed report is the same one as on
record (lake/earnings.same_report, through land), one quarter under two dates
(earnings.near_quarters), and the trailing EPS of sql/staging/daily_prices.sql where the four
quarters sum to 0 or one quarter is on record under two dates."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from earnings_samples import valid_frame
from marketlake.config import Settings
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.lake import actions, earnings
from marketlake.lake.raw import bars_to_frame, frame_to_csv, raw_key
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore
from marketlake.wap.pipeline import TABLE, run_build

D = dt.date
INGESTED = D(2024, 7, 1)
REPORTED = D(2024, 5, 22)  # the report of the quarter ending 2024-03-31
SPLIT_DAY = D(2024, 6, 10)  # 2:1
STAMP = "2024-07-01 20:00:00.000"


def land_split(store: LocalStore, symbol: str, day: dt.date, factor: str) -> None:
    rows = pd.DataFrame({"date": [day.isoformat()], "value": [factor]})
    valid = actions.judge_actions(actions.SPLITS, rows)[0]
    actions.land_actions(store, actions.SPLITS, symbol, valid, "import", INGESTED, STAMP)


def splits_of(store: LocalStore, symbol: str) -> pd.DataFrame:
    return actions.current(store, actions.SPLITS, symbol)


def land(
    store, eps: float, basis: dt.date | None = None, at: str = f"{INGESTED} 21:00:00.000"
) -> int:
    """Land NVDA's quarter ending 2024-03-31, reported on REPORTED, with `eps` on `basis`."""
    quarter = valid_frame([(D(2024, 3, 31), REPORTED, eps)])
    return earnings.land(store, "NVDA", quarter, "import", INGESTED, at, basis=basis)


def on_record(store) -> list[tuple[float, dt.date]]:
    frame = earnings.current(store, "NVDA")
    return list(zip(frame["eps"], frame["basis"]))


# -- same_report -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "same"),
    [
        (1.45, 1.45, True),
        (2.0, 2.0, True),
        (1.45, 1.0, False),  # an integer EPS is not "1.45 to its last decimal"
        (1.0, 1.45, False),
        (2.0, 2.4, False),
        (2.4, 2.0, False),
        (0.612, 0.61, False),  # rounding is a restatement's, and there is no split here
        (-0.35, -0.35, True),
    ],
)
def test_with_no_split_between_the_bases_only_an_equal_number_is_the_same(tmp_path, old, new, same):
    no_splits = splits_of(LocalStore(tmp_path), "NVDA")
    assert no_splits.empty
    # A later basis with no split between it and the record's is the same share basis.
    for basis in (REPORTED, D(2024, 6, 14)):
        assert (
            earnings.same_report((REPORTED, old, REPORTED), (REPORTED, new, basis), no_splits)
            is same
        )


def test_across_a_split_a_restatement_to_the_cent_is_the_same(tmp_path):
    store = LocalStore(tmp_path)
    land_split(store, "NVDA", SPLIT_DAY, "2")
    splits = splits_of(store, "NVDA")
    after = D(2024, 6, 11)
    old = (REPORTED, 2.5, REPORTED)
    assert earnings.same_report(old, (REPORTED, 1.25, after), splits)
    assert not earnings.same_report(old, (REPORTED, 1.3, after), splits)
    assert not earnings.same_report(old, (REPORTED, 1.26, after), splits)
    # A vendor's rounding to the cent: 2.51 / 2 = 1.255 is 1.25 or 1.26 written to the cent.
    assert earnings.same_report((REPORTED, 2.51, REPORTED), (REPORTED, 1.26, after), splits)
    # The unrestated number on the later basis is twice the EPS: another report.
    assert not earnings.same_report(old, (REPORTED, 2.5, after), splits)
    # Restated the other way: a record on the later basis, a copy as reported.
    assert earnings.same_report((REPORTED, 1.25, after), (REPORTED, 2.5, REPORTED), splits)
    # Another reported_date is another report, whatever the number.
    assert not earnings.same_report(old, (D(2024, 5, 23), 2.5, REPORTED), splits)


# -- land --------------------------------------------------------------------------------------


def test_land_a_different_number_with_no_split_between(tmp_path):
    store = LocalStore(tmp_path)
    assert land(store, 1.45) == 1
    assert land(store, 1.45, at="2024-07-01 21:05:00.000") == 0
    assert land(store, 1.0, at="2024-07-01 21:10:00.000") == 1
    assert on_record(store) == [(1.0, REPORTED)]
    assert land(store, 2.0, at="2024-07-01 21:15:00.000") == 1
    assert land(store, 2.4, at="2024-07-01 21:20:00.000") == 1
    assert on_record(store) == [(2.4, REPORTED)]


def test_land_keeps_the_exact_record_for_a_restatement_across_a_split(tmp_path):
    store = LocalStore(tmp_path)
    assert land(store, 2.5) == 1
    land_split(store, "NVDA", SPLIT_DAY, "2")
    after = D(2024, 6, 11)
    before = sorted((p, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())
    assert land(store, 1.25, basis=after, at="2024-07-01 21:05:00.000") == 0
    assert sorted((p, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()) == before
    assert on_record(store) == [(2.5, REPORTED)]
    # 1.3 is not 2.5 / 2 to its last decimal: a corrected report, on the later basis.
    assert land(store, 1.3, basis=after, at="2024-07-01 21:10:00.000") == 1
    assert on_record(store) == [(1.3, after)]


def test_land_a_basis_that_changes_the_number(tmp_path):
    store = LocalStore(tmp_path)
    assert land(store, 2.5) == 1
    land_split(store, "NVDA", SPLIT_DAY, "2")
    # 2.5 on the basis after the split is 5.0 per share of the report day: it lands.
    assert land(store, 2.5, basis=D(2024, 6, 11), at="2024-07-01 21:05:00.000") == 1
    assert on_record(store) == [(2.5, D(2024, 6, 11))]


def test_a_weekly_refetch_on_a_later_basis_with_the_same_numbers_lands_nothing(tmp_path):
    store = LocalStore(tmp_path)
    fetched = D(2024, 6, 7)
    rows = valid_frame([(D(2023, 12, 31), D(2024, 2, 21), 4.93), (D(2024, 3, 31), REPORTED, 6.12)])
    assert (
        earnings.land(
            store, "NVDA", rows, "alphavantage", fetched, f"{fetched} 22:00:00.000", basis=fetched
        )
        == 2
    )
    week = fetched + dt.timedelta(days=7)
    assert (
        earnings.land(store, "NVDA", rows, "alphavantage", week, f"{week} 22:00:00.000", basis=week)
        == 0
    )
    assert list(earnings.current(store, "NVDA")["basis"]) == [fetched, fetched]
    assert [p.parent.name for p in tmp_path.glob("raw/earnings/*/NVDA.csv")] == [
        "ingest_date=2024-06-07"
    ]


# -- near_quarters -----------------------------------------------------------------------------


def test_near_quarters_names_both_dates_and_leaves_quarters_apart_alone():
    rows = valid_frame(
        [
            (D(2024, 3, 31), D(2024, 4, 24), 1.0),
            (D(2024, 6, 29), D(2024, 7, 24), 1.1),
            (D(2024, 9, 28), D(2024, 10, 23), 1.2),
        ]
    )
    assert earnings.near_quarters(rows, []).empty
    assert earnings.near_quarters(rows, [D(2023, 12, 31), D(2024, 3, 31)]).empty
    near = earnings.near_quarters(rows, [D(2024, 6, 30)])
    assert list(near["fiscal_date_ending"]) == ["2024-06-29"]
    [reason] = near["reason"]
    assert "2024-06-29" in reason and "2024-06-30" in reason and "1 day(s)" in reason
    # Both of two such dates in one answer; 44 days apart is near, 45 is not.
    pair = valid_frame([(D(2024, 6, 30), D(2024, 8, 1), 1.0), (D(2024, 5, 17), D(2024, 8, 1), 1.0)])
    assert sorted(earnings.near_quarters(pair, [])["fiscal_date_ending"]) == [
        "2024-05-17",
        "2024-06-30",
    ]
    apart = valid_frame(
        [(D(2024, 6, 30), D(2024, 8, 1), 1.0), (D(2024, 5, 16), D(2024, 8, 1), 1.0)]
    )
    assert earnings.near_quarters(apart, []).empty


# -- the trailing EPS the build computes -------------------------------------------------------

SESSIONS = sessions_between(D(2024, 1, 2), D(2025, 6, 30))
# Four quarters whose doubles sum to ~5.6e-17, not 0; a dividend so a payout has a numerator.
ZERO = [
    (D(2023, 3, 31), D(2023, 4, 30), 0.1),
    (D(2023, 6, 30), D(2023, 7, 30), 0.2),
    (D(2023, 9, 30), D(2023, 10, 30), -0.3),
    (D(2023, 12, 31), D(2024, 1, 30), 0.0),
]
# The quarter ending June 2024 under two dates (a 52/53-week year's and a vendor's month-end),
# landed directly (no import refuses it), reported a fortnight apart.
TWICE = [
    (D(2023, 9, 30), D(2023, 10, 30), 1.1),
    (D(2023, 12, 31), D(2024, 1, 30), 1.2),
    (D(2024, 3, 31), D(2024, 4, 30), 1.3),
    (D(2024, 6, 29), D(2024, 7, 29), 1.4),
    (D(2024, 6, 30), D(2024, 8, 15), 1.4),
    (D(2024, 9, 30), D(2024, 10, 30), 1.5),
    (D(2024, 12, 31), D(2025, 1, 30), 1.6),
    (D(2025, 3, 31), D(2025, 4, 30), 1.7),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """daily_prices as the build published it, per symbol, by trade_date."""
    root = tmp_path_factory.mktemp("rules") / "lake"
    store = LocalStore(root)
    n = len(SESSIONS)
    for seed, symbol in enumerate(("ZERO", "TWICE")):
        close = 50.0 + np.random.default_rng(seed).normal(0, 0.2, n).cumsum()
        bars = pd.DataFrame(
            {
                "trade_date": SESSIONS,
                "open": close.round(2),
                "high": (close + 1).round(2),
                "low": (close - 1).round(2),
                "close": close.round(2),
                "volume": np.full(n, 10_000),
            }
        )
        data = frame_to_csv(bars_to_frame(symbol, bars, "import", f"{INGESTED} 20:00:00.000"))
        store.put_bytes(raw_key(INGESTED, symbol), data)
    dividend = actions.judge_actions(
        actions.DIVIDENDS, pd.DataFrame({"date": ["2024-03-15"], "value": ["0.25"]})
    )[0]
    actions.land_actions(store, actions.DIVIDENDS, "ZERO", dividend, "import", INGESTED, STAMP)
    for symbol, quarters in (("ZERO", ZERO), ("TWICE", TWICE)):
        landed = earnings.land(
            store, symbol, valid_frame(quarters), "import", INGESTED, "2024-07-01 21:00:00.000"
        )
        assert landed == len(quarters)
    settings = Settings.from_env({}, home=root, tickers="ZERO,TWICE")
    with DuckDBEngine(root) as engine:
        assert run_build(settings, store, engine, full=True).status == "published"
        out = engine.fetch_df(f"SELECT * FROM {TABLE} ORDER BY symbol, trade_date")
    out["trade_date"] = pd.to_datetime(out["trade_date"]).dt.date
    return {s: frame.set_index("trade_date") for s, frame in out.groupby("symbol")}


def test_four_quarters_summing_to_zero_have_a_ttm_of_zero_and_no_ratios(built):
    zero = built["ZERO"]
    assert sum(eps for *_, eps in ZERO) != 0  # what the build must not carry through
    # From the first session after the fourth report until its quarter is a year old.
    known = zero[(zero.index > D(2024, 1, 30)) & (zero.index <= D(2024, 12, 30))]
    assert pd.isna(zero.loc[D(2024, 1, 30), "eps_ttm"])  # three quarters known
    assert len(known) > 200
    assert (known["eps_ttm"] == 0.0).all(), known["eps_ttm"].unique()[:5]
    assert known["pe_ratio_ttm"].isna().all() and known["payout_ratio_ttm"].isna().all()
    assert known.loc[D(2024, 3, 15), "dividend_yield_ttm"] > 0  # a payout had a numerator


def test_one_quarter_under_two_dates_is_no_trailing_year(built):
    twice = built["TWICE"]
    # Before the second date is known: 2023Q4..2024Q2 as 2024-06-29, a year.
    assert twice.loc[D(2024, 8, 15), "eps_ttm"] == pytest.approx(1.1 + 1.2 + 1.3 + 1.4, rel=1e-12)
    # From the first session after 2024-08-15 until 2024-06-29 leaves the four latest (the
    # report of 2025-03-31): both dates among them, their ends span ~183 days, not ~273.
    doubled = twice[(twice.index >= D(2024, 8, 16)) & (twice.index <= D(2025, 4, 30))]
    assert len(doubled) > 150
    assert doubled["eps_ttm"].isna().all(), doubled["eps_ttm"].dropna().head()
    assert doubled["pe_ratio_ttm"].isna().all()
    # Then 2024-06-30..2025-03-31: a year again.
    after = twice.loc[D(2025, 5, 1)]
    assert after["eps_ttm"] == pytest.approx(1.4 + 1.5 + 1.6 + 1.7, rel=1e-12)
    assert after["pe_ratio_ttm"] == pytest.approx(after["close"] / after["eps_ttm"], rel=1e-12)
