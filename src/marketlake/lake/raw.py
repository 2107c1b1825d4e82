"""The raw zone: one CSV object per (ingest day, symbol), never edited once the day is over;
and, from a whole-market answer (Polygon's grouped daily), one object per (ingest day,
session) holding every symbol's bar of that session: 1 object and 1 PUT for 10,000 symbols.
The columns are the same, so the crawler's table and both readers see no difference."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pandas as pd

RAW_PREFIX = "raw/daily_prices/"
RAW_COLUMNS = [
    "symbol",
    "trade_date",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "source",
    "ingested_at",
]
QUARANTINE_PREFIX = "quarantine/daily_prices/"


def raw_key(ingest_date: dt.date, symbol: str) -> str:
    return f"{RAW_PREFIX}ingest_date={ingest_date.isoformat()}/{symbol}.csv"


# The name of a whole-market object starts with this; no symbol does (config._SYMBOL, and
# Polygon's tickers are letters, digits and dots). Not "_": Hive, so Athena, skips objects
# whose name starts with "_" or ".".
MARKET_OBJECT = "market~"


def market_key(ingest_date: dt.date, session: dt.date) -> str:
    """The object of one session's whole-market answer, landed on `ingest_date`."""
    return f"{RAW_PREFIX}ingest_date={ingest_date.isoformat()}/{MARKET_OBJECT}{session}.csv"


def is_market_object(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(MARKET_OBJECT)


def quarantine_key(ingest_date: dt.date, symbol: str, stamp: str, suffix: str) -> str:
    return f"{QUARANTINE_PREFIX}ingest_date={ingest_date.isoformat()}/{symbol}.{stamp}.{suffix}"


def format_timestamp(moment: dt.datetime) -> str:
    """UTC at millisecond precision, in the form both Athena and DuckDB cast to TIMESTAMP.
    A naive moment is taken as UTC (what TIMESTAMP columns hold)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    utc = moment.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d}"


def _number(value: float) -> str:
    text = repr(float(value))  # shortest text that reads back as the same double
    return text[:-2] if text.endswith(".0") else text


def bars_to_frame(symbol, bars: pd.DataFrame, source: str, ingested_at: str) -> pd.DataFrame:
    """Validated bars as the raw zone's text columns: of `symbol`, or with symbol=None of
    the symbols in the bars' own `symbol` column (a whole-market answer)."""
    return pd.DataFrame(
        {
            "symbol": list(bars["symbol"]) if symbol is None else symbol,
            "trade_date": [d.isoformat() for d in bars["trade_date"]],
            **{c: [_number(v) for v in bars[c]] for c in ("open", "high", "low", "close")},
            "volume": [str(int(v)) for v in bars["volume"]],
            "source": source,
            "ingested_at": ingested_at,
        },
        columns=RAW_COLUMNS,
    )


def read_csv(data: bytes) -> pd.DataFrame:
    """Every column as text, as Athena's OpenCSVSerDe sees it."""
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    missing = [c for c in RAW_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"raw object lacks columns {missing}")
    return frame[RAW_COLUMNS]


def merge(existing: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two raw frames (text columns); the newer copy of a (symbol, trade_date) wins."""
    both = pd.concat([existing, new], ignore_index=True)
    both = both.drop_duplicates(subset=["symbol", "trade_date"], keep="last")
    return both.sort_values(["symbol", "trade_date"], kind="stable").reset_index(drop=True)


def frame_to_csv(frame: pd.DataFrame) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(RAW_COLUMNS)
    writer.writerows(frame[RAW_COLUMNS].itertuples(index=False, name=None))
    return out.getvalue().encode("utf-8")
