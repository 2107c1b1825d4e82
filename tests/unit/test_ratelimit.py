"""The token bucket and the daily budget, on simulated time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketlake.errors import MarketlakeError
from marketlake.ingest.ratelimit import (
    GUARD_SECONDS,
    QuotaExhausted,
    RateLimiter,
    SimulatedClock,
)
from marketlake.providers.alphavantage import DailyLimitReached


def limiter(clock: SimulatedClock, **kwargs) -> RateLimiter:
    return RateLimiter(clock=clock.now, sleep=clock.sleep, **kwargs)


def call_times(lim: RateLimiter, clock: SimulatedClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        lim.acquire()
        times.append(clock.now())
    return times


def max_in_window(times: list[float], window: float) -> int:
    return max(sum(start <= t < start + window for t in times) for start in times)


def test_simulated_clock_advances_only_when_sleeping():
    clock = SimulatedClock(start=5.0)
    assert clock.now() == 5.0
    clock.sleep(2.5)
    clock.sleep(0.0)
    assert clock.now() == 7.5 and clock.sleeps == [2.5, 0.0] and clock.slept == 2.5
    with pytest.raises(ValueError):
        clock.sleep(-1)


def test_default_burst_spaces_calls_evenly():
    clock = SimulatedClock()
    lim = limiter(clock, calls_per_minute=5, calls_per_day=0)
    assert lim.interval == 12.0 + GUARD_SECONDS
    times = call_times(lim, clock, 6)
    assert times == pytest.approx([k * (12.0 + GUARD_SECONDS) for k in range(6)])
    assert times[5] - times[0] > 60.0  # the 6th call is past the first one's minute


def test_burst_goes_at_once_then_refills_at_the_rate():
    clock = SimulatedClock()
    lim = limiter(clock, calls_per_minute=5, calls_per_day=0, burst=3)
    i = lim.interval
    assert call_times(lim, clock, 5) == pytest.approx([0.0, 0.0, 0.0, i, 2 * i])
    clock.sleep(600)  # an idle spell refills the bucket, never past `burst`
    t = 600 + 2 * i
    assert call_times(lim, clock, 4) == pytest.approx([t, t, t, t + i])


def test_min_interval_spaces_a_burst():
    clock = SimulatedClock()
    lim = limiter(clock, calls_per_minute=75, calls_per_day=0, burst=10, min_interval=1.0)
    assert call_times(lim, clock, 4) == pytest.approx([0.0, 1.0, 2.0, 3.0])


def test_time_spent_elsewhere_counts_towards_the_wait():
    clock = SimulatedClock()
    lim = limiter(clock, calls_per_minute=5, calls_per_day=0)
    lim.acquire()
    clock.sleep(10.0)  # e.g. the HTTP call and parsing
    assert lim.acquire() == pytest.approx(2.0 + GUARD_SECONDS)
    assert clock.now() == pytest.approx(lim.interval)


def test_on_wait_is_told_before_each_sleep():
    clock = SimulatedClock()
    told = []

    def on_wait(seconds):
        told.append((seconds, clock.now()))

    lim = limiter(clock, calls_per_minute=6, calls_per_day=0, on_wait=on_wait)
    waited = [lim.acquire() for _ in range(3)]
    i = lim.interval
    assert waited == pytest.approx([0.0, i, i])
    assert told == [(pytest.approx(i), 0.0), (pytest.approx(i), pytest.approx(i))]
    assert clock.sleeps == pytest.approx([i, i])


def test_on_acquire_reports_the_count_before_acquire_returns():
    clock = SimulatedClock()
    persisted = []
    lim = limiter(clock, calls_per_minute=60, calls_per_day=25, used_today=3)
    lim.on_acquire = persisted.append
    for expected in (4, 5, 6):
        lim.acquire()
        assert persisted[-1] == expected == lim.used_today
    assert lim.remaining_today() == 19


def test_spent_budget_raises_before_any_wait():
    clock = SimulatedClock()
    waits = []
    lim = limiter(clock, calls_per_minute=1, calls_per_day=2, on_wait=waits.append)
    lim.acquire()
    lim.acquire()
    slept = list(clock.sleeps)
    before = clock.now()
    with pytest.raises(QuotaExhausted, match="2 of 2 calls") as info:
        lim.acquire()
    assert info.value.used_today == 2 and info.value.calls_per_day == 2
    assert clock.now() == before and clock.sleeps == slept and len(waits) == 1
    assert lim.used_today == 2 and lim.remaining_today() == 0
    with pytest.raises(QuotaExhausted):
        lim.peek_wait()


def test_persisted_count_at_the_cap_refuses_the_first_call():
    clock = SimulatedClock()
    with pytest.raises(QuotaExhausted):
        limiter(clock, calls_per_day=25, used_today=25).acquire()
    assert clock.sleeps == []


def test_two_limiters_sharing_the_persisted_count_never_exceed_the_day():
    state = {"used": 0}
    made = 0
    for run in range(3):  # three runs on one day, e.g. a manual rerun after the schedule
        clock = SimulatedClock()
        lim = limiter(
            clock,
            calls_per_minute=5,
            calls_per_day=25,
            used_today=state["used"],
            on_acquire=lambda n: state.update(used=n),
        )
        for _ in range(10 if run < 2 else 100):
            try:
                lim.acquire()
            except QuotaExhausted:
                break
            made += 1
    assert made == 25 and state["used"] == 25


def test_no_daily_cap_when_calls_per_day_is_zero():
    clock = SimulatedClock()
    lim = limiter(clock, calls_per_minute=600, calls_per_day=0, used_today=10_000)
    call_times(lim, clock, 50)
    assert lim.used_today == 10_050 and lim.remaining_today() is None


def test_peek_wait_does_not_consume():
    clock = SimulatedClock()
    lim = limiter(clock, calls_per_minute=5, calls_per_day=0)
    assert lim.peek_wait() == 0.0
    lim.acquire()
    assert lim.peek_wait() == pytest.approx(lim.interval)
    clock.sleep(5.0)
    assert lim.peek_wait() == pytest.approx(lim.interval - 5.0)
    assert lim.used_today == 1


def test_mark_exhausted_spends_and_persists_the_rest_of_the_day():
    clock = SimulatedClock()
    persisted = []
    lim = limiter(clock, calls_per_day=25, used_today=4, on_acquire=persisted.append)
    lim.mark_exhausted()
    assert lim.used_today == 25 and persisted == [25]
    with pytest.raises(QuotaExhausted):
        lim.acquire()
    uncapped = limiter(clock, calls_per_day=0, used_today=4, on_acquire=persisted.append)
    uncapped.mark_exhausted()
    assert uncapped.used_today == 4 and persisted == [25]


def test_a_refund_uncounts_the_call_and_persists_the_lowered_count():
    clock = SimulatedClock()
    persisted = []
    lim = limiter(clock, calls_per_day=25, used_today=4, on_acquire=persisted.append)
    lim.acquire()
    lim.refund()  # that call could not connect: the vendor never counted it
    assert lim.used_today == 4 and persisted == [5, 4] and lim.remaining_today() == 21
    lim.refund()  # nothing acquired since: nothing more to give back
    assert lim.used_today == 4 and persisted == [5, 4]


def test_a_refund_gives_back_the_calls_place_in_the_pace():
    clock = SimulatedClock()
    lim = limiter(clock, calls_per_minute=5, calls_per_day=0)
    lim.acquire()
    lim.acquire()  # waited one interval
    assert clock.sleeps == pytest.approx([lim.interval])
    lim.refund()
    # The next call waits for the first one's interval only, which has passed already.
    assert lim.peek_wait() == 0.0
    lim.acquire()
    assert clock.sleeps == pytest.approx([lim.interval])


def test_refunds_uncount_at_most_the_calls_acquired():
    clock = SimulatedClock()
    lim = limiter(clock, calls_per_minute=5, calls_per_day=25, used_today=2)
    lim.acquire()
    lim.acquire()
    lim.refund()
    lim.refund()
    lim.refund()  # a third: no call is left to give back
    assert lim.used_today == 2
    assert lim.peek_wait() == 0.0  # the second call's place is given back: the next goes now


def test_no_refund_reopens_a_day_the_vendor_said_is_spent():
    clock = SimulatedClock()
    persisted = []
    lim = limiter(clock, calls_per_day=25, used_today=4, on_acquire=persisted.append)
    lim.acquire()
    lim.mark_exhausted()
    lim.refund()
    assert lim.used_today == 25 and persisted == [5, 25]
    with pytest.raises(QuotaExhausted):
        lim.acquire()


def test_daily_limit_from_the_provider_is_a_quota_exhausted():
    assert issubclass(QuotaExhausted, MarketlakeError)
    assert issubclass(DailyLimitReached, QuotaExhausted)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"calls_per_minute": 0},
        {"calls_per_minute": -5},
        {"burst": 0},
        {"calls_per_day": -1},
        {"used_today": -1},
        {"min_interval": -1.0},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)


@settings(max_examples=150, deadline=None)
@given(
    rate=st.integers(min_value=1, max_value=120),
    burst=st.integers(min_value=1, max_value=10),
    idles=st.lists(st.floats(min_value=0, max_value=90, allow_nan=False), max_size=40),
)
def test_bucket_never_lets_more_than_burst_plus_rate_through_any_window(rate, burst, idles):
    clock = SimulatedClock(start=1e6)
    lim = limiter(clock, calls_per_minute=rate, calls_per_day=0, burst=burst)
    times = []
    for idle in idles:
        clock.sleep(idle)  # the caller does other work between calls
        lim.acquire()
        times.append(clock.now())
    for window in (1.0, 12.0, 60.0):
        if times:
            # The token bucket bound: at most burst + rate * window / 60 calls.
            assert max_in_window(times, window) <= burst + rate * window / 60.0 + 1e-6
    if burst == 1 and times:
        # The default: a half-open minute never sees more than `rate` calls.
        assert max_in_window(times, 60.0) <= rate
