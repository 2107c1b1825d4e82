"""Quarterly earnings out of Polygon's financials answers (``/vX/reference/financials``).

Each result is one SEC filing's period, as Polygon's spec and its Python client's fixture
(test_rest/mocks/vX/reference/financials.json) show it: ``start_date``, ``end_date``,
``filing_date``, ``fiscal_period`` ("Q1".."Q4", "FY"), ``fiscal_year``, ``timeframe`` and
``financials.income_statement.<concept> = {"value", "unit", "label", "order"}``. Polygon
derives a Q4 from the 10-K, so it carries the 10-K's filing date.

What the lake takes from a quarter (the text frame lake.earnings.empty_earnings describes):
- ``fiscal_date_ending`` = ``end_date``;
- ``reported_date`` = ``filing_date``: the day the 10-Q or 10-K was filed. That is on or
  after the earnings release (often the same day, sometimes weeks later), so a P/E starts
  late, never early;
- ``reported_eps`` = diluted EPS (``diluted_earnings_per_share``), what a P/E is quoted on;
  basic EPS where the filing gives no diluted figure (the two are equal for a loss), and
  "None" (not reported yet) where it gives neither. The EPS is on the share basis of its
  filing: the lake's basis is the reported date, which is the filing date here.

A period filed twice (an amendment, 10-Q/A) keeps its first filing that gives an EPS: that
is what the market knew from that day; the later figure is left out and said.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterable
from typing import Any

import pandas as pd

from marketlake import fields
from marketlake.lake.earnings import empty_earnings

QUARTERS = ("Q1", "Q2", "Q3", "Q4")
EPS_CONCEPTS = ("diluted_earnings_per_share", "basic_earnings_per_share")
UNREPORTED = "None"
# The lake's prices are US dollars: EPS in another currency cannot be set against them.
LAKE_CURRENCY = "USD"


@dataclasses.dataclass(frozen=True)
class ParsedEarnings:
    earnings: pd.DataFrame  # empty_earnings()'s columns, one row per quarter
    skipped: list[str]  # results left out, each with why


def _eps(result: dict) -> tuple[str, str]:
    """The quarter's EPS as text (UNREPORTED when the filing has none), and why it cannot be
    used ("" when it can)."""
    statements = result.get("financials")
    income = statements.get("income_statement") if isinstance(statements, dict) else None
    if not isinstance(income, dict):
        return UNREPORTED, ""
    for concept in EPS_CONCEPTS:
        item = income.get(concept)
        if item is None:
            continue
        if not isinstance(item, dict):
            return fields.as_text(item), f"{concept} is not an object"
        unit = item.get("unit")
        if isinstance(unit, str) and not unit.upper().startswith(LAKE_CURRENCY):
            return fields.as_text(item.get("value")), f"{concept} is in {unit[:40]!r}, not USD"
        value = item.get("value")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            # Kept as received: judge rejects it visibly (quarantine), as any bad number.
            return fields.as_text(value), ""
        return repr(float(value)) if isinstance(value, float) else str(value), ""
    return UNREPORTED, ""


def parse_financials(results: Iterable[Any], symbol: str) -> ParsedEarnings:
    """The quarters of `symbol` in a financials answer's results (every page's)."""
    first: dict[str, tuple[str, str, str]] = {}
    skipped: list[str] = []
    for result in results:
        if not isinstance(result, dict):
            skipped.append(f"a result that is not an object: {fields.as_text(result)[:40]!r}")
            continue
        period = result.get("fiscal_period")
        timeframe = result.get("timeframe")
        if period not in QUARTERS or timeframe not in (None, "quarterly"):
            # A fiscal year or trailing twelve months: not a quarter of its own.
            continue
        end = fields.as_text(result.get("end_date"))
        filed = fields.as_text(result.get("filing_date"))
        eps, problem = _eps(result)
        if problem:
            skipped.append(f"{symbol} quarter ending {end[:40]}: {problem}")
            continue
        kept = first.get(end)
        if kept is not None and (kept[2] == UNREPORTED) != (eps == UNREPORTED):
            # A filing without the EPS holds no place: the one that gives it is the report.
            if kept[2] == UNREPORTED:
                first[end] = (end, filed, eps)
            continue
        if kept is not None and _iso(kept[1]) and _iso(filed) and kept[1] != filed:
            earlier, later = sorted([kept, (end, filed, eps)], key=lambda row: row[1])
            first[end] = earlier
            if later[2] != earlier[2]:
                skipped.append(
                    f"{symbol} quarter ending {end[:40]}: the filing of {later[1]} is left "
                    f"out; its first filing ({earlier[1]}) is what the market knew"
                )
            continue
        if kept is not None:
            # Two answers of one filing, or a filing date that is not a date: both go to
            # judge, which keeps one copy of one report and rejects two different ones.
            first[f"{end}\x00{len(first)}"] = (end, filed, eps)
            continue
        first[end] = (end, filed, eps)
    frame = empty_earnings()
    if first:
        frame = pd.DataFrame(
            list(first.values()), columns=list(frame.columns), dtype=object
        ).reset_index(drop=True)
    return ParsedEarnings(frame, skipped)


def _iso(text: str) -> bool:
    return fields.date_or_none(text) is not None
