"""Quarterly earnings landed in a test lake as an import lands them (lake/earnings.land)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from marketlake.lake import earnings
from marketlake.storage import LocalStore

Quarter = tuple[dt.date, dt.date, float]  # fiscal_date_ending, reported_date, reported EPS


def valid_frame(quarters: Iterable[Quarter]) -> pd.DataFrame:
    """The quarters in the shape earnings.judge returns its valid rows (fiscal, reported,
    eps), by quarter."""
    rows = sorted(quarters)
    return pd.DataFrame(
        {
            "fiscal": pd.Series([q[0] for q in rows], dtype=object),
            "reported": pd.Series([q[1] for q in rows], dtype=object),
            "eps": pd.Series([q[2] for q in rows], dtype=float),
        }
    )


def land_earnings(
    home: Path,
    symbol: str,
    quarters: Iterable[Quarter],
    ingest_date: dt.date = dt.date(2024, 7, 1),
    ingested_at: str = "2024-07-01 21:00:00.000",
) -> int:
    """Land `quarters` of `symbol` in the lake at `home`, their EPS as reported."""
    store = LocalStore(home)
    return earnings.land(store, symbol, valid_frame(quarters), "import", ingest_date, ingested_at)
