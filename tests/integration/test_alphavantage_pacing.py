"""The rate limiter with AlphaVantageProvider on a loopback Alpha Vantage (av_fake_server):
every HTTP request, throttled answers included, is paced and counted against the day's
budget before it goes out, and that count carries over from one run to the next."""

from __future__ import annotations

import datetime as dt

import pytest
from av_fake_server import (
    INFO_BURST,
    NOTE_5_PER_MINUTE,
    FakeAlphaVantage,
    Reply,
    daily_json,
    sample_bars,
)

from marketlake.ingest.ratelimit import QuotaExhausted, RateLimiter, SimulatedClock
from marketlake.providers.alphavantage import AlphaVantageProvider

KEY = "MLTESTKEYP4C3D01"
UNTIL = dt.date(2030, 1, 1)
ANSWER = Reply(daily_json("IBM", sample_bars(10)))


@pytest.fixture
def server():
    with FakeAlphaVantage() as fake:
        yield fake


def test_limiter_paces_and_caps_real_requests(server):
    clock = SimulatedClock(start=1000.0)
    persisted: list[int] = []
    seen: list[tuple[float, int]] = []
    server.on_request = lambda q: seen.append((clock.now(), persisted[-1]))
    # Throttled answers still cost a call: they must count against pace and budget.
    server.replies = [Reply(INFO_BURST), ANSWER, Reply(NOTE_5_PER_MINUTE)]
    server.default = ANSWER
    limiter = RateLimiter(
        calls_per_minute=5,
        calls_per_day=8,
        clock=clock.now,
        sleep=clock.sleep,
        on_acquire=persisted.append,
    )
    p = AlphaVantageProvider(
        KEY, base_url=server.url, backoff_seconds=1.0, limiter=limiter, sleep=clock.sleep
    )
    done, deferred = [], []
    for symbol in [f"S{i}" for i in range(12)]:
        try:
            p.fetch(symbol, None, UNTIL)
            done.append(symbol)
        except QuotaExhausted:
            deferred.append(symbol)

    times = [t for t, _ in seen]
    assert len(server.requests) == 8 and persisted == list(range(1, 9))
    assert done == [f"S{i}" for i in range(6)] and deferred == [f"S{i}" for i in range(6, 12)]
    # Counted and persisted before each request went out.
    assert [n for _, n in seen] == list(range(1, 9))
    # Never more than 5 requests in any 60-second window, never closer than 12 s.
    assert all(b - a >= 12.0 - 1e-9 for a, b in zip(times, times[1:]))
    for start in times:
        assert sum(start <= t < start + 60.0 for t in times) <= 5


def test_daily_cap_holds_across_two_runs_sharing_the_persisted_count(server):
    server.default = ANSWER
    state = {"used_today": 0}

    def run(symbols: list[str]) -> list[str]:
        clock = SimulatedClock()
        limiter = RateLimiter(
            calls_per_minute=60,
            calls_per_day=8,
            used_today=state["used_today"],
            clock=clock.now,
            sleep=clock.sleep,
            on_acquire=lambda n: state.update(used_today=n),
        )
        p = AlphaVantageProvider(KEY, base_url=server.url, limiter=limiter, sleep=clock.sleep)
        deferred = []
        for symbol in symbols:
            try:
                p.fetch(symbol, None, UNTIL)
            except QuotaExhausted:
                deferred.append(symbol)
        return deferred

    assert run(["A", "B", "C", "D", "E"]) == []
    assert run(["F", "G", "H", "I", "J"]) == ["I", "J"]
    assert len(server.requests) == 8 and state["used_today"] == 8
