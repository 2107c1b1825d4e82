"""Bars (and corporate actions) out of an Alpha Vantage data answer, JSON or CSV. Each value
is read by marketlake.fields, the parser import and validation use too."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

from marketlake import fields
from marketlake.lake.earnings import empty_earnings
from marketlake.providers.alphavantage.answers import (
    ACTION_FIELDS,
    CSV_HEADER,
    EARNINGS_FIELDS,
    EARNINGS_KEY,
    SERIES_KEY,
    _loads,
    _Pairs,
    _strip_body,
)
from marketlake.providers.alphavantage.errors import PayloadError
from marketlake.providers.base import BAR_COLUMNS, REJECTED_COLUMNS, empty_bars, empty_rejected

JSON_FIELDS = ("1. open", "2. high", "3. low", "4. close", "5. volume")

__all__ = [
    "JSON_FIELDS",
    "REJECTED_COLUMNS",
    "ParsedBars",
    "empty_rejected",
    "parse_actions",
    "parse_csv",
    "parse_earnings",
    "parse_json",
]


@dataclasses.dataclass
class ParsedBars:
    """``bars``: the provider contract (``base.BAR_COLUMNS``, oldest first, unique dates).
    ``rejected``: rows that could not be parsed, every value a string as received, plus a
    ``reason`` column; same column names as ``BAR_COLUMNS``."""

    bars: pd.DataFrame
    rejected: pd.DataFrame


def _parse_row(
    date_value: Any, values: Sequence[Any]
) -> tuple[dt.date, float, float, float, float, int]:
    day = fields.parse_date(date_value)
    o, h, lo, c = (fields.parse_price(v, n) for n, v in zip(BAR_COLUMNS[1:5], values[:4]))
    return day, o, h, lo, c, fields.parse_volume(values[4])


class _Collector:
    """Good rows and rejected rows; a repeated trade_date keeps its first occurrence."""

    def __init__(self) -> None:
        self.good: dict[dt.date, tuple[dt.date, float, float, float, float, int]] = {}
        self.rejected: list[list[str]] = []

    def reject(self, date_value: Any, values: Sequence[Any], reason: str) -> None:
        texts = [fields.as_text(v) for v in values][:5]
        texts += [""] * (5 - len(texts))
        self.rejected.append([fields.as_text(date_value), *texts, reason])

    def add(self, date_value: Any, values: Sequence[Any]) -> None:
        try:
            row = _parse_row(date_value, values)
        except ValueError as exc:
            self.reject(date_value, values, str(exc))
            return
        if row[0] in self.good:
            self.reject(date_value, values, f"duplicate trade_date {row[0].isoformat()}")
            return
        self.good[row[0]] = row

    def result(self) -> ParsedBars:
        rows = [self.good[d] for d in sorted(self.good)]
        if rows:
            columns = list(zip(*rows))
            bars = pd.DataFrame(
                {
                    "trade_date": pd.Series(list(columns[0]), dtype=object),
                    "open": pd.Series(columns[1], dtype="float64"),
                    "high": pd.Series(columns[2], dtype="float64"),
                    "low": pd.Series(columns[3], dtype="float64"),
                    "close": pd.Series(columns[4], dtype="float64"),
                    "volume": pd.Series(columns[5], dtype="int64"),
                }
            )
        else:
            bars = empty_bars()
        rejected = pd.DataFrame(
            {
                name: pd.Series([r[i] for r in self.rejected], dtype=object)
                for i, name in enumerate(REJECTED_COLUMNS)
            }
        )
        return ParsedBars(bars=bars, rejected=rejected)


def _series_to_bars(series: Any) -> ParsedBars:
    items = series.pairs if isinstance(series, _Pairs) else list(series.items())
    collected = _Collector()
    for date_value, entry in items:
        if not isinstance(entry, dict):
            collected.reject(date_value, [entry], "entry is not a JSON object")
            continue
        missing = [f for f in JSON_FIELDS if f not in entry]
        values = [entry.get(f) for f in JSON_FIELDS]
        if missing:
            collected.reject(date_value, values, f"missing {', '.join(missing)}")
            continue
        collected.add(date_value, values)
    return collected.result()


def parse_json(text: str) -> ParsedBars:
    """Bars from a ``TIME_SERIES_DAILY`` JSON body; ``PayloadError`` if it is not one."""
    obj = _loads(_strip_body(text))
    if not isinstance(obj, dict):
        raise PayloadError("JSON body is not an object", text)
    series = obj.get(SERIES_KEY)
    if not isinstance(series, dict):
        raise PayloadError(f"JSON body has no {SERIES_KEY!r} object", text)
    return _series_to_bars(series)


def parse_csv(text: str) -> ParsedBars:
    """Bars from a ``datatype=csv`` body (header timestamp,open,high,low,close,volume)."""
    if "\x00" in text:  # the csv module rejects NUL before 3.11: refuse it everywhere alike
        raise PayloadError("NUL byte in CSV body", text)
    try:
        rows = list(csv.reader(io.StringIO(_strip_body(text), newline="")))
    except csv.Error as exc:
        raise PayloadError(f"malformed CSV ({exc})", text) from None
    rows = [r for r in rows if any(f.strip() for f in r)]  # blank lines carry nothing
    if not rows:
        raise PayloadError("empty CSV body", text)
    header = tuple(f.strip().lower() for f in rows[0])
    if header != CSV_HEADER:
        raise PayloadError(
            f"CSV header is {','.join(rows[0])[:80]!r}, expected {','.join(CSV_HEADER)!r}", text
        )
    collected = _Collector()
    for row in rows[1:]:
        if len(row) != len(CSV_HEADER):
            collected.reject(
                row[0], row[1:], f"expected {len(CSV_HEADER)} fields, found {len(row)}"
            )
            continue
        collected.add(row[0], row[1:])
    return collected.result()


def parse_actions(function: str, data: Any) -> pd.DataFrame:
    """(date, value) text rows of a SPLITS or DIVIDENDS answer, as received; ingest judges
    them. An entry that is not an object keeps its text as the date, so it is rejected."""
    date_field, value_field = ACTION_FIELDS[function]
    dates, values = [], []
    for entry in data.get("data") or []:
        if isinstance(entry, dict):
            dates.append(fields.as_text(entry.get(date_field)))
            values.append(fields.as_text(entry.get(value_field)))
        else:
            dates.append(fields.as_text(entry))
            values.append("")
    return pd.DataFrame(
        {"date": pd.Series(dates, dtype=object), "value": pd.Series(values, dtype=object)}
    )


def parse_earnings(data: Any) -> pd.DataFrame:
    """The quarters of an EARNINGS answer (classify checked that each is an object) as the
    text frame lake.earnings.empty_earnings describes, values as received ("None" included:
    lake.earnings.judge counts those as not reported). `{}` (no earnings) gives no rows."""
    quarters = data.get(EARNINGS_KEY) or []
    frame = empty_earnings()
    columns = {
        column: pd.Series([fields.as_text(q.get(name)) for q in quarters], dtype=object)
        for column, name in zip(frame.columns, EARNINGS_FIELDS)
    }
    return pd.DataFrame(columns, columns=frame.columns)
