"""parse_financials: Polygon's /vX/reference/financials results (one per filing period, as
its spec and its Python client's fixture show them) into the lake's earnings text frame, and
what lake.earnings.judge then makes of it. The results here are written by hand."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from marketlake.lake.earnings import empty_earnings, judge
from marketlake.providers.polygon.financials import parse_financials

COLUMNS = ["fiscal_date_ending", "reported_date", "reported_eps"]
OMIT: Any = object()  # a concept the filing does not carry


def result(
    end: str,
    filed: str,
    diluted: Any = OMIT,
    basic: Any = OMIT,
    period: str | None = None,
    timeframe: str | None = "quarterly",
    unit: str = "USD / shares",
) -> dict:
    """One result in the vendor's shape; the fiscal period follows from `end` unless given."""
    day = dt.date.fromisoformat(end)
    income: dict = {"revenues": {"label": "Revenues", "order": 100, "unit": "USD", "value": 1e9}}
    for concept, label, order, value in (
        ("basic_earnings_per_share", "Basic Earnings Per Share", 4200, basic),
        ("diluted_earnings_per_share", "Diluted Earnings Per Share", 4300, diluted),
    ):
        if value is not OMIT:
            income[concept] = {"label": label, "order": order, "unit": unit, "value": value}
    out = {
        "cik": "0000320193",
        "company_name": "APPLE INC.",
        "start_date": day.replace(day=1).isoformat(),
        "end_date": end,
        "filing_date": filed,
        "fiscal_period": period or f"Q{(day.month - 1) // 3 + 1}",
        "fiscal_year": str(day.year),
        "tickers": ["AAPL"],
        "financials": {"income_statement": income},
    }
    if timeframe is not None:
        out["timeframe"] = timeframe
    return out


def rows(frame: pd.DataFrame) -> list[tuple]:
    assert list(frame.columns) == COLUMNS
    return list(zip(*(frame[c] for c in COLUMNS)))


def test_the_four_quarters_are_kept_and_fiscal_years_and_ttm_left_out():
    results = [
        result("2023-03-31", "2023-05-05", 1.52),
        result("2023-06-30", "2023-08-04", 1.26),
        result("2023-09-30", "2023-11-03", 1.46),
        result("2023-09-30", "2023-11-03", 5.67, period="FY", timeframe="annual"),
        result("2023-09-30", "2023-11-03", 5.67, period="TTM", timeframe="ttm"),
        # A quarter's period with another timeframe is not a quarter's figure either.
        result("2023-06-30", "2023-08-04", 9.99, timeframe="ttm"),
        result("2023-12-31", "2024-02-02", 2.18, timeframe=None),  # no timeframe: a quarter
    ]
    parsed = parse_financials(results, "AAPL")
    assert rows(parsed.earnings) == [
        ("2023-03-31", "2023-05-05", "1.52"),
        ("2023-06-30", "2023-08-04", "1.26"),
        ("2023-09-30", "2023-11-03", "1.46"),
        ("2023-12-31", "2024-02-02", "2.18"),
    ]
    assert parsed.skipped == []
    judged = judge(parsed.earnings)
    assert judged.rejected.empty and len(judged.valid) == 4


def test_diluted_eps_is_preferred_basic_is_the_fallback_and_neither_is_unreported():
    results = [
        result("2023-03-31", "2023-05-05", diluted=1.52, basic=1.53),
        result("2023-06-30", "2023-08-04", basic=1.27),
        result("2023-09-30", "2023-11-03", diluted=None, basic=1.47),  # a null diluted figure
        result("2023-12-31", "2024-02-02"),
        {**result("2024-03-31", "2024-05-03"), "financials": {}},  # no income statement
    ]
    parsed = parse_financials(results, "AAPL")
    assert [eps for *_, eps in rows(parsed.earnings)] == ["1.52", "1.27", "1.47", "None", "None"]
    judged = judge(parsed.earnings)
    assert judged.unreported == 2 and judged.rejected.empty
    assert list(judged.valid["eps"]) == [1.52, 1.27, 1.47]


def test_eps_in_another_currency_is_left_out_naming_the_symbol_and_quarter():
    results = [
        result("2023-03-31", "2023-05-05", 1.52),
        result("2023-06-30", "2023-08-04", 8.1, unit="EUR / shares"),
    ]
    parsed = parse_financials(results, "SAP")
    assert rows(parsed.earnings) == [("2023-03-31", "2023-05-05", "1.52")]
    [why] = parsed.skipped
    assert why.startswith("SAP quarter ending 2023-06-30: ")
    assert "EUR / shares" in why and "not USD" in why


def test_a_text_or_boolean_eps_reaches_judge_as_text_and_is_rejected():
    results = [
        result("2023-03-31", "2023-05-05", "1.5x"),
        result("2023-06-30", "2023-08-04", True),
        result("2023-09-30", "2023-11-03", 1.46),
    ]
    parsed = parse_financials(results, "AAPL")
    assert [eps for *_, eps in rows(parsed.earnings)] == ["1.5x", "True", "1.46"]
    assert parsed.skipped == []
    judged = judge(parsed.earnings)
    assert list(judged.rejected["reported_eps"]) == ["1.5x", "True"]
    assert all(judged.rejected["reason"].str.contains("reported_eps"))
    assert [d.isoformat() for d in judged.valid["fiscal"]] == ["2023-09-30"]


def test_an_amendment_on_a_later_day_keeps_the_first_filing_and_names_the_later():
    first = result("2023-06-30", "2023-08-04", 1.26)
    amended = result("2023-06-30", "2023-09-13", 1.37)
    following = result("2023-09-30", "2023-11-03", 1.46)
    for order in ([first, amended, following], [following, amended, first]):
        parsed = parse_financials(order, "AAPL")
        got = sorted(rows(parsed.earnings))
        assert got == [("2023-06-30", "2023-08-04", "1.26"), ("2023-09-30", "2023-11-03", "1.46")]
        [why] = parsed.skipped
        assert why.startswith("AAPL quarter ending 2023-06-30: the filing of 2023-09-13")
        assert "first filing (2023-08-04)" in why


def test_an_amendment_with_the_same_eps_is_silent():
    results = [
        result("2023-06-30", "2023-08-04", 1.26),
        result("2023-06-30", "2023-09-13", 1.26),
    ]
    parsed = parse_financials(results, "AAPL")
    assert rows(parsed.earnings) == [("2023-06-30", "2023-08-04", "1.26")]
    assert parsed.skipped == []


def test_one_filing_day_with_two_eps_is_rejected_by_judge_and_one_eps_kept_once():
    twice = [
        result("2023-06-30", "2023-08-04", 1.26),
        result("2023-06-30", "2023-08-04", 1.31),
        result("2023-09-30", "2023-11-03", 1.46),
    ]
    parsed = parse_financials(twice, "AAPL")
    assert len(parsed.earnings) == 3 and parsed.skipped == []
    judged = judge(parsed.earnings)
    assert sorted(judged.rejected["reported_eps"]) == ["1.26", "1.31"]
    assert all(judged.rejected["reason"].str.contains("given with different reports"))
    assert [d.isoformat() for d in judged.valid["fiscal"]] == ["2023-09-30"]

    same = parse_financials(twice[:1] * 2, "AAPL")
    judged = judge(same.earnings)
    assert judged.rejected.empty and list(judged.valid["eps"]) == [1.26]


def test_a_result_that_is_not_an_object_is_left_out_and_said():
    results = ["a stray line", result("2023-06-30", "2023-08-04", 1.26), None]
    parsed = parse_financials(results, "AAPL")
    assert rows(parsed.earnings) == [("2023-06-30", "2023-08-04", "1.26")]
    assert len(parsed.skipped) == 2
    assert all("not an object" in why for why in parsed.skipped)
    assert "a stray line" in parsed.skipped[0]


def test_no_results_are_an_empty_frame_of_the_lakes_columns():
    for results in ([], [result("2023-09-30", "2023-11-03", 5.67, period="FY")]):
        parsed = parse_financials(results, "SPY")
        assert parsed.earnings.empty and parsed.skipped == []
        assert list(parsed.earnings.columns) == list(empty_earnings().columns) == COLUMNS
        assert judge(parsed.earnings).valid.empty


def test_numbers_keep_their_exact_text():
    values = [0.1, 2, -0.35, 0.0038, 1e-05, 12.0, -3]
    results = [
        result(f"{2020 + i}-03-31", f"{2020 + i}-05-01", value) for i, value in enumerate(values)
    ]
    parsed = parse_financials(results, "AAPL")
    texts = [eps for *_, eps in rows(parsed.earnings)]
    assert texts == ["0.1", "2", "-0.35", "0.0038", "1e-05", "12.0", "-3"]
    # And each reads back as the very number sent.
    assert list(judge(parsed.earnings).valid["eps"]) == [float(v) for v in values]


def test_a_filing_without_eps_holds_no_place_for_a_later_one_that_gives_it():
    # In either order: the period's report is the first filing that gives an EPS.
    first, later = result("2023-06-30", "2023-08-04"), result("2023-06-30", "2023-09-01", 1.3)
    for results in ([first, later], [later, first]):
        parsed = parse_financials(results, "AAPL")
        assert rows(parsed.earnings) == [("2023-06-30", "2023-09-01", "1.3")]
        assert parsed.skipped == []
    # A later filing without the EPS leaves the first one's alone.
    parsed = parse_financials([later, result("2023-06-30", "2023-10-02")], "AAPL")
    assert rows(parsed.earnings) == [("2023-06-30", "2023-09-01", "1.3")]
