"""CSV files as the tools people have write them, in the shape they write them: yfinance's
`Ticker.history().to_csv()` and `download().to_csv()`, pandas' `to_csv()` with its index,
Nasdaq's and Yahoo's downloads, a spreadsheet's `;`-separated file with decimal commas.

The bars are made up (deterministic, always possible bars), the shapes are not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import numpy as np

from marketlake.sessions import sessions_between

NEW_YORK = ZoneInfo("America/New_York")
# Across the switch to daylight saving time (2024-03-10): yfinance's offsets go -05:00 to -04:00.
SESSIONS = sessions_between(dt.date(2024, 2, 1), dt.date(2024, 3, 28))
# Sessions before the lake's NYSE calendar (2000-01-03): a history(period="max") has them.
BEFORE_CALENDAR = [dt.date(1999, 12, d) for d in (27, 28, 29, 30, 31)]
BAR_FIELDS = ("open", "high", "low", "close", "volume")


def bar(day: dt.date, shift: float = 0.0) -> dict:
    """A possible bar of `day`: open, high, low, close as floats, volume an int."""
    base = round(150 + (day.toordinal() % 17) * 0.37 + shift, 2)
    return {
        "date": day,
        "open": base,
        "high": base + 2.25,
        "low": base - 1.5,
        "close": base + 0.75,
        "volume": 3_000_000 + day.toordinal() % 9_973,
    }


def yf_number(value: float) -> str:
    """A price as yfinance writes it: its float32 value, printed as a float64
    (157.86497497558594)."""
    return repr(float(np.float32(value)))


def yf_timestamp(day: dt.date) -> str:
    """The exchange's midnight, as pandas writes a tz-aware index: 2024-02-01 00:00:00-05:00."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=NEW_YORK).isoformat(sep=" ")


def yfinance_history(days: Iterable[dt.date], dividends: dict | None = None) -> str:
    """yf.Ticker("IBM").history(period="max").to_csv() (auto_adjust=True, the default)."""
    dividends = dividends or {}
    lines = ["Date,Open,High,Low,Close,Volume,Dividends,Stock Splits"]
    for day in days:
        b = bar(day)
        prices = ",".join(yf_number(b[k]) for k in ("open", "high", "low", "close"))
        amount = repr(float(dividends.get(day, 0.0)))
        lines.append(f"{yf_timestamp(day)},{prices},{b['volume']},{amount},0.0")
    return "\n".join(lines) + "\n"


def yfinance_download(days: Iterable[dt.date], tickers: tuple[str, ...] = ("IBM",)) -> str:
    """yf.download(tickers).to_csv() (yfinance >= 0.2.51: auto_adjust=True, a two-row header,
    columns sorted Close, High, Low, Open, Volume, each for every ticker)."""
    fields = ("close", "high", "low", "open", "volume")
    columns = [f for f in fields for _ in tickers]
    lines = [
        "Price," + ",".join(f.title() for f in columns),
        "Ticker," + ",".join(tickers * len(fields)),
        "Date" + "," * len(columns),
    ]
    for day in days:
        b = bar(day)
        values = [str(b[f]) if f == "volume" else yf_number(b[f]) for f in columns]
        lines.append(f"{day}," + ",".join(values))
    return "\n".join(lines) + "\n"


def plain(days: Iterable[dt.date], header: str = "Date,Open,High,Low,Close,Volume") -> str:
    """date,open,high,low,close,volume with prices to the cent."""
    rows = [header]
    for day in days:
        b = bar(day)
        rows.append(f"{day},{b['open']:.2f},{b['high']:.2f},{b['low']:.2f},{b['close']:.2f},"
                    f"{b['volume']}")  # fmt: skip
    return "\n".join(rows) + "\n"


def pandas_range_index(days: Iterable[dt.date]) -> str:
    """df.to_csv() of a frame with a Date column and pandas' default index (0, 1, 2...)."""
    lines = plain(days).splitlines()
    return "\n".join([f",{lines[0]}"] + [f"{i},{row}" for i, row in enumerate(lines[1:])]) + "\n"


def pandas_date_index(days: Iterable[dt.date]) -> str:
    """df.to_csv() of a frame indexed by date whose index has no name."""
    lines = plain(days).splitlines()
    return "\n".join(["," + lines[0].split(",", 1)[1], *lines[1:]]) + "\n"


def nasdaq(days: Iterable[dt.date]) -> str:
    """Nasdaq's HistoricalData_<ms>.csv: newest first, $ prices, MM/DD/YYYY."""
    lines = ["Date,Close/Last,Volume,Open,High,Low"]
    for day in sorted(days, reverse=True):
        b = bar(day)
        lines.append(
            f"{day:%m/%d/%Y},${b['close']:.2f},{b['volume']},${b['open']:.2f},"
            f"${b['high']:.2f},${b['low']:.2f}"
        )
    return "\n".join(lines) + "\n"


def thousands(days: Iterable[dt.date], shift: float = 1200.0) -> str:
    """A spreadsheet's export with thousands separators, quoted: "1,350.25","12,345,678"."""
    lines = ["Date,Open,High,Low,Close,Volume"]
    for day in days:
        b = bar(day, shift)
        cells = [f'"{b[k]:,.2f}"' for k in ("open", "high", "low", "close")]
        lines.append(f"{day}," + ",".join(cells) + f',"{b["volume"] * 4:,}"')
    return "\r\n".join(lines) + "\r\n"


def semicolons(days: Iterable[dt.date]) -> str:
    """A European spreadsheet's CSV: `;` between fields, decimal commas, a byte order mark."""
    lines = ["Date;Open;High;Low;Close;Volume"]
    for day in days:
        b = bar(day)
        cells = [f"{b[k]:.2f}".replace(".", ",") for k in ("open", "high", "low", "close")]
        lines.append(f"{day};" + ";".join(cells) + f";{b['volume']}")
    return "\ufeff" + "\r\n".join(lines) + "\r\n"


def tabs(days: Iterable[dt.date]) -> str:
    return plain(days).replace(",", "\t")


YAHOO_DIVIDENDS = "Date,Dividends\n2024-02-08,1.66\n2024-05-09,1.67\n"
YAHOO_SPLITS = "Date,Stock Splits\n2021-07-20,4:1\n2024-06-10,10:1\n"
YAHOO_REVERSE_SPLIT = "Date,Stock Splits\n2023-08-07,1:4\n"
