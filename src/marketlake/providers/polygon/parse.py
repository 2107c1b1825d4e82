"""Bars and corporate actions out of Polygon's data answers (already classified ``ok``).

Values are read by marketlake.fields where the lake reads them too, after a stricter first
look: Polygon's schema sends prices and volumes as JSON numbers, so text there (even "12.5")
is not what the vendor means to send, and the row is rejected. A rejected row keeps every
value as the text it was received as, plus the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import numbers
from collections.abc import Iterable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from marketlake import fields
from marketlake.providers.base import (
    BAR_COLUMNS,
    GROUPED_COLUMNS,
    GROUPED_REJECTED_COLUMNS,
    REJECTED_COLUMNS,
)

EASTERN = ZoneInfo("America/New_York")
# The longest ticker kept: the same bound MARKETLAKE_TICKERS has (config.parse_tickers).
MAX_TICKER_LENGTH = 15
# A symbol names raw objects (SYMBOL.csv): a path separator in one would move it elsewhere.
_PATH_SEPARATORS = ("/", "\\")
PRICE_FIELDS = ("o", "h", "l", "c")
ACTION_COLUMNS = ["symbol", "date", "value"]
# The lake's prices are US dollars: a dividend in another currency cannot be set against them.
LAKE_CURRENCY = "USD"

Bar = tuple[dt.date, float, float, float, float, int]


def ticker_problem(value: Any) -> str | None:
    """Why `value` cannot be a symbol of the lake, or None. Tickers are kept as Polygon
    spells them (BRK.B, and lower-case letters inside some, e.g. preferreds like KIMpL):
    only empty, over-long, non-text tickers and those holding a character outside
    printable ASCII (controls, blanks, non-ASCII: the vendor has sent rows of binary junk)
    or a path separator are refused."""
    if not isinstance(value, str):
        return f"ticker {fields.as_text(value)[:40]!r} is not text"
    if not value:
        return "ticker is empty"
    if len(value) > MAX_TICKER_LENGTH:
        return f"ticker {value[:40]!r} is longer than {MAX_TICKER_LENGTH} characters"
    for char in value:
        if not "!" <= char <= "~":
            return (
                f"ticker {value[:40]!r} holds {char!r}: not printable ASCII "
                "(a control, blank or non-ASCII character)"
            )
        if char in _PATH_SEPARATORS:
            return f"ticker {value[:40]!r} holds a path separator {char!r}"
    return None


def _number(entry: dict, key: str, name: str) -> Any:
    value = entry.get(key)
    if value is None:
        raise fields.FieldError(f"{name} ({key}) is missing", fields.NOT_A_NUMBER)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        text = fields.as_text(value)[:40]
        raise fields.FieldError(f"{name} ({key}) {text!r} is not a number", fields.NOT_A_NUMBER)
    return value


def _day(t: Any, days: dict[Any, dt.date]) -> dt.date:
    """The US/Eastern date of a millisecond timestamp (Polygon stamps a daily bar with its
    window's start, midnight Eastern, in ranges and its end, 16:00 Eastern, in grouped
    answers: the Eastern date is the session either way)."""
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not math.isfinite(t):
        raise fields.FieldError(f"t {fields.as_text(t)[:40]!r} is not a time", fields.NOT_A_DATE)
    if t in days:  # a grouped answer stamps every row alike: convert once
        return days[t]
    try:
        day = dt.datetime.fromtimestamp(float(t) / 1000.0, tz=EASTERN).date()
    except (OverflowError, OSError, ValueError):
        raise fields.FieldError(f"t {t!r} is not a time", fields.NOT_A_DATE) from None
    days[t] = day
    return day


def _bar(entry: dict, days: dict[Any, dt.date]) -> Bar:
    day = _day(entry.get("t"), days)
    o, h, lo, c = (
        fields.parse_price(_number(entry, key, name), name)
        for key, name in zip(PRICE_FIELDS, BAR_COLUMNS[1:5])
    )
    # A float volume is accepted when whole (1.2345e6); 25933.6 is not a share count.
    volume = fields.parse_volume(_number(entry, "v", "volume"))
    return day, o, h, lo, c, volume


def _texts(entry: Any) -> list[str]:
    """trade_date (the raw ``t``), open, high, low, close, volume as received."""
    if not isinstance(entry, dict):
        return [fields.as_text(entry), "", "", "", "", ""]
    keys = ("t", *PRICE_FIELDS, "v")
    return [fields.as_text(entry.get(k)) for k in keys]


def _bar_frame(rows: list[Bar], symbols: list[str] | None = None) -> pd.DataFrame:
    columns: list[tuple[Any, ...]] = list(zip(*rows)) if rows else [() for _ in BAR_COLUMNS]
    data = {
        "trade_date": pd.Series(list(columns[0]), dtype=object),
        "open": pd.Series(columns[1], dtype="float64"),
        "high": pd.Series(columns[2], dtype="float64"),
        "low": pd.Series(columns[3], dtype="float64"),
        "close": pd.Series(columns[4], dtype="float64"),
        "volume": pd.Series(columns[5], dtype="int64"),
    }
    if symbols is not None:
        data = {"symbol": pd.Series(symbols, dtype=object), **data}
    return pd.DataFrame(data)


def _text_frame(rows: list[list[str]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {name: pd.Series([r[i] for r in rows], dtype=object) for i, name in enumerate(columns)}
    )


def _results(data: Any) -> list:
    results = data.get("results") if isinstance(data, dict) else None
    return results if isinstance(results, list) else []


@dataclasses.dataclass
class ParsedGrouped:
    bars: pd.DataFrame  # GROUPED_COLUMNS, sorted by symbol
    rejected: pd.DataFrame  # GROUPED_REJECTED_COLUMNS


def parse_grouped(data: Any, session: dt.date) -> ParsedGrouped:
    """Every ticker's bar in a grouped-daily answer for `session`. A row is rejected when
    its ticker cannot be a symbol, a price or the volume is missing or not a number, its
    time is another day's, or its ticker came already. Numeric but impossible bars (high
    below low...) are kept: validation judges them."""
    symbols: list[str] = []
    rows: list[Bar] = []
    rejected: list[list[str]] = []
    seen: set[str] = set()
    days: dict[Any, dt.date] = {}
    for entry in _results(data):
        ticker = entry.get("T") if isinstance(entry, dict) else None
        problem = "entry is not a JSON object" if not isinstance(entry, dict) else None
        problem = problem or ticker_problem(ticker)
        if problem is None:
            try:
                bar = _bar(entry, days)
            except ValueError as exc:
                problem = str(exc)
            else:
                if bar[0] != session:
                    problem = f"the bar is of {bar[0]}, in the answer for {session}"
                elif ticker in seen:
                    problem = f"ticker {ticker!r} comes twice; the first is kept"
        if problem is not None:
            rejected.append([fields.as_text(ticker), *_texts(entry), problem])
            continue
        seen.add(str(ticker))
        symbols.append(str(ticker))
        rows.append(bar)
    bars = _bar_frame(rows, symbols)
    bars = bars.sort_values("symbol", kind="stable").reset_index(drop=True)
    return ParsedGrouped(bars, _text_frame(rejected, GROUPED_REJECTED_COLUMNS))


@dataclasses.dataclass
class ParsedBars:
    bars: pd.DataFrame  # BAR_COLUMNS, oldest first, unique trade_date
    rejected: pd.DataFrame  # REJECTED_COLUMNS


def parse_aggs(results: Iterable[Any], first: dt.date, last: dt.date) -> ParsedBars:
    """One ticker's daily bars from the ``results`` of its range answers (every page),
    keeping sessions in [first, last]; a repeated date keeps its first bar."""
    good: dict[dt.date, Bar] = {}
    rejected: list[list[str]] = []
    days: dict[Any, dt.date] = {}
    for entry in results:
        if not isinstance(entry, dict):
            rejected.append([*_texts(entry), "entry is not a JSON object"])
            continue
        try:
            bar = _bar(entry, days)
        except ValueError as exc:
            rejected.append([*_texts(entry), str(exc)])
            continue
        day = bar[0]
        if not first <= day <= last:
            reason = f"the bar is of {day}, outside the range asked ({first} to {last})"
        elif day in good:
            reason = f"duplicate trade_date {day.isoformat()}"
        else:
            good[day] = bar
            continue
        rejected.append([*_texts(entry), reason])
    rows = [good[d] for d in sorted(good)]
    return ParsedBars(_bar_frame(rows), _text_frame(rejected, REJECTED_COLUMNS))


@dataclasses.dataclass
class ParsedActions:
    """``actions``: ACTION_COLUMNS (symbol, date as received, value); ``skipped``: why each
    row left out was left out (a ticker that cannot be a symbol, another currency)."""

    actions: pd.DataFrame
    skipped: list[str]


def _actions_frame(rows: list[tuple[str, str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "symbol": pd.Series([r[0] for r in rows], dtype=object),
            "date": pd.Series([r[1] for r in rows], dtype=object),
            "value": pd.Series([r[2] for r in rows], dtype=object),
        }
    )
    return frame.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def split_value(split_from: Any, split_to: Any) -> Any:
    """New shares per old share, ``split_to / split_from`` (1 -> 4 is 4.0, 10 -> 1 is 0.1).
    When either is missing, zero or not a number, the text "to/from" as received: no factor
    can be computed, and ingest's judge_actions rejects that text visibly rather than the
    row vanishing here."""
    low, high = _positive(split_from), _positive(split_to)
    if low is None or high is None:
        return f"{fields.as_text(split_to)}/{fields.as_text(split_from)}"
    return high / low


def _with_tickers(results: Iterable[Any], skipped: list[str]) -> Iterator[tuple[dict, str]]:
    """(entry, its ticker) of each reference entry that is a JSON object with a usable
    ticker; why each other one was skipped goes to `skipped`."""
    for entry in results:
        if not isinstance(entry, dict):
            skipped.append("an entry that is not a JSON object")
            continue
        ticker = entry.get("ticker")
        problem = ticker_problem(ticker)
        if problem is not None:
            skipped.append(problem)
            continue
        yield entry, str(ticker)


def parse_splits(results: Iterable[Any]) -> ParsedActions:
    rows: list[tuple[str, str, Any]] = []
    skipped: list[str] = []
    for entry, ticker in _with_tickers(results, skipped):
        value = split_value(entry.get("split_from"), entry.get("split_to"))
        rows.append((str(ticker), fields.as_text(entry.get("execution_date")), value))
    return ParsedActions(_actions_frame(rows), skipped)


def parse_dividends(results: Iterable[Any]) -> ParsedActions:
    """Cash dividends by ex-dividend date, ``cash_amount`` as received (judge_actions reads
    it). Every ``dividend_type`` is kept: regular (CD), special (SC) and capital gains
    (LT, ST) all take cash out of the price on the ex-date. A dividend in another currency
    than USD is left out (the lake's prices are USD: no amount in another currency can be
    set against them); one without a currency is taken as USD, Polygon's US market's."""
    rows: list[tuple[str, str, Any]] = []
    skipped: list[str] = []
    for entry, ticker in _with_tickers(results, skipped):
        currency = entry.get("currency")
        if currency is not None and str(currency).strip().upper() != LAKE_CURRENCY:
            skipped.append(f"{ticker}: a dividend in {fields.as_text(currency)[:10]!r}")
            continue
        amount = entry.get("cash_amount")
        value = amount if isinstance(amount, numbers.Real) else fields.as_text(amount)
        rows.append((str(ticker), fields.as_text(entry.get("ex_dividend_date")), value))
    return ParsedActions(_actions_frame(rows), skipped)


__all__ = [
    "ACTION_COLUMNS",
    "GROUPED_COLUMNS",
    "LAKE_CURRENCY",
    "MAX_TICKER_LENGTH",
    "ParsedActions",
    "ParsedBars",
    "ParsedGrouped",
    "parse_aggs",
    "parse_dividends",
    "parse_grouped",
    "parse_splits",
    "split_value",
    "ticker_problem",
]
