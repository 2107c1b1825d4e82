"""The synthetic market: deterministic, on the NYSE calendar, consistent and roughly realistic."""

from __future__ import annotations

import datetime as dt

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from marketlake.config import DEFAULT_TICKERS
from marketlake.providers import synthetic
from marketlake.providers.base import BAR_COLUMNS
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.sessions import CALENDAR_START

START, END = dt.date(2015, 1, 1), dt.date(2025, 12, 31)


@pytest.fixture
def fresh_paths():
    """Drop the per-(seed, symbol) cache so a path is really recomputed."""
    synthetic._path.cache_clear()
    synthetic._all_sessions.cache_clear()
    yield
    synthetic._path.cache_clear()
    synthetic._all_sessions.cache_clear()


def test_same_seed_and_symbol_give_the_same_frame(fresh_paths):
    first = SyntheticProvider(seed=42).fetch_daily("NVDA", START, END)
    synthetic._path.cache_clear()
    second = SyntheticProvider(seed=42).fetch_daily("NVDA", START, END)
    assert first is not second
    pd.testing.assert_frame_equal(first, second)


def test_other_seeds_and_symbols_give_other_markets():
    base = SyntheticProvider(seed=42).fetch_daily("NVDA", START, END)
    other_seed = SyntheticProvider(seed=43).fetch_daily("NVDA", START, END)
    other_symbol = SyntheticProvider(seed=42).fetch_daily("AMD", START, END)
    for other in (other_seed, other_symbol):
        assert list(other["trade_date"]) == list(base["trade_date"])
        assert not np.allclose(other["close"], base["close"])
        assert (other["close"] != base["close"]).mean() > 0.9


def test_the_frame_follows_the_provider_contract():
    bars = SyntheticProvider().fetch_daily("TSM", dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert list(bars.columns) == BAR_COLUMNS
    assert bars["trade_date"].dtype == object
    assert all(type(d) is dt.date for d in bars["trade_date"])
    for column in ("open", "high", "low", "close"):
        assert bars[column].dtype == np.float64
    assert bars["volume"].dtype == np.int64
    assert bars["trade_date"].is_monotonic_increasing
    assert bars["trade_date"].is_unique
    assert list(bars.index) == list(range(len(bars)))


def test_one_bar_per_xnys_session_exactly():
    calendar = xcals.get_calendar("XNYS", start="2014-01-01", end="2026-06-30")
    expected = [ts.date() for ts in calendar.sessions_in_range("2015-01-01", "2025-12-31")]
    bars = SyntheticProvider().fetch_daily("INTC", START, END)
    assert list(bars["trade_date"]) == expected
    assert len(bars) == len(expected) > 2700


def test_since_and_until_are_inclusive_and_reversed_is_empty():
    provider = SyntheticProvider()
    bars = provider.fetch_daily("MU", dt.date(2024, 7, 3), dt.date(2024, 7, 8))
    assert list(bars["trade_date"]) == [
        dt.date(2024, 7, 3),
        dt.date(2024, 7, 5),
        dt.date(2024, 7, 8),
    ]
    assert provider.fetch_daily("MU", dt.date(2024, 7, 6), dt.date(2024, 7, 7)).empty
    empty = provider.fetch_daily("MU", dt.date(2024, 7, 9), dt.date(2024, 7, 1))
    assert empty.empty
    assert list(empty.columns) == BAR_COLUMNS


def test_since_none_starts_at_the_calendar_start():
    bars = SyntheticProvider().fetch_daily("MU", None, dt.date(2000, 1, 31))
    assert bars["trade_date"].iloc[0] == dt.date.fromisoformat(CALENDAR_START)


@pytest.mark.parametrize("symbol", DEFAULT_TICKERS)
def test_ohlc_is_consistent_and_positive(symbol):
    bars = SyntheticProvider(seed=42).fetch_daily(symbol, None, END)
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (h >= np.maximum(o, c)).all()
    assert (lo <= np.minimum(o, c)).all()
    assert (lo <= h).all()
    assert (np.stack([o, h, lo, c]) > 0).all()
    assert np.isfinite(np.stack([o, h, lo, c])).all()
    assert (bars["volume"] > 0).all()


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (dt.date(2024, 6, 3), dt.date(2024, 6, 3)),
        (None, dt.date(2024, 6, 3)),
        (dt.date(2024, 1, 1), dt.date(2024, 12, 31)),
        (dt.date(2010, 1, 1), dt.date(2025, 6, 30)),
    ],
)
def test_a_days_bar_does_not_depend_on_the_window(since, until):
    day = dt.date(2024, 6, 3)
    reference = SyntheticProvider(seed=5).fetch_daily("AVGO", day, day)
    assert len(reference) == 1
    bars = SyntheticProvider(seed=5).fetch_daily("AVGO", since, until)
    row = bars[bars["trade_date"] == day].reset_index(drop=True)
    pd.testing.assert_frame_equal(row, reference)


# Regression: all series were drawn from one RNG stream sized by the calendar's session count,
# and the calendar ends a year after today, so every historical bar changed from day to day.
def test_a_days_bar_does_not_depend_on_when_the_calendar_ends(fresh_paths, monkeypatch):
    # sessions.nyse() ends a year after today, so its length changes every session day.
    # Simulate two runs a month apart by giving the provider calendars of two lengths.
    day = dt.date(2024, 6, 3)
    answers = []
    for end in ("2026-12-31", "2027-01-29"):
        calendar = xcals.get_calendar("XNYS", start=CALENDAR_START, end=end)
        monkeypatch.setattr(synthetic, "nyse", lambda calendar=calendar: calendar)
        synthetic._path.cache_clear()
        synthetic._all_sessions.cache_clear()
        answers.append(SyntheticProvider(seed=42).fetch_daily("NVDA", day, day))
    pd.testing.assert_frame_equal(answers[0], answers[1])


def test_prices_are_quoted_in_cents():
    bars = SyntheticProvider().fetch_daily("QCOM", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    for column in ("open", "high", "low", "close"):
        cents = bars[column].to_numpy() * 100
        assert np.allclose(cents, np.round(cents), atol=1e-6)


@pytest.mark.parametrize("seed", [1, 42])
def test_the_market_is_roughly_realistic(seed):
    provider = SyntheticProvider(seed=seed)
    vols = []
    for symbol in DEFAULT_TICKERS:
        bars = provider.fetch_daily(symbol, dt.date(2023, 1, 1), dt.date(2024, 12, 31))
        # Split-adjusted: a split is a jump of the traded price, not a move of the market.
        factor = np.ones(len(bars))
        for day, ratio in provider.fetch_actions("splits", symbol, dt.date(2099, 1, 1)).itertuples(
            index=False
        ):
            factor[(bars["trade_date"] < day).to_numpy()] *= ratio
        bars[["open", "high", "low", "close"]] = bars[["open", "high", "low", "close"]].div(
            factor, axis=0
        )
        close = bars["close"].to_numpy()
        assert (close > 0).all()
        log_returns = np.diff(np.log(close))
        vol = log_returns.std(ddof=1) * np.sqrt(252)
        assert 0.1 < vol < 1.0, f"{symbol}: annualised volatility {vol:.2f}"
        # No absurd jumps: a daily move of more than ~40% would be a crash or a bug.
        assert np.abs(log_returns).max() < 0.5
        # Intraday range is a sensible fraction of the price, and not always zero.
        spread = (bars["high"] - bars["low"]) / bars["close"]
        assert 0.001 < spread.median() < 0.1
        vols.append(vol)
    # Symbols do not all share one volatility.
    assert max(vols) - min(vols) > 0.05


# -- quarterly earnings ----------------------------------------------------------------------


def quarters(symbol: str, until: dt.date, seed: int = 42) -> list[tuple[dt.date, dt.date, float]]:
    frame = SyntheticProvider(seed=seed).fetch_earnings(symbol, until)
    return [
        (dt.date.fromisoformat(f), dt.date.fromisoformat(r), float(e))
        for f, r, e in frame.itertuples(index=False)
    ]


def test_earnings_are_deterministic_and_each_quarter_is_the_same_whatever_the_until(fresh_paths):
    first = quarters("NVDA", dt.date(2025, 6, 30))
    synthetic._path.cache_clear()
    again = quarters("NVDA", dt.date(2025, 6, 30))
    assert first == again
    cut = dt.date(2024, 3, 1)
    assert quarters("NVDA", cut) == [q for q in first if q[1] <= cut]
    assert quarters("NVDA", dt.date(2025, 6, 30), seed=7) != first


def test_earnings_are_calendar_quarters_reported_20_to_45_days_later_never_after_until():
    until = dt.date(2025, 8, 1)
    rows = [q for s in ("AMD", "INTC", "MU") for q in quarters(s, until)]
    assert {(f.month, f.day) for f, _, _ in rows} == {(3, 31), (6, 30), (9, 30), (12, 31)}
    lags = {(r - f).days for f, r, _ in rows}
    assert min(lags) >= 20 and max(lags) <= 45
    assert max(r for _, r, _ in rows) <= until
    # The newest quarter whose report is due by then is there: none is left out.
    assert any(f == dt.date(2025, 3, 31) for f, _, _ in rows)
    assert any(r.weekday() >= 5 for _, r, _ in rows)  # some reported on a weekend


def test_a_loss_quarter_comes_now_and_then():
    rows = [q for s in ("AMD", "INTC", "MU", "QCOM") for q in quarters(s, dt.date(2025, 12, 31))]
    recent = [e for f, _, e in rows if f.year >= 2022]
    losses = sum(e < 0 for e in recent)
    assert 0 < losses < len(recent) / 4  # about one in eight


def test_earnings_are_as_reported_so_a_split_divides_the_eps_that_follow_it():
    """AMAT splits 10:1 on 2025-06-16: reports before it are on the old share count, about
    ten times those after (its bars trade the same way; the build rescales both)."""
    rows = quarters("AMAT", dt.date(2026, 6, 30))
    split = dt.date(2025, 6, 16)
    before = [abs(e) for _, r, e in rows if dt.date(2024, 6, 1) <= r < split]
    after = [abs(e) for _, r, e in rows if r >= split]
    assert np.median(before) / np.median(after) > 5
