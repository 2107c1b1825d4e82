"""CSV files as the tools people have write them, in the shape they write them: yfinance's
`Ticker.history().to_csv()` and `download().to_csv()`, pandas' `to_csv()` with its index,
Nasdaq's and Yahoo's downloads, a spreadsheet's `;`-separated file with decimal commas.

The bars are made up (deterministic, always possible bars), the shapes are not."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from pathlib import Path
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


def yfinance_history(
    days: Iterable[dt.date], dividends: dict | None = None, auto_adjust: bool = True
) -> str:
    """yf.Ticker("IBM").history(period="max").to_csv() (auto_adjust=True, the default; with
    auto_adjust=False an Adj Close column follows Close). No split: the bars are bar()'s."""
    dividends = dividends or {}
    adj = "" if auto_adjust else ",Adj Close"
    lines = [f"Date,Open,High,Low,Close{adj},Volume,Dividends,Stock Splits"]
    for day in days:
        b = bar(day)
        prices = [yf_number(b[k]) for k in ("open", "high", "low", "close")]
        prices += [] if auto_adjust else [yf_number(b["close"] - 0.5)]
        amount = repr(float(dividends.get(day, 0.0)))
        lines.append(f"{yf_timestamp(day)},{','.join(prices)},{b['volume']},{amount},0.0")
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


# -- a history across splits: as traded, and as Yahoo adjusts it --------------------------------

NVDA_SPLIT = dt.date(2024, 6, 10)  # 10:1
NVDA_DAYS = sessions_between(dt.date(2024, 5, 1), dt.date(2024, 6, 28))
REVERSE_SPLIT = dt.date(2023, 8, 7)  # 1:4
REVERSE_DAYS = sessions_between(dt.date(2023, 7, 10), dt.date(2023, 8, 31))
PRICES = ("open", "high", "low", "close")


def traded(
    days: Iterable[dt.date], splits: dict[dt.date, float], start: float, seed: int = 7
) -> list[dict]:
    """As-traded bars of a random walk (moves of a few %, to the cent): on a split's day the
    price opens divided by its factor and the volume is its factor times larger."""
    rng = np.random.default_rng(seed)
    close, shares, out = start, 1.0, []
    for day in days:
        factor = splits.get(day, 1.0)
        close, shares = close / factor, shares * factor
        open_ = round(close * (1 + rng.normal(0, 0.012)), 2)
        close = round(open_ * (1 + rng.normal(0, 0.02)), 2)
        high = round(max(open_, close) * (1 + abs(rng.normal(0, 0.008))), 2)
        low = round(min(open_, close) * (1 - abs(rng.normal(0, 0.008))), 2)
        volume = int(400_000 * shares * rng.uniform(0.7, 1.4)) * 100  # round lots
        out.append({"date": day, "open": open_, "high": high, "low": low, "close": close,
                    "volume": volume})  # fmt: skip
    return out


def later_splits(day: dt.date, splits: dict[dt.date, float]) -> float:
    """The product of the factors of the splits dated after `day`: Yahoo divides by it."""
    return float(np.prod([f for d, f in splits.items() if d > day] or [1.0]))


def split_adjusted(bars: list[dict], splits: dict[dt.date, float]) -> list[dict]:
    """The bars as Yahoo serves them: prices divided by the later splits, volume times them."""
    out = []
    for b in bars:
        by = later_splits(b["date"], splits)
        out.append({**b, **{k: b[k] / by for k in PRICES}, "volume": round(b["volume"] * by)})
    return out


def dividend_adjusted(bars: list[dict], dividends: dict[dt.date, float]) -> list[dict]:
    """yfinance's auto_adjust: each bar before an ex-date scaled by 1 - amount / the close
    before it."""
    scale = dict.fromkeys((b["date"] for b in bars), 1.0)
    closes = {b["date"]: b["close"] for b in bars}
    for ex, amount in dividends.items():
        before = [d for d in closes if d < ex]
        if before:
            ratio = 1 - amount / closes[before[-1]]
            for d in before:
                scale[d] *= ratio
    return [{**b, **{k: b[k] * scale[b["date"]] for k in PRICES}} for b in bars]


def yfinance_export(
    bars: list[dict],
    splits: dict[dt.date, float],
    dividends: dict[dt.date, float] | None = None,
    auto_adjust: bool = False,
    splits_column: bool = True,
) -> str:
    """Ticker.history(auto_adjust=...).to_csv() of as-traded `bars`: split-adjusted (and with
    auto_adjust, dividend-adjusted) float32 prices, its Dividends and Stock Splits columns
    (the latter left out with splits_column=False)."""
    dividends = dividends or {}
    shown = split_adjusted(bars, splits)
    adjusted = dividend_adjusted(shown, dividends)
    if auto_adjust:
        shown = adjusted
    header = "Date,Open,High,Low,Close" + ",Adj Close" * (not auto_adjust) + ",Volume,Dividends"
    lines = [header + ",Stock Splits" * splits_column]
    for b, adj in zip(shown, adjusted):
        cells = [yf_timestamp(b["date"]), *(yf_number(b[k]) for k in PRICES)]
        cells += [] if auto_adjust else [yf_number(adj["close"])]
        cells += [str(b["volume"]), repr(float(dividends.get(b["date"], 0.0)))]
        cells += [repr(float(splits.get(b["date"], 0.0)))] if splits_column else []
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def yahoo_web(bars: list[dict], splits: dict[dt.date, float]) -> str:
    """Yahoo's web download: Date,Open,High,Low,Close,Adj Close,Volume, split-adjusted."""
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for b in split_adjusted(bars, splits):
        prices = [f"{b[k]:.6f}" for k in (*PRICES, "close")]
        lines.append(f"{b['date']}," + ",".join(prices) + f",{b['volume']}")
    return "\n".join(lines) + "\n"


def as_traded_csv(bars: list[dict]) -> str:
    """date,open,high,low,close,volume as traded, to the cent (a broker's export)."""
    lines = ["date,open,high,low,close,volume"]
    for b in bars:
        lines.append(f"{b['date']}," + ",".join(f"{b[k]:.2f}" for k in PRICES) + f",{b['volume']}")
    return "\n".join(lines) + "\n"


def with_stock_splits(text: str, splits: dict[dt.date, float]) -> str:
    """A yfinance export with `splits` written in its Stock Splits column (its last)."""
    days = {yf_timestamp(d): f for d, f in splits.items()}
    lines = []
    for line in text.splitlines():
        stamp = line.split(",", 1)[0]
        lines.append(line.rsplit(",", 1)[0] + f",{days[stamp]!r}" if stamp in days else line)
    return "\n".join(lines) + "\n"


def write_rows(path: Path, rows: list[dict]) -> None:
    """`rows` as a CSV file at `path`, the first row's keys as its header."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
