"""What may reach the raw zone: every bar is checked here, whichever provider sent it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from marketlake import fields
from marketlake.providers.base import BAR_COLUMNS

PRICE_COLUMNS = ["open", "high", "low", "close"]


def _price(value) -> float:
    try:
        return fields.parse_price(value)
    except fields.FieldError:
        return float("nan")  # flagged below as "<column> is not a number"


def _volume(value) -> int | str:
    """The exact volume (a Python int), or the problem validation reports."""
    try:
        return fields.parse_volume(value)
    except fields.FieldError as exc:
        return exc.problem


def split_valid(bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (valid bars, rejected bars with a `reason`), each in BAR_COLUMNS order.

    Valid bars have a real date, finite prices > 0, high >= max(open, close, low),
    low <= min(open, close), and a whole volume >= 0; a date seen twice is rejected whole,
    since there is no telling which copy is right.

    Bars of many symbols (a whole-market answer) carry a `symbol` column, kept first in both
    frames: then a date is seen twice only within one symbol.
    """
    columns = (["symbol"] if "symbol" in bars.columns else []) + BAR_COLUMNS
    if bars.empty:
        rejected = pd.DataFrame(columns=[*columns, "reason"])
        return bars.reindex(columns=columns), rejected
    frame = bars.reindex(columns=columns).reset_index(drop=True)
    dates = frame["trade_date"].map(fields.date_or_none)
    prices = frame[PRICE_COLUMNS].apply(lambda c: c.map(_price)).astype("float64")
    # Parsed exactly: through float64, a volume above 2**53 would change and one above
    # 2**63 would wrap to a negative int64.
    volume = frame["volume"].map(_volume)
    problem = volume.map(lambda v: v if isinstance(v, str) else "")

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
    # In the order the parser ranks them: not a number, negative, not whole, too large.
    flag(problem == fields.NOT_A_NUMBER, "volume is not a number")
    flag(
        (problem == fields.NEGATIVE) | volume.map(lambda v: isinstance(v, int) and v < 0),
        "volume is negative",
    )
    flag(problem == fields.NOT_WHOLE, "volume is not a whole number")
    flag(problem == fields.TOO_LARGE, "volume is too large")
    keys = pd.DataFrame({"symbol": frame["symbol"], "date": dates}) if "symbol" in frame else dates
    duplicated = dates.notna() & keys.duplicated(keep=False)
    flag(duplicated, "trade_date appears more than once")

    bad = reasons != ""
    symbols = {"symbol": frame.loc[~bad, "symbol"].astype(str)} if "symbol" in frame else {}
    valid = pd.DataFrame(
        {
            **symbols,
            "trade_date": dates[~bad].astype(object),
            "open": prices.loc[~bad, "open"],
            "high": prices.loc[~bad, "high"],
            "low": prices.loc[~bad, "low"],
            "close": prices.loc[~bad, "close"],
            "volume": volume[~bad].astype("int64"),
        }
    )
    order = [*symbols, "trade_date"]
    valid = valid.sort_values(order, kind="stable").reset_index(drop=True)
    rejected = frame.loc[bad].astype(str).assign(reason=reasons[bad]).reset_index(drop=True)
    return valid, rejected
