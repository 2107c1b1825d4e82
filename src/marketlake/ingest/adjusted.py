"""Adjusted prices in an imported bars file: never landed as traded.

The lake stores bars as traded and adjusts them itself from the splits it records. Yahoo's
prices (its web download, yfinance's `history()` and `download()`) are split-adjusted to the
download date, and yfinance's `history()` with its default `auto_adjust=True` adjusts them for
dividends too. Landed as traded, such bars would be adjusted twice: NVDA's before its 10:1
split of 2024-06-10 would land as "traded" prices ~10x too small, and the recorded split
would divide them again.

What is checked, before anything lands:

- dividends: a file with `Dividends` and `Stock Splits` columns and no `Adj Close` column is
  yfinance's `history(auto_adjust=True)`; with a dividend after its first bar its prices are
  scaled down by it, and the file is refused (with no dividend, its prices are as Yahoo's);
- splits, at the splits the lake knows of the symbol: the file's own `Stock Splits` column
  (yfinance's 10.0 for 10:1, 0.5 for 1:2) and the splits the lake records. Across a split of
  factor f on day D, as-traded prices jump: the close before D over the open on D (its close
  where the open is unusable) is about f; adjusted prices do not (about 1). The nearer on a
  log scale decides (and once undone, a jump nearer f*f than f is none either). A split
  within 25% of 1 (a 6:5 split, a stock dividend) is not used: that is a normal day's move.
  A file adjusted at a split is undone when its own `Stock Splits` column explains the
  adjustment (every known split after its first bar is in it: Yahoo also adjusts for a
  split after the file's last day, which the file cannot undo) and the undone prices then
  jump at every split; otherwise it is refused.

Where no split the lake knows falls inside the file's span, nothing can be told from the
prices. But a file shaped as Yahoo's (an `Adj Close` column, `Dividends` and `Stock Splits`
columns, or yfinance download()'s two-row header) is adjusted for every split up to the day
it was downloaded, which is unknown: with a split the lake records (far enough from 1 to
tell) dated after its last bar, it is refused. A plain file says nothing of adjustment.

Yahoo's dividend amounts are split-adjusted alike (dividends_as_paid): a yfinance history()
file's are multiplied back by the factors of its own Stock Splits column dated after them;
a `Date,Dividends` download is refused when the lake records a split after a dividend of it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import pandas as pd

from marketlake import fields
from marketlake.errors import MarketlakeError
from marketlake.ingest.csv_formats import DATE_COLUMNS, date_texts, number_texts, read_table

# A split whose factor is nearer 1 than this cannot be told from a day's move.
DETECTABLE = math.log(1.25)
_SAME_FACTOR = 1e-6

_DO_INSTEAD = (
    "The lake stores prices as traded and adjusts them itself: import unadjusted prices "
    "(e.g. from your broker or the vendor), or a yfinance history(auto_adjust=False).to_csv() "
    "export that runs to today"
)


@dataclass(frozen=True)
class Split:
    day: dt.date
    factor: float  # new shares per old share: 10 for 10:1, 0.25 for 1:4


def ratio(factor: float) -> str:
    """10 is 10:1, 0.25 is 1:4, 1.5 is 3:2."""
    share = Fraction(factor).limit_denominator(1000)
    return f"{share.numerator}:{share.denominator}"


def _describe(split: Split) -> str:
    return f"the {ratio(split.factor)} split of {split.day}"


@dataclass
class _FileActions:
    """What a bars file says beyond its bars: its own splits (None: no Stock Splits column),
    the days of its non-zero dividends when it is a yfinance history(auto_adjust=True)
    (Dividends and Stock Splits columns, no Adj Close), else None."""

    splits: list[Split] | None
    auto_adjusted_dividends: list[dt.date] | None


def _column(table, key: str, name: str, parse) -> list[tuple[dt.date, float]]:
    """(day, value) of the column's non-zero values; an unreadable one refuses the file."""
    date_key = next(c for c in DATE_COLUMNS if table.has(c))
    days = date_texts(table, date_key)
    values = number_texts(table, [key])[key]
    out = []
    for day_text, text in zip(days, values):
        day = fields.date_or_none(day_text)
        if day is None or text in ("", "0", "0.0"):
            continue  # a bar without a date is validation's to quarantine
        try:
            value = parse(text)
        except fields.FieldError:
            raise MarketlakeError(
                f"{table.name}: {table.label(key)} has {text!r} on {day}, which is not a "
                "number; nothing was imported. It tells whether the prices are adjusted: fix it"
            ) from None
        if value != 0:
            out.append((day, value))
    return out


def _file_actions(data: bytes, name: str) -> _FileActions:
    table = read_table(data, name)
    splits = dividends = None
    if table.has("stock splits"):
        read = _column(table, "stock splits", name, fields.parse_split_factor)
        splits = [Split(day, factor) for day, factor in read]
        if table.has("dividends") and not table.has("adj close"):
            read = _column(table, "dividends", name, fields.parse_amount)
            dividends = [day for day, _ in read]
    return _FileActions(splits, dividends)


def _positive(text) -> float | None:
    try:
        value = fields.parse_price(text)
    except fields.FieldError:
        return None
    return value if value > 0 and math.isfinite(value) else None


def _series(bars: pd.DataFrame) -> list[tuple[dt.date, float | None, float]]:
    """(day, open, close) of the bars whose day and close read, by day; a day given twice is
    left out (validation quarantines both copies)."""
    seen: dict[dt.date, tuple[float | None, float] | None] = {}
    for day_text, open_text, close_text in zip(bars["trade_date"], bars["open"], bars["close"]):
        day, close = fields.date_or_none(day_text), _positive(close_text)
        if day is None or close is None:
            continue
        seen[day] = None if day in seen else (_positive(open_text), close)
    return sorted((d, v[0], v[1]) for d, v in seen.items() if v is not None)


def _jump(series, split: Split) -> float | None:
    """The close before the split's day over the open (else close) of the first bar on or
    after it; None when the file's bars are not on both sides."""
    before = [row for row in series if row[0] < split.day]
    after = [row for row in series if row[0] >= split.day]
    if not before or not after:
        return None
    _, opened, closed = after[0]
    return before[-1][2] / (opened if opened is not None else closed)


def missing_jumps(series, splits: list[Split], undone: bool = False) -> list[Split]:
    """The splits (far enough from 1 to tell, inside the span) across which the prices do
    not jump as traded ones do: |log(jump) - log(f)| is not below |log(jump)|. Of `undone`
    prices, a jump nearer f*f than f is none either: that split was as traded already, and
    undoing it made the prices before it f times too large."""
    missing = []
    for split in splits:
        factor = math.log(split.factor)
        if abs(factor) <= DETECTABLE:
            continue
        jump = _jump(series, split)
        if jump is None:
            continue
        off = abs(math.log(jump) - factor)
        if off >= abs(math.log(jump)) or (undone and off >= abs(math.log(jump) - 2 * factor)):
            missing.append(split)
    return missing


def _scaled_price(text, by: Decimal) -> object:
    if _positive(text) is None:
        return text  # validation's to judge
    try:
        return format(Decimal(str(text).strip()) * by, "f")
    except InvalidOperation:
        return text


def _scaled_volume(text, by: Decimal) -> object:
    try:
        volume = fields.parse_volume(text)
    except fields.FieldError:
        return text
    return str(round(Fraction(volume) / Fraction(by)))


def undo_splits(bars: pd.DataFrame, splits: list[Split]) -> pd.DataFrame:
    """Each bar's prices times the factors of the splits dated after it, its volume divided
    by them: Yahoo's split adjustment undone (exactly, in decimal)."""
    out = bars.copy()
    for index, day_text in zip(out.index, out["trade_date"]):
        day = fields.date_or_none(day_text)
        if day is None:
            continue
        by = Decimal(1)
        for split in splits:
            if split.day > day:
                by *= Decimal(repr(split.factor))
        if by == 1:
            continue
        for column in ("open", "high", "low", "close"):
            out.at[index, column] = _scaled_price(out.at[index, column], by)
        out.at[index, "volume"] = _scaled_volume(out.at[index, "volume"], by)
    return out


def _known(own: list[Split], recorded: list[Split]) -> list[Split]:
    """The file's splits and the lake's, one each (a recorded one the file also gives once)."""
    known = list(own)
    for split in recorded:
        if not any(_same(split, s) for s in own):
            known.append(split)
    return sorted(known, key=lambda s: s.day)


def _same(a: Split, b: Split) -> bool:
    return a.day == b.day and abs(a.factor - b.factor) <= _SAME_FACTOR * abs(b.factor)


def _refuse_dividend_adjusted(name: str, found: _FileActions, first: dt.date) -> None:
    """yfinance's history() writes Dividends and Stock Splits, and Adj Close unless with
    auto_adjust (the default), which scales every bar before a dividend down by it."""
    later = [day for day in found.auto_adjusted_dividends or [] if day > first]
    if later:
        raise MarketlakeError(
            f"{name}: its prices are adjusted for dividends (yfinance's history() with "
            f"auto_adjust=True, the default: a Dividends column, a dividend on {later[0]}, and "
            "no Adj Close column); nothing was imported. The lake stores prices as traded: "
            "export it with history(auto_adjust=False).to_csv() (then Close is unadjusted "
            "for dividends and Adj Close is ignored)"
        )


def as_traded(
    data: bytes, name: str, bars: pd.DataFrame, recorded: list[Split]
) -> tuple[pd.DataFrame, str]:
    """(the bars as traded, a note of what was undone or ""), or the one-line refusal of a
    file whose prices are adjusted (see the module's docstring). `bars` are read_bars_csv's
    of the file (those that would land), `recorded` the splits the lake records of it."""
    series = _series(bars)
    if not series:
        return bars, ""
    first = series[0][0]
    found = _file_actions(data, name)
    _refuse_dividend_adjusted(name, found, first)
    own = found.splits or []
    known = _known(own, recorded)
    missing = missing_jumps(series, known)
    if not missing:
        _refuse_later_split(data, name, series[-1][0], recorded)
        return bars, ""
    unexplained = [s for s in known if s.day > first and not any(_same(s, o) for o in own)]
    if found.splits is None or unexplained:
        raise MarketlakeError(
            f"{name}: its prices are split-adjusted (no jump at {_describe(missing[0])}); "
            "nothing was imported. " + _DO_INSTEAD
        )
    # (A recorded split after the last bar is in `unexplained`: refused above.)
    undone = undo_splits(bars, own)
    still = missing_jumps(_series(undone), known, undone=True)
    if still:
        raise MarketlakeError(
            f"{name}: its prices do not jump at {_describe(still[0])} as traded prices do, "
            "even with the splits of its Stock Splits column undone; nothing was imported. "
            + _DO_INSTEAD
        )
    done = [s for s in own if s.day > first]
    which = f"{len(done)} splits, {done[0].day} .. {done[-1].day}" if len(done) > 1 else ""
    return undone, f"the split adjustment undone ({which or _describe(done[0])})"


def yahoo_shaped(table) -> bool:
    """Yahoo's web download (Adj Close), yfinance's history() (Dividends and Stock Splits) or
    download() (its Ticker row): prices split-adjusted as of an unknown download day."""
    history = table.has("dividends") and table.has("stock splits")
    return table.has("adj close") or history or bool(table.tickers)


def _telling(splits: list[Split]) -> list[Split]:
    return [s for s in splits if abs(math.log(s.factor)) > DETECTABLE]


def _share(factors: list[float]) -> str:
    """What share of the real value adjusted ones may be: "a tenth of", "4 times"."""
    by = Fraction(math.prod(factors)).limit_denominator(1000)
    if by > 1:
        words = {2: "half", 3: "a third", 4: "a quarter", 10: "a tenth"}
        if by.denominator == 1 and by.numerator in words:
            return f"{words[by.numerator]} of"
        return f"{1 / by} of"
    return f"{float(1 / by):g} times"


def _named(splits: list[Split]) -> str:
    more = f" (and {len(splits) - 1} later)" if len(splits) > 1 else ""
    return f"a {ratio(splits[0].factor)} split on {splits[0].day}{more}"


def _refuse_later_split(data: bytes, name: str, last: dt.date, recorded: list[Split]) -> None:
    """A Yahoo-shaped file is adjusted for the splits up to its unknown download day: one
    the lake records after its last bar may be in its prices, and cannot be undone."""
    later = sorted(_telling([s for s in recorded if s.day > last]), key=lambda s: s.day)
    if not later or not yahoo_shaped(read_table(data, name)):
        return
    raise MarketlakeError(
        f"{name}: Yahoo's prices are adjusted for splits up to the day they were downloaded, "
        f"and the lake records {_named(later)} after this file's last bar ({last}), so its "
        f"prices may be {_share([s.factor for s in later])} those traded; nothing was "
        "imported. Import unadjusted prices (e.g. from your broker or the vendor), or a "
        "yfinance history(auto_adjust=False).to_csv() export that runs to today"
    )


def _scaled_amount(text, by: Decimal) -> object:
    try:
        return format(Decimal(str(text).strip()) * by, "f")
    except InvalidOperation:
        return text  # validation's to judge


def dividends_as_paid(
    data: bytes, name: str, rows: pd.DataFrame, recorded: list[Split]
) -> pd.DataFrame:
    """read_actions_csv's dividend rows (date, value as text) as paid, or the one-line
    refusal of Yahoo's split-adjusted amounts that cannot be undone (see the module's
    docstring). `recorded`: the splits the lake records of the symbol. A file with no
    `Dividends` column (date,amount) is taken as paid."""
    table = read_table(data, name)
    if not table.has("dividends") or table.has("amount"):
        return rows
    days = [fields.date_or_none(d) for d in rows["date"]]
    paid = sorted(d for d in days if d is not None)
    if not paid:
        return rows
    if not table.has("stock splits"):
        later = _telling([s for s in recorded if s.day > paid[0]])
        if later:
            split = min(later, key=lambda s: s.day)
            before = max(d for d in paid if d < split.day)
            raise MarketlakeError(
                f"{name}: Yahoo's dividends are adjusted for splits up to the day they were "
                f"downloaded, and the lake records {_named([split])} after its dividend of "
                f"{before}, so that amount may be {_share([split.factor])} the one paid; "
                "nothing was imported. Import the vendor's unadjusted dividends, or the "
                "dividends as paid as date,amount"
            )
        return rows
    own = [Split(d, f) for d, f in _column(table, "stock splits", name, fields.parse_split_factor)]
    date_key = next(c for c in DATE_COLUMNS if table.has(c))
    last = max(d for d in map(fields.date_or_none, date_texts(table, date_key)) if d)
    unshown = _telling(
        [s for s in recorded if s.day > paid[0] and not any(_same(s, o) for o in own)]
    )
    if unshown:
        split = min(unshown, key=lambda s: s.day)
        where = f"after this file's last row ({last})" if split.day > last else "within its dates"
        raise MarketlakeError(
            f"{name}: Yahoo's dividends are adjusted for splits up to the day they were "
            f"downloaded, and the lake records {_named([split])} {where} that its Stock "
            f"Splits column does not show, so its amounts may be {_share([split.factor])} "
            "those paid; nothing was imported. Import the vendor's unadjusted dividends, or "
            "a yfinance history(auto_adjust=False).to_csv() export that runs to today"
        )
    out = rows.copy()
    for index, day in zip(out.index, days):
        by = Decimal(1)
        for split in own:
            if day is not None and split.day > day:
                by *= Decimal(repr(split.factor))
        if by != 1:
            out.at[index, "value"] = _scaled_amount(out.at[index, "value"], by)
    return out
