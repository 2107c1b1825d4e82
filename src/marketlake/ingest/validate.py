"""What may reach the raw zone: every bar is checked here, whichever provider sent it."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from marketlake.providers.base import BAR_COLUMNS

PRICE_COLUMNS = ["open", "high", "low", "close"]


def parse_day(value) -> dt.date | None:
    """A date, a datetime's date, or YYYY-MM-DD text; None for anything else."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        return None


INT64_MAX = 2**63 - 1
_WHOLE = re.compile(r"^[+-]?\d+(\.0*)?$")


def _to_volume(value) -> object:
    """A whole number as a Python int (exact, any size), or a float/NaN to be judged."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    if _WHOLE.match(text):
        return int(text.split(".")[0])
    try:
        return float(text)
    except ValueError:
        return float("nan")


def split_valid(bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (valid bars, rejected bars with a `reason`), each in BAR_COLUMNS order.

    Valid bars have a real date, finite prices > 0, high >= max(open, close, low),
    low <= min(open, close), and a whole volume >= 0; a date seen twice is rejected whole,
    since there is no telling which copy is right.
    """
    if bars.empty:
        rejected = pd.DataFrame(columns=[*BAR_COLUMNS, "reason"])
        return bars.reindex(columns=BAR_COLUMNS), rejected
    frame = bars.reindex(columns=BAR_COLUMNS).reset_index(drop=True)
    dates = frame["trade_date"].map(parse_day)
    prices = frame[PRICE_COLUMNS].apply(pd.to_numeric, errors="coerce").astype("float64")
    # Parsed exactly: through float64, a volume above 2**53 would change and one above
    # 2**63 would wrap to a negative int64.
    volume_exact = frame["volume"].map(_to_volume)
    volume = pd.to_numeric(volume_exact, errors="coerce").astype("float64")

    reasons = pd.Series("", index=frame.index, dtype=object)

    def flag(mask, text: str) -> None:
        mask = pd.Series(mask, index=frame.index).fillna(True).astype(bool)
        hit = mask & (reasons == "")
        reasons[hit] = text

    flag(dates.isna(), "unparseable trade_date")
    for column in PRICE_COLUMNS:
        flag(~np.isfinite(prices[column]), f"{column} is not a number")
    for column in PRICE_COLUMNS:
        flag(prices[column] <= 0, f"{column} is not positive")
    flag(
        prices["high"] < prices[["open", "close", "low"]].max(axis=1),
        "high is below open, close or low",
    )
    flag(prices["low"] > prices[["open", "close"]].min(axis=1), "low is above open or close")
    flag(~np.isfinite(volume), "volume is not a number")
    flag(volume < 0, "volume is negative")
    flag(volume.mod(1) != 0, "volume is not a whole number")
    flag(
        volume_exact.map(lambda v: isinstance(v, int) and v > INT64_MAX) | (volume > INT64_MAX),
        "volume is too large",
    )
    duplicated = dates.notna() & dates.duplicated(keep=False)
    flag(duplicated, "trade_date appears more than once")

    bad = reasons != ""
    valid = pd.DataFrame(
        {
            "trade_date": dates[~bad].astype(object),
            "open": prices.loc[~bad, "open"],
            "high": prices.loc[~bad, "high"],
            "low": prices.loc[~bad, "low"],
            "close": prices.loc[~bad, "close"],
            "volume": volume_exact[~bad].astype("int64"),
        }
    )
    valid = valid.sort_values("trade_date", kind="stable").reset_index(drop=True)
    rejected = frame.loc[bad].astype(str).assign(reason=reasons[bad]).reset_index(drop=True)
    return valid, rejected
