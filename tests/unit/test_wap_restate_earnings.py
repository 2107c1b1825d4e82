"""Issue 24, item 3: a quarterly report that lands after the sessions it changes were
published (a late report of an old quarter, a corrected EPS, the weekly new quarter).

The version records each symbol's earnings fingerprints by year of reported_date; the next
incremental build recomputes only the symbols whose reports changed, from Jan 1 of the
earliest year that differs, and what it publishes equals a full build of the same lake.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from test_wap_restate import SYMBOLS, land_action, land_bars, rows_of
from test_wap_restate import lake as lake  # the fixture the tests below build on
from test_wap_versions import same_rows

from marketlake.lake import actions, earnings
from marketlake.wap import restate
from marketlake.wap.pipeline import TABLE
from marketlake.wap.versions import load_registry

# (fiscal_date_ending, reported_date, reported_eps): AAA's quarters 2020Q4..2023Q4.
QUARTERS = [
    ("2020-12-31", "2021-02-10", 0.50),
    ("2021-03-31", "2021-05-05", 0.55),
    ("2021-06-30", "2021-08-04", -0.20),
    ("2021-09-30", "2021-11-03", 0.60),
    ("2021-12-31", "2022-02-09", 0.62),
    ("2022-03-31", "2022-05-04", 0.64),
    ("2022-06-30", "2022-08-03", 0.66),
    ("2022-09-30", "2022-11-02", 0.70),
    ("2022-12-31", "2023-02-08", 0.72),
    ("2023-03-31", "2023-05-03", 0.75),
    ("2023-06-30", "2023-08-02", 0.77),
    ("2023-09-30", "2023-11-01", 0.80),
    ("2023-12-31", "2024-02-07", 0.82),
]
LATE = QUARTERS[6]  # 2022Q2: missing from the first landing


def land_earnings(lake, symbol: str, quarters: list, ingest_date: str) -> int:
    rows = pd.DataFrame(
        {
            "fiscal_date_ending": [q[0] for q in quarters],
            "reported_date": [q[1] for q in quarters],
            "reported_eps": [str(q[2]) for q in quarters],
        }
    )
    judged = earnings.judge(rows)
    assert judged.rejected.empty
    day = dt.date.fromisoformat(ingest_date)
    return earnings.land(lake.store, symbol, judged.valid, "import", day, f"{ingest_date} 23:45")


@pytest.fixture()
def reported(lake):
    """The lake with AAA's reports but 2022Q2, and BBB's all, built."""
    land_earnings(lake, "AAA", [q for q in QUARTERS if q != LATE], "2024-04-02")
    land_earnings(lake, "BBB", QUARTERS, "2024-04-02")
    first = lake.build()
    assert first.mode == "incremental" and "earnings changed for AAA, BBB" in first.message
    assert first.restated == {"AAA": "2021-01-04", "BBB": "2021-01-04"}
    return lake


def test_the_version_records_the_earnings_it_applied(reported):
    current = load_registry(reported.store, TABLE).current_version()
    assert set(current.actions["AAA"]["earnings"]) == {"2021", "2022", "2023", "2024"}
    assert "earnings" not in current.actions["CCC"]  # none: recorded as before earnings
    aaa = {r["trade_date"]: r for r in rows_of(reported, "AAA")}
    # 2021Q1..2021Q4 known from the session after 2021-11-03 on: 0.55 - 0.2 + 0.6 + 0.5.
    assert aaa[dt.date(2021, 11, 4)]["eps_ttm"] == pytest.approx(1.45, rel=1e-12)
    assert aaa[dt.date(2021, 11, 3)]["eps_ttm"] is None  # three quarters known


def test_a_late_report_of_an_old_quarter_restates_its_symbol_from_that_year(reported):
    before = {s: rows_of(reported, s) for s in SYMBOLS}
    assert land_earnings(reported, "AAA", [LATE], "2024-04-03") == 1

    late = reported.build()
    assert late.mode == "incremental" and "earnings changed for AAA" in late.message
    assert "BBB" not in late.message and "splits or dividends" not in late.message
    assert late.restated == {"AAA": "2022-01-03"}  # the first session of 2022
    assert late.years == [2022, 2023, 2024] and late.new_rows == 0
    for symbol in ("BBB", "CCC"):
        same_rows(before[symbol], rows_of(reported, symbol))
    aaa = rows_of(reported, "AAA")
    same_rows(
        [r for r in before["AAA"] if r["trade_date"].year < 2022],
        [r for r in aaa if r["trade_date"].year < 2022],
    )
    # The missing quarter left 2022Q3's four latest non-consecutive: NULL, now a value.
    after_q3 = {r["trade_date"]: r for r in aaa}[dt.date(2022, 11, 3)]
    assert after_q3["eps_ttm"] == pytest.approx(0.62 + 0.64 + 0.66 + 0.70, rel=1e-12)
    assert {r["trade_date"]: r for r in before["AAA"]}[dt.date(2022, 11, 3)]["eps_ttm"] is None

    incremental = reported.rows()
    assert reported.build(full=True).mode == "full"
    same_rows(incremental, reported.rows(), rel=1e-14)


def test_a_corrected_eps_restates_from_its_year_and_the_weekly_quarter_from_this_one(reported):
    before = {s: rows_of(reported, s) for s in SYMBOLS}
    fixed = ("2023-03-31", "2023-05-03", 0.95)  # was 0.75
    assert land_earnings(reported, "BBB", [fixed], "2024-04-03") == 1
    late = reported.build()
    assert late.restated == {"BBB": "2023-01-03"} and late.years == [2023, 2024]
    assert "earnings changed for BBB" in late.message
    for symbol in ("AAA", "CCC"):
        same_rows(before[symbol], rows_of(reported, symbol))
    incremental = reported.rows()
    reported.build(full=True)
    same_rows(incremental, reported.rows(), rel=1e-14)

    # New bars and the next quarter, reported inside them: only this year is rebuilt.
    land_bars(reported, (dt.date(2024, 4, 1), dt.date(2024, 5, 10)), dt.date(2024, 5, 13))
    land_earnings(reported, "AAA", [("2024-03-31", "2024-05-01", 0.9)], "2024-05-13")
    weekly = reported.build()
    assert weekly.restated == {"AAA": "2024-01-02"} and weekly.years == [2024]
    assert "new raw data; earnings changed for AAA" in weekly.message
    incremental = reported.rows()
    reported.build(full=True)
    same_rows(incremental, reported.rows(), rel=1e-14)


def test_a_dividend_and_a_report_in_one_run_restate_from_the_earlier(reported):
    land_action(reported, actions.DIVIDENDS, "CCC", "2023-05-10", 0.3, "2024-04-03")
    land_earnings(reported, "CCC", [q for q in QUARTERS if q[1] >= "2022"], "2024-04-03")
    late = reported.build()
    assert late.restated == {"CCC": "2022-01-03"}
    assert "splits or dividends changed for CCC" in late.message
    assert "earnings changed for CCC" in late.message
    incremental = reported.rows()
    reported.build(full=True)
    same_rows(incremental, reported.rows(), rel=1e-14)


# -- restate.restated_symbols --------------------------------------------------------------


def frames(reports: list) -> dict[str, pd.DataFrame]:
    """build_frames' frames: no splits or dividends, the (symbol, fiscal, reported, eps)
    reports, each on the basis of its reported_date."""

    def days(index: int) -> pd.Series:
        return pd.Series(pd.to_datetime([r[index] for r in reports]), dtype="datetime64[ns]")

    empty = pd.Series([], dtype="datetime64[ns]")
    return {
        "corporate_splits": pd.DataFrame({"symbol": [], "ex_date": empty, "split_factor": []}),
        "corporate_dividends": pd.DataFrame({"symbol": [], "ex_date": empty, "amount": []}),
        earnings.TABLE: pd.DataFrame(
            {
                "symbol": [r[0] for r in reports],
                "fiscal_date_ending": days(1),
                "reported_date": days(2),
                "reported_eps": [float(r[3]) for r in reports],
                "eps_basis_date": days(2),
            }
        ),
    }


REPORTS = [
    ("X", "2020-12-31", "2021-02-01", 1.0),
    ("X", "2021-03-31", "2021-05-01", 1.1),
    ("X", "2021-12-31", "2022-02-01", 1.2),
    ("Y", "2021-12-31", "2022-02-03", 2.0),
]


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        (REPORTS, {}),
        # A late report of an old quarter: from its year.
        ([*REPORTS, ("X", "2021-06-30", "2021-08-01", 0.3)], {"X": dt.date(2021, 1, 1)}),
        # A corrected EPS, a changed reported_date (both years differ: the earlier), a
        # removed report.
        (
            [*REPORTS[:2], ("X", "2021-12-31", "2022-02-01", 1.25), REPORTS[3]],
            {"X": dt.date(2022, 1, 1)},
        ),
        (
            [*REPORTS[:2], ("X", "2021-12-31", "2021-12-30", 1.2), REPORTS[3]],
            {"X": dt.date(2021, 1, 1)},
        ),
        ([REPORTS[0], *REPORTS[2:]], {"X": dt.date(2021, 1, 1)}),
        # The next quarter after everything applied; a symbol's first reports; all gone.
        ([*REPORTS, ("Y", "2022-03-31", "2023-05-01", 2.1)], {"Y": dt.date(2023, 1, 1)}),
        ([*REPORTS, ("Z", "2022-03-31", "2022-05-01", 3.0)], {"Z": dt.date(2022, 1, 1)}),
        (REPORTS[:3], {"Y": dt.date(2022, 1, 1)}),
    ],
)
def test_which_symbols_a_change_in_their_earnings_restates(reports, expected):
    recorded = restate.applied_actions(frames(REPORTS))
    assert restate.restated_symbols(recorded, frames(reports)) == expected
    # The Lambda starts a build exactly when the applied fingerprints differ.
    assert (restate.applied_actions(frames(reports)) != recorded) == bool(expected)


def test_without_earnings_the_fingerprints_are_what_they_were():
    """A symbol without earnings records only its splits and dividends, as before issue 24,
    and a frame set without corporate_earnings reads as none."""
    with_none = frames([])
    applied = restate.applied_actions(with_none)
    assert applied == {}
    del with_none[earnings.TABLE]
    assert restate.applied_actions(with_none) == {}
    recorded = restate.applied_actions(frames(REPORTS))
    assert recorded["X"]["splits"] == "" and set(recorded["X"]["earnings"]) == {"2021", "2022"}
    assert restate.changed(recorded, restate.applied_actions(frames(REPORTS[:3]))) == {
        "Y": ["earnings"]
    }
