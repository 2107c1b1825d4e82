"""A deterministic synthetic market: a geometric random walk on the NYSE calendar.

Each symbol's whole path is drawn from one RNG seeded by (seed, symbol) and walked from a
fixed epoch, so a bar for a given day is identical whatever the as-of date or the since.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from functools import lru_cache

import numpy as np
import pandas as pd

from marketlake.providers.base import empty_bars
from marketlake.sessions import CALENDAR_START, nyse

TRADING_DAYS = 252
ANCHOR_SESSION = dt.date(2013, 1, 2)


STREAMS = ("params", "vol", "price", "gap", "upper", "lower", "volume")


def _rngs(seed: int, symbol: str) -> dict:
    """One independent generator per random series. The calendar grows every day, so a
    series' length changes; separate streams keep day k's draw the same whatever the length
    (one shared stream would shift every later series by the new draws)."""
    # hash() is salted per process; a digest keeps runs reproducible.
    digest = hashlib.sha256(f"{seed}:{symbol}".encode()).digest()
    root = np.random.SeedSequence(int.from_bytes(digest[:8], "little"))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, root.spawn(7))}


@lru_cache(maxsize=1)
def _all_sessions() -> np.ndarray:
    cal = nyse()
    return np.array([ts.date() for ts in cal.sessions], dtype=object)


@lru_cache(maxsize=64)
def _path(seed: int, symbol: str) -> pd.DataFrame:
    sessions = _all_sessions()
    n = len(sessions)
    rng = _rngs(seed, symbol)
    params = rng["params"]
    price0 = float(np.exp(params.uniform(np.log(15.0), np.log(250.0))))
    annual_drift = params.uniform(-0.01, 0.12)
    annual_vol = params.uniform(0.22, 0.55)
    mean_volume = float(np.exp(params.uniform(np.log(2e6), np.log(6e7))))

    sigma = annual_vol / np.sqrt(TRADING_DAYS)
    # Volatility clusters: log-vol follows a slow AR(1) around the symbol's level.
    vol_shocks = rng["vol"].normal(0.0, 0.08, n)
    price_shocks = rng["price"].normal(0.0, 1.0, n)
    sigma_t = np.empty(n)
    deviation = np.empty(n)
    level = dev = 0.0
    # Log-price = trend + a slowly mean-reverting deviation (half-life ~2 years), so
    # prices stay plausible across decades while daily moves keep their volatility.
    revert = np.exp(-np.log(2.0) / (2 * TRADING_DAYS))
    for i in range(n):
        level = 0.97 * level + vol_shocks[i]
        sigma_t[i] = sigma * np.exp(level)
        dev = revert * dev + price_shocks[i] * sigma_t[i]
        deviation[i] = dev
    # The trend passes through price0 at a fixed anchor session: the calendar's end moves
    # with today's date, so nothing may depend on its length.
    t = np.arange(n) - int(np.searchsorted(sessions, ANCHOR_SESSION))
    log_close = np.log(price0) + annual_drift / TRADING_DAYS * t + deviation
    close = np.exp(log_close)
    returns = np.diff(log_close, prepend=log_close[0])
    gap = rng["gap"].normal(0.0, 0.35, n) * sigma_t
    body = returns - gap  # open -> close
    open_ = np.exp(log_close - body)
    upper = np.abs(rng["upper"].normal(0.0, 0.5, n)) * sigma_t
    lower = np.abs(rng["lower"].normal(0.0, 0.5, n)) * sigma_t
    high = np.maximum(open_, close) * np.exp(upper)
    low = np.minimum(open_, close) * np.exp(-lower)

    # Cents, as exchanges quote; rounding can break the OHLC order, so restore it.
    open_, close = np.round(open_, 2), np.round(close, 2)
    open_ = np.maximum(open_, 0.01)
    close = np.maximum(close, 0.01)
    high = np.maximum(np.round(high, 2), np.maximum(open_, close))
    low = np.clip(np.round(low, 2), 0.01, np.minimum(open_, close))

    # Busier on big moves; lognormal around the symbol's mean.
    move = np.abs(gap + body) / sigma_t
    volume = mean_volume * np.exp(rng["volume"].normal(-0.125, 0.5, n) + 0.25 * move)
    return pd.DataFrame(
        {
            "trade_date": sessions,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": np.maximum(volume, 1.0).astype("int64"),
        }
    )


class SyntheticProvider:
    """Stands in for the API when no key is set; no network, no limits."""

    name = "synthetic"

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed

    def fetch_daily(self, symbol: str, since: dt.date | None, until: dt.date) -> pd.DataFrame:
        path = _path(self.seed, symbol)
        lo = since if since is not None else dt.date.fromisoformat(CALENDAR_START)
        if until < lo:
            return empty_bars()
        dates = path["trade_date"]
        mask = (dates >= lo) & (dates <= until)
        return path.loc[mask].reset_index(drop=True)
