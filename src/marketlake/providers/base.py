"""The Provider protocol: where daily bars come from."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import pandas as pd

# What every provider returns: one row per session, oldest first, unique trade_date.
# trade_date holds datetime.date objects; prices are float64, volume int64. Values are
# as received: validation (ingest.validate) decides what reaches the raw zone.
BAR_COLUMNS = ["trade_date", "open", "high", "low", "close", "volume"]


def empty_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trade_date": pd.Series([], dtype=object),
            "open": pd.Series([], dtype="float64"),
            "high": pd.Series([], dtype="float64"),
            "low": pd.Series([], dtype="float64"),
            "close": pd.Series([], dtype="float64"),
            "volume": pd.Series([], dtype="int64"),
        }
    )


class Provider(Protocol):
    name: str  # also the `source` column of the raw zone

    def fetch_daily(self, symbol: str, since: dt.date | None, until: dt.date) -> pd.DataFrame:
        """Bars for sessions in [since, until] (since=None: as far back as the provider goes)."""
