"""Quarterly filings for polygon_fake_server's market, as ``/vX/reference/financials`` sends
them (Polygon's spec and its Python client's fixture, test_rest/mocks/vX/reference/
financials.json): one result per filing period with ``start_date``, ``end_date``,
``filing_date``, ``fiscal_period``, ``fiscal_year``, ``timeframe`` and
``financials.income_statement.<concept> = {"label", "order", "unit", "value"}``.

Every ticker files calendar quarters: a 10-Q 30 to 44 days after Q1-Q3, a 10-K 58 days after
Q4 (Polygon derives that Q4, dated by the 10-K, and also answers the fiscal year, which a
``timeframe=quarterly`` request does not get). Diluted EPS, a loss now and then; a filing
after a split executed reports per new share. Some tickers are odd on purpose:
- ``NO_FILINGS``: a fund, no results at all;
- ``BASIC_ONLY``: no diluted figure, only basic EPS;
- ``AMENDED``: its 2023-06-30 quarter filed again (a 10-Q/A) with another EPS;
- ``UNREPORTED``: its newest quarter carries no EPS.

Self-contained (stdlib and the market object), like the server that imports it.
"""

from __future__ import annotations

import datetime as dt
import math

NO_FILINGS = 4  # ticker positions
BASIC_ONLY = 6
AMENDED = 7
UNREPORTED = 1
AMENDED_QUARTER = dt.date(2023, 6, 30)
CIK = "0000{:06d}"


def quarter_ends(first: dt.date, last: dt.date) -> list[dt.date]:
    """Calendar quarter ends in [first, last]."""
    out, year = [], first.year
    while True:
        for month, day in ((3, 31), (6, 30), (9, 30), (12, 31)):
            end = dt.date(year, month, day)
            if end > last:
                return out
            if end >= first:
                out.append(end)
        year += 1


def filing_lag(position: int, end: dt.date) -> int:
    return 58 if end.month == 12 else 30 + (position * 7 + end.month) % 15


def diluted_eps(market, position: int, end: dt.date, filed: dt.date) -> float:
    """A deterministic EPS on the share basis of its filing day; every 9th quarter a loss."""
    k = end.year * 4 + end.month // 3
    eps = round(market.base[position] / 60 * (1 + 0.25 * math.sin(k + position)), 2)
    if (k + position) % 9 == 0:
        eps = -round(eps / 3, 2)
    factor = 1.0
    for ticker, at, low, high in market.splits:
        if ticker == position and filed >= market.sessions[at]:
            factor *= high / low
    return round(eps / factor, 4)


def _item(label: str, order: int, value: float) -> dict:
    return {"label": label, "order": order, "unit": "USD / shares", "value": value}


def filings(market, position: int, until: dt.date | None = None) -> list[dict]:
    """Every quarterly result of the ticker at `position`, oldest filing first."""
    if position == NO_FILINGS:
        return []
    ticker = market.tickers[position]
    first = market.sessions[0] - dt.timedelta(days=400)
    ends = quarter_ends(first, market.sessions[-1])
    out = []
    for number, end in enumerate(ends):
        filed = end + dt.timedelta(days=filing_lag(position, end))
        if until is not None and filed > until:
            continue
        start = (end.replace(day=1) - dt.timedelta(days=62)).replace(day=1)
        eps = diluted_eps(market, position, end, filed)
        income: dict = {
            "revenues": {"label": "Revenues", "order": 100, "unit": "USD", "value": 1e9 + number},
            "basic_earnings_per_share": _item(
                "Basic Earnings Per Share", 4200, round(eps * 1.01, 4)
            ),
        }
        if position != BASIC_ONLY:
            income["diluted_earnings_per_share"] = _item("Diluted Earnings Per Share", 4300, eps)
        if position == UNREPORTED and number == len(ends) - 1:
            income = {"revenues": income["revenues"]}
        result = {
            "cik": CIK.format(position),
            "company_name": f"{ticker} INC.",
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "filing_date": filed.isoformat(),
            "acceptance_datetime": f"{filed.isoformat()}T20:05:11Z",
            "fiscal_period": f"Q{(end.month - 1) // 3 + 1}",
            "fiscal_year": str(end.year),
            "timeframe": "quarterly",
            "tickers": [ticker],
            "source_filing_url": f"https://api.polygon.io/v1/reference/sec/filings/{number}",
            "financials": {"income_statement": income},
        }
        out.append(result)
        if position == AMENDED and end == AMENDED_QUARTER:
            amended_day = filed + dt.timedelta(days=40)
            if until is None or amended_day <= until:
                changed = _item("Diluted Earnings Per Share", 4300, round(eps + 0.11, 4))
                amended = {**result, "filing_date": amended_day.isoformat()}
                amended["financials"] = {
                    "income_statement": {**income, "diluted_earnings_per_share": changed}
                }
                out.append(amended)
    out.sort(key=lambda r: r["filing_date"])
    return out


def page(market, options: dict, page_size: int | None) -> tuple[dict, dict | None]:
    """One page of the answer to `options` (the query, or its cursor's), and the options of
    the next page (None on the last)."""
    position = market.position.get(options.get("ticker", ""))
    lte = options.get("filing_date.lte")
    rows = []
    if position is not None and options.get("timeframe", "quarterly") == "quarterly":
        rows = filings(market, position, dt.date.fromisoformat(lte) if lte else None)
    rows.sort(key=lambda r: r["filing_date"], reverse=options.get("order") == "desc")
    limit = max(1, min(int(options.get("limit", 10)), 100, page_size or 100))
    offset = int(options.get("offset", 0))
    body = {"results": rows[offset : offset + limit], "status": "OK"}
    body["count"] = len(body["results"])
    if offset + limit >= len(rows):
        return body, None
    kept = {k: v for k, v in options.items() if k not in ("cursor", "apiKey", "offset")}
    return body, {**kept, "offset": offset + limit}
