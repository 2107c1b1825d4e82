"""A deterministic synthetic market: a geometric random walk on the NYSE calendar.

Each symbol's whole path is drawn from one RNG seeded by (seed, symbol) and walked from a
fixed epoch, so a bar for a given day is identical whatever the as-of date or the since.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
from functools import lru_cache

import numpy as np
import pandas as pd

from marketlake.lake.earnings import empty_earnings
from marketlake.providers.base import ProviderDefaults, empty_bars
from marketlake.sessions import CALENDAR_START, nyse

TRADING_DAYS = 252
ANCHOR_SESSION = dt.date(2013, 1, 2)

# Splits of the synthetic market (effective date, new shares per old share), seed-independent:
# two 10:1 splits where NVDA and AVGO really split, and, inside the default two-year window of
# `make run`, a 10:1, a 2:1 and a 1:4 reverse split. Prices before a split trade at the
# adjusted path times the product of the later factors, so each split is a real jump in the
# traded series, exactly undone by the adjustment.
SPLITS = {
    "NVDA": ((dt.date(2024, 6, 10), 10.0),),
    "AVGO": ((dt.date(2024, 7, 15), 10.0),),
    "AMAT": ((dt.date(2025, 6, 16), 10.0),),
    "TXN": ((dt.date(2025, 10, 20), 2.0),),
    "INTC": ((dt.date(2026, 3, 16), 0.25),),
}
# Quarterly dividends: ex-dates in these months, on the first session on or after the 10th.
DIVIDEND_MONTHS = (2, 5, 8, 11)
# Quarterly earnings: fiscal quarters end on these (month, day); each is reported 20 to 45
# calendar days later (a weekend now and then), about one quarter in LOSS_ODDS a loss.
FISCAL_QUARTER_ENDS = ((3, 31), (6, 30), (9, 30), (12, 31))
REPORT_LAG_DAYS = (20, 45)
LOSS_ODDS = 8


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

    # Drawn after the others, so the bars of every seed stay what they were.
    dividend_yield = params.uniform(-0.01, 0.035)  # a symbol below 0 pays none

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
    t = np.arange(n) - bisect.bisect_left(sessions, ANCHOR_SESSION)
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

    # Traded prices: the adjusted path times the product of the later splits' factors.
    factor = np.ones(n)
    for day, ratio in SPLITS.get(symbol, ()):
        factor[sessions < day] *= ratio
    open_, close, high, low = (x * factor for x in (open_, close, high, low))

    # Cents, as exchanges quote; rounding can break the OHLC order, so restore it.
    open_, close = np.round(open_, 2), np.round(close, 2)
    open_ = np.maximum(open_, 0.01)
    close = np.maximum(close, 0.01)
    high = np.maximum(np.round(high, 2), np.maximum(open_, close))
    low = np.clip(np.round(low, 2), 0.01, np.minimum(open_, close))

    # Busier on big moves; lognormal around the symbol's mean.
    move = np.abs(gap + body) / sigma_t
    volume = mean_volume * np.exp(rng["volume"].normal(-0.125, 0.5, n) + 0.25 * move) / factor
    frame = pd.DataFrame(
        {
            "trade_date": sessions,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": np.maximum(volume, 1.0).astype("int64"),
        }
    )
    frame.attrs["dividend_yield"] = float(dividend_yield)
    return frame


def _dividends(seed: int, symbol: str) -> pd.DataFrame:
    """Quarterly cash dividends of a payer: a quarter of its yield times the close of the
    session before the ex-date, in cents (at least one)."""
    path = _path(seed, symbol)
    annual = path.attrs["dividend_yield"]
    if annual <= 0:
        return pd.DataFrame({"date": pd.Series([], dtype=object), "value": []})
    sessions = path["trade_date"]
    rows = []
    for year in range(sessions.iloc[0].year, sessions.iloc[-1].year + 1):
        for month in DIVIDEND_MONTHS:
            at = bisect.bisect_left(sessions.to_numpy(), dt.date(year, month, 10))
            if 0 < at < len(sessions):
                amount = max(round(annual / 4 * float(path["close"].iloc[at - 1]), 2), 0.01)
                rows.append((sessions.iloc[at], amount))
    return pd.DataFrame(rows, columns=["date", "value"])


def _uniforms(*parts: object) -> list[float]:
    """Four numbers in [0, 1) fixed by `parts`: a quarter's draws do not depend on how many
    quarters the calendar holds, nor touch the bars' streams."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return [int.from_bytes(digest[i : i + 8], "little") / 2**64 for i in range(0, 32, 8)]


def _earnings(seed: int, symbol: str, until: dt.date) -> list[tuple[dt.date, dt.date, float]]:
    """(fiscal quarter end, reported date, EPS as reported) of the quarters reported on or
    before `until`. The EPS is a quarter of the symbol's earnings yield times the traded close
    of the last session before the report, in cents: on the share basis of its reported date,
    as a company reports it (a split later makes the build rescale it)."""
    path = _path(seed, symbol)
    sessions = path["trade_date"].to_numpy()
    # Earnings yield 2.5-7% (P/E about 14 to 40), above a payer's dividend yield.
    earnings_yield = max(
        0.025 + 0.045 * _uniforms(seed, symbol, "earnings")[0],
        1.5 * path.attrs["dividend_yield"],
    )
    rows = []
    for year in range(sessions[0].year, until.year + 1):
        for month, day in FISCAL_QUARTER_ENDS:
            fiscal = dt.date(year, month, day)
            lag, size, loss, depth = _uniforms(seed, symbol, fiscal.isoformat())
            low, high = REPORT_LAG_DAYS
            reported = fiscal + dt.timedelta(days=low + int(lag * (high - low + 1)))
            at = bisect.bisect_right(sessions, reported)
            if reported > until or at == 0 or fiscal < sessions[0]:
                continue
            quarter = earnings_yield / 4 * float(path["close"].iloc[at - 1])
            if loss * LOSS_ODDS < 1:
                eps = -quarter * (0.2 + 0.8 * depth)
            else:
                eps = quarter * (0.7 + 0.6 * size)
            rows.append((fiscal, reported, round(eps, 2)))
    return rows


class SyntheticProvider(ProviderDefaults):
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

    def fetch_actions(self, kind: str, symbol: str, until: dt.date) -> pd.DataFrame:
        """`kind` splits or dividends: (date, value) of the events up to `until`."""
        if kind == "splits":
            events = [(d, f) for d, f in SPLITS.get(symbol, ()) if d <= until]
            return pd.DataFrame(
                {
                    "date": pd.Series([d for d, _ in events], dtype=object),
                    "value": [f for _, f in events],
                }
            )
        frame = _dividends(self.seed, symbol)
        return frame.loc[[d <= until for d in frame["date"]]].reset_index(drop=True)

    def fetch_earnings(self, symbol: str, until: dt.date) -> pd.DataFrame:
        """The quarters reported on or before `until`, as text like a vendor's (the frame
        lake.earnings.empty_earnings describes); EPS as reported (restates_earnings False)."""
        rows = _earnings(self.seed, symbol, until)
        frame = empty_earnings()
        values = (
            [f.isoformat() for f, _, _ in rows],
            [r.isoformat() for _, r, _ in rows],
            [f"{e:.2f}" for _, _, e in rows],
        )
        return pd.DataFrame(
            {c: pd.Series(v, dtype=object) for c, v in zip(frame.columns, values)},
            columns=frame.columns,
        )
