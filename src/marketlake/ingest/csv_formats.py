"""The CSV files `marketlake import` reads, as the tools people have write them.

Every value stays text: validation (ingest.validate, lake.actions) decides what is usable.
What is read here, beyond a plain `date,open,high,low,close,volume`:

- the separator: `,`, `;` or tab, the one the header line holds most of (outside quotes);
  a UTF-8 byte order mark (Excel's "CSV UTF-8") is skipped;
- yfinance: `Ticker.history().to_csv()` writes dates as `2012-01-03 00:00:00-05:00`, the
  exchange's own midnight: the date is the part before the time, never converted to UTC
  (which would move it to the day before). A time other than midnight is not a daily bar's
  and is not read. `yf.download().to_csv()` writes a two-row header (`Price,Close,...` /
  `Ticker,IBM,...` / `Date,,,...`): read when it holds one ticker, which must then agree
  with the symbol the rows land under, as a `symbol` column must;
- pandas' `to_csv()` with its index: a first column with no name holds the dates when no
  column is named date or timestamp, and is ignored when it numbers the rows 0, 1, 2...;
- Nasdaq's download (`Date,Close/Last,Volume,Open,High,Low`, `$243.01`, dates MM/DD/YYYY,
  which are read as such in that file only: elsewhere 03/04/2024 could be either month);
- numbers: a `$` before a price; in a `,`- or tab-separated file commas grouping thousands
  (`"1,305.88"`, `"12,345,678"`); in a `;`-separated file a decimal comma (`1305,88`).
  Where the two could be confused the file is refused, never guessed.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from marketlake import fields
from marketlake.errors import MarketlakeError

SEPARATORS = (",", ";", "\t")
DATE_COLUMNS = ("date", "timestamp")
PRICES = ("open", "high", "low", "close")

# A date, or a date and its midnight (with seconds, fractions, an offset or Z): yfinance's
# 2012-01-03 00:00:00-05:00 is 2012-01-03.
_DAY = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[ T]00:00(?::00(?:\.0+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?\Z"
)
_US_DAY = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})\Z")
_THOUSANDS = r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?\Z"
_WHOLE_THOUSANDS = r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+\Z"
_DECIMAL_COMMA = r"([+-]?[0-9]+),([0-9]+)\Z"


@dataclass
class Table:
    """One CSV file: its rows as text, its columns found by lower-cased, stripped name."""

    name: str  # the file's name, for messages
    frame: pd.DataFrame  # columns by position
    columns: dict[str, int]  # lower-cased header name -> position
    labels: dict[int, str]  # position -> how a message names it: "column 'Close'"
    separator: str = ","
    nasdaq: bool = False  # Nasdaq's download: Close/Last, $ prices, MM/DD/YYYY
    tickers: list[str] = field(default_factory=list)  # yfinance download's Ticker row
    repeated: set[str] = field(default_factory=set)  # names two columns have

    def has(self, key: str) -> bool:
        return key in self.columns

    def label(self, key: str) -> str:
        return self.labels[self.columns[key]]

    def text(self, key: str) -> pd.Series:
        """The column's values, stripped. A name two columns have is refused."""
        if key in self.repeated:
            raise MarketlakeError(
                f"{self.name}: two columns are named {key!r}; nothing was imported. Keep one"
            )
        return self.frame[self.columns[key]].astype(str).str.strip()


def _separator(line: str) -> str:
    """The separator the header line holds most of, outside quotes (a tie: the comma)."""
    counts = dict.fromkeys(SEPARATORS, 0)
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return max(SEPARATORS, key=lambda s: counts[s])


def _parse(data: bytes, name: str) -> tuple[pd.DataFrame, str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MarketlakeError(
            f"{name}: not a readable CSV file (it is not UTF-8 text); save it as CSV UTF-8"
        ) from None
    header = next((line for line in text.splitlines() if line.strip()), None)
    if header is None:
        raise MarketlakeError(f"{name}: the file is empty; nothing was imported")
    separator = _separator(header)
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=separator, header=None, dtype=str, keep_default_na=False
        )
    except (ValueError, pd.errors.ParserError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise MarketlakeError(f"{name}: not a readable CSV file ({first})") from None
    return frame, separator


def _yfinance_header(frame: pd.DataFrame, name: str) -> tuple[list[str], list[str], int] | None:
    """(column names, tickers, rows of header) of yf.download()'s two-row header, else None."""
    first = [str(v).strip() for v in frame.iloc[0]]
    kinds = {first[0].lower(), str(frame.iat[1, 0]).strip().lower() if len(frame) > 1 else ""}
    if kinds != {"price", "ticker"}:
        return None
    second = [str(v).strip() for v in frame.iloc[1]]
    prices, tickers = (first, second) if first[0].lower() == "price" else (second, first)
    third = [str(v).strip() for v in frame.iloc[2]] if len(frame) > 2 else [""]
    if third[0].lower() != "date" or any(third[1:]):
        raise MarketlakeError(
            f"{name}: a two-row (multi-index) header this import does not read; export the "
            'ticker with yf.Ticker("IBM").history(period="max").to_csv(), or flatten the columns'
        )
    named = sorted(set(tickers[1:]) - {""})
    if len(named) > 1:
        raise MarketlakeError(
            f"{name}: a yfinance download of {len(named)} tickers ({', '.join(named)}); "
            "nothing was imported. Download one ticker per file (or use "
            f'yf.Ticker("{named[0]}").history(period="max").to_csv())'
        )
    return [third[0], *prices[1:]], named, 3


def _is_row_number(values: pd.Series) -> bool:
    """0, 1, 2, ...: pandas' default index."""
    return list(values.str.strip()) == [str(i) for i in range(len(values))]


def read_table(data: bytes, name: str) -> Table:
    """The file's header and rows; its columns by name (see the module's docstring)."""
    frame, separator = _parse(data, name)
    yfinance = _yfinance_header(frame, name)
    if yfinance is not None:
        names, tickers, skip = yfinance
    else:
        names, tickers, skip = [str(v).strip() for v in frame.iloc[0]], [], 1
    body = frame.iloc[skip:].reset_index(drop=True)
    body.columns = range(len(body.columns))
    columns: dict[str, int] = {}
    labels: dict[int, str] = {}
    repeated = set()
    for position, header in enumerate(names):
        key = header.lower()
        if not key:
            continue
        if key in columns:
            repeated.add(key)
        columns.setdefault(key, position)
        labels[position] = f"column {header!r}"
    dated = any(c in columns for c in DATE_COLUMNS)
    if names[0] == "" and len(body) and not dated and not _is_row_number(body[0]):
        # pandas' index, written without a name: the dates (the row numbers are ignored).
        columns["date"] = 0
        labels[0] = "the first column (it has no name)"
    table = Table(name, body, columns, labels, separator, tickers=tickers, repeated=repeated)
    if "close/last" in columns and "close" not in columns:
        table.nasdaq = True
        columns["close"] = columns["close/last"]
    return table


def date_texts(table: Table, key: str) -> pd.Series:
    """The column's dates as YYYY-MM-DD where they read as a day (see the module's
    docstring); anything else unchanged, for validation to refuse."""

    def day(text: str) -> str:
        found = _DAY.match(text)
        if found:
            return found[1]
        us = _US_DAY.match(text) if table.nasdaq else None
        return f"{us[3]}-{us[1]}-{us[2]}" if us else text

    return table.text(key).map(day)


def number_texts(table: Table, keys: Sequence[str]) -> dict[str, pd.Series]:
    """The columns' numbers as plain decimal text (see the module's docstring); anything
    else unchanged, for validation to refuse. A file where a comma could be a thousands
    separator or a decimal comma is refused."""
    values = {k: table.text(k) for k in keys}
    for key in set(keys) & set(PRICES):
        values[key] = values[key].str.replace(r"^\$\s*", "", regex=True)
    if table.separator == ";":
        return _decimal_commas(table, values)
    prices = [v for k, v in values.items() if k in PRICES]
    whole = [p[p.str.match(_WHOLE_THOUSANDS)] for p in prices]
    example = next((w.iloc[0] for w in whole if len(w)), None)
    if example is not None and not any(p.str.contains(".", regex=False).any() for p in prices):
        raise MarketlakeError(
            f"{table.name}: prices like {example!r} and none with a decimal point: the comma "
            "could group thousands or be a decimal comma. Write the prices with a decimal "
            "point (1305.00), or use a ;-separated file for decimal commas"
        )
    return {
        key: column.where(~column.str.match(_THOUSANDS), column.str.replace(",", "", regex=False))
        for key, column in values.items()
    }


def _decimal_commas(table: Table, values: dict[str, pd.Series]) -> dict[str, pd.Series]:
    """A ;-separated file's numbers: with a comma anywhere, every number has a decimal comma
    (1305,88) and a dot is refused (1.305,88: a thousands dot, or a decimal point?)."""
    commas = [v[v.str.contains(",", regex=False)] for v in values.values()]
    comma = next((c.iloc[0] for c in commas if len(c)), None)
    if comma is None:
        return values
    for key, column in values.items():
        dotted = column[column.str.contains(".", regex=False)]
        if len(dotted):
            raise MarketlakeError(
                f"{table.name}: {table.label(key)} has {dotted.iloc[0]!r} where the "
                f"file's numbers have decimal commas ({comma!r}): a dot there could be a "
                "thousands separator. Write the numbers without thousands separators "
                "(1305,88), or with decimal points in a ,-separated file"
            )
    return {k: v.str.replace(_DECIMAL_COMMA, r"\1.\2", regex=True) for k, v in values.items()}


def none_reads(values: pd.Series, parse) -> bool:
    """True when the column has values and not one of them parses."""

    def reads(text: str) -> bool:
        try:
            parse(text)
        except fields.FieldError:
            return False
        return True

    return bool(len(values)) and not values.map(reads).any()


def _spelling(symbol: str) -> str:
    """Yahoo writes a class share BRK-B, others BRK.B: one symbol."""
    return symbol.replace("-", ".")


def check_symbol(table: Table, symbol: str | None, named_by: str) -> None:
    """A `symbol` column (or a yfinance download's Ticker row), if the file has one, must
    agree with the symbol the rows land under (any case, spaces around, BRK-B for BRK.B): a
    file of AMD rows named NVDA.csv would otherwise file AMD's history as NVDA's without a
    word. Blank cells say nothing."""
    if symbol is None:
        return
    if table.has("symbol"):
        said, what = set(table.text("symbol").str.upper()) - {""}, "its symbol column"
    else:
        said, what = {t.upper() for t in table.tickers}, "its Ticker row"
    other = sorted(s for s in said if _spelling(s) != _spelling(symbol))
    if other:
        raise MarketlakeError(
            f"{table.name}: {what} says {other[0]} but {named_by} says {symbol}; nothing "
            f"was imported. Import it as {other[0]} (--symbol {other[0]}), or fix the "
            f"{what.split()[-1]}"
        )


def _no_rows(table: Table) -> None:
    if not len(table.frame):
        raise MarketlakeError(f"{table.name}: no rows under its header; nothing was imported")


BAR_VALUES = ("open", "high", "low", "close", "volume")


def read_bars_csv(
    data: bytes, name: str, symbol: str | None = None, named_by: str = "the file name"
) -> pd.DataFrame:
    """Daily bars from CSV text: a date column named date or timestamp (any case), open,
    high, low, close, volume; other columns ignored (a `symbol` column must agree with
    `symbol`: check_symbol); rows in any order. Values stay text. A column not one of whose
    values reads (dates, prices, volumes) refuses the file, naming it and its first value."""
    table = read_table(data, name)
    check_symbol(table, symbol, named_by)
    date_key = next((c for c in DATE_COLUMNS if table.has(c)), None)
    missing = [c for c in BAR_VALUES if not table.has(c)]
    if date_key is None or missing:
        wanted = (["date or timestamp"] if date_key is None else []) + missing
        raise MarketlakeError(
            f"{name}: missing column(s) {', '.join(wanted)}; the header needs "
            "date (or timestamp), open, high, low, close, volume"
        )
    _no_rows(table)
    bars = pd.DataFrame(
        {"trade_date": date_texts(table, date_key), **number_texts(table, BAR_VALUES)},
        columns=["trade_date", *BAR_VALUES],
    )
    _refuse_unreadable(table, bars, date_key)
    return bars.sort_values("trade_date", kind="stable").reset_index(drop=True)


def _refuse_unreadable(table: Table, bars: pd.DataFrame, date_key: str) -> None:
    """A column none of whose values reads: a format, not a few bad rows."""
    if none_reads(bars["trade_date"], fields.parse_date):
        first = table.text(date_key).iloc[0]
        timed = " (a time of day other than midnight is not a daily bar's)" * bool(
            re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T]", first)
        )
        raise MarketlakeError(
            f"{table.name}: no date in {table.label(date_key)} reads as YYYY-MM-DD (the first "
            f"is {first!r}){timed}; write the dates as YYYY-MM-DD, e.g. 2024-03-15"
        )
    for key in BAR_VALUES:
        parse = fields.parse_volume if key == "volume" else fields.parse_price
        if none_reads(bars[key], parse):
            what, example = (
                ("a whole number", "1234567") if key == "volume" else ("a number", "123.45")
            )
            raise MarketlakeError(
                f"{table.name}: no value in {table.label(key)} reads as {what} (the first is "
                f"{table.text(key).iloc[0]!r}); write {key} as {what}, e.g. {example}"
            )


# The value column of --splits / --dividends files: ours, then Yahoo's and yfinance's (whose
# 0 means no split or dividend that day: a yfinance history file has one every day).
ACTION_VALUE_COLUMNS: dict[str, tuple[str, str]] = {
    "splits": ("split_factor", "stock splits"),
    "dividends": ("amount", "dividends"),
}
_RATIO = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*:\s*([0-9]+(?:\.[0-9]+)?)\Z")


def _ratio(text: str) -> str:
    """Yahoo's 2:1 is a split_factor of 2, 1:4 (a reverse split) of 0.25."""
    found = _RATIO.match(text)
    if not found or float(found[2]) == 0:
        return text
    return repr(float(found[1]) / float(found[2]))


def _zero(text: str) -> bool:
    try:
        return fields.parse_price(text) == 0
    except fields.FieldError:
        return False


def read_actions_csv(
    data: bytes, name: str, kind: str, symbol: str | None = None, named_by: str = "the file name"
) -> pd.DataFrame:
    """Splits (date,split_factor) or dividends (date,amount) from CSV text as text columns
    `date`, `value`: any case, other columns ignored (a `symbol` column must agree with
    `symbol`). Yahoo's downloads (Date,Stock Splits with 2:1, 1:4; Date,Dividends) and a
    yfinance history file (its rows of 0 skipped) are read too. judge_actions decides."""
    ours, yahoo = ACTION_VALUE_COLUMNS[kind]
    table = read_table(data, name)
    value_key = next((c for c in (ours, yahoo) if table.has(c)), None)
    missing = (["date"] if not table.has("date") else []) + ([ours] if value_key is None else [])
    if value_key is None or missing:
        raise MarketlakeError(
            f"{name}: missing column(s) {', '.join(missing)}; --{kind} files need the header "
            f"date,{ours} (or Yahoo's Date,{yahoo.title()})"
        )
    check_symbol(table, symbol, named_by)
    _no_rows(table)
    values = number_texts(table, [value_key])[value_key]
    rows = pd.DataFrame(
        {
            "date": date_texts(table, "date"),
            "value": values.map(_ratio) if kind == "splits" else values,
        }
    )
    if value_key == yahoo:
        rows = rows[~values.map(_zero)].reset_index(drop=True)
        if not len(rows):
            raise MarketlakeError(
                f"{name}: every value in its {table.label(value_key)} is 0 (no {kind} on any "
                "day); nothing was imported"
            )
    return rows
