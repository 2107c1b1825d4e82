"""A server that cannot be reached, provider by provider (providers.http is shared): a
request that never connected is not counted against the day's quota, and a run's first
request that cannot connect ends in one ServerUnreachable line after a few quick retries,
while a connect failure after the server has answered keeps the usual retry policy.

Time is simulated (the limiter and the backoffs sleep on a SimulatedClock): the tests count
attempts and sleeps, never wall-clock seconds."""

from __future__ import annotations

import datetime as dt

import pytest
from av_fake_server import FakeAlphaVantage, Reply, daily_json, sample_bars
from polygon_fake_server import FakePolygon
from unreachable import closed_port_url, full_backlog, no_dns, silent_server

from marketlake.ingest.ratelimit import RateLimiter, SimulatedClock
from marketlake.providers.alphavantage import AlphaVantageProvider, FetchFailed
from marketlake.providers.base import Fatal, ServerUnreachable
from marketlake.providers.http import FIRST_CONTACT_BACKOFF_SECONDS, FIRST_CONTACT_RETRIES
from marketlake.providers.polygon import PolygonProvider
from marketlake.providers.polygon.errors import FetchFailed as PolygonFetchFailed

KEY = "MLTESTKEY4Q9Z7X1"
UNTIL = dt.date(2030, 1, 1)
SESSION = dt.date(2024, 7, 3)
USED = 7  # calls already counted today, persisted by an earlier run
FIRST_CONTACT_SLEEPS = [FIRST_CONTACT_BACKOFF_SECONDS * 2**n for n in range(FIRST_CONTACT_RETRIES)]


class Quota:
    """An Alpha Vantage free-tier limiter (5 a minute, 25 a day) on simulated time, and every
    count it asked to persist."""

    def __init__(self) -> None:
        self.clock = SimulatedClock(1000.0)
        self.persisted: list[int] = []
        self.events: list[tuple[str, str]] = []
        self.limiter = RateLimiter(
            calls_per_minute=5,
            calls_per_day=25,
            used_today=USED,
            clock=self.clock.now,
            sleep=self.clock.sleep,
            on_acquire=self.persisted.append,
        )

    def attempts(self) -> int:
        """Calls acquired: each one persisted a count one higher than the one before."""
        counts = [USED, *self.persisted]
        return sum(1 for a, b in zip(counts, counts[1:]) if b == a + 1)

    def event(self, kind: str, message: str) -> None:
        self.events.append((kind, message))


@pytest.fixture
def quota() -> Quota:
    return Quota()


def alphavantage(url: str, quota: Quota, **kwargs) -> AlphaVantageProvider:
    options = {
        "base_url": url,
        "max_retries": 3,
        "backoff_seconds": 15.0,  # the default: minutes of backoff if it were applied
        "limiter": quota.limiter,
        "sleep": quota.clock.sleep,
        "on_event": quota.event,
    }
    options.update(kwargs)
    return AlphaVantageProvider(KEY, **options)


def polygon(url: str, quota: Quota, **kwargs) -> PolygonProvider:
    options = {
        "base_url": url,
        "max_retries": 3,
        "backoff_seconds": 15.0,
        "limiter": quota.limiter,
        "sleep": quota.clock.sleep,
        "on_event": quota.event,
    }
    options.update(kwargs)
    return PolygonProvider(KEY, **options)


def assert_one_line(message: str, setting: str, url: str, reason: str) -> None:
    assert message == (
        f"cannot reach {setting} ({url}): {reason}; check the network or the setting"
    )
    assert "\n" not in message and KEY not in message


# -- the run's first request ------------------------------------------------------------


def test_a_refused_first_request_stops_after_quick_retries_and_counts_nothing(quota):
    url = closed_port_url()
    provider = alphavantage(url, quota)
    with pytest.raises(ServerUnreachable) as info:
        provider.fetch("IBM", None, UNTIL)

    assert isinstance(info.value, Fatal)  # ingest stops the run on it
    assert_one_line(
        str(info.value), "ALPHAVANTAGE_BASE_URL", url, "connection failed: Connection refused"
    )
    assert quota.attempts() == 1 + FIRST_CONTACT_RETRIES
    # Only the short backoffs were slept: neither the 15 s backoff nor the limiter's 12 s
    # pace (each refused attempt gave its place back).
    assert quota.clock.sleeps == FIRST_CONTACT_SLEEPS
    assert quota.limiter.used_today == USED and quota.persisted[-1] == USED
    assert provider.requests_made == 0
    # Quick retries, not reported as events: the one line that stops the run says it all.
    assert quota.events == []


def test_a_name_that_does_not_resolve_stops_the_same_way(quota, monkeypatch):
    resolver = no_dns(monkeypatch)
    url = "https://www.alphavantage.co/query"
    with pytest.raises(ServerUnreachable) as info:
        alphavantage(url, quota).fetch("IBM", None, UNTIL)

    assert_one_line(
        str(info.value),
        "ALPHAVANTAGE_BASE_URL",
        url,
        "name resolution failed for www.alphavantage.co (Temporary failure in name resolution)",
    )
    assert resolver.lookups == ["www.alphavantage.co"] * (1 + FIRST_CONTACT_RETRIES)
    assert quota.limiter.used_today == USED and quota.persisted[-1] == USED


def test_a_connect_timeout_on_the_first_request_is_not_retried(quota):
    with full_backlog() as url, pytest.raises(ServerUnreachable) as info:
        alphavantage(url, quota, timeout=0.3).fetch("IBM", None, UNTIL)

    assert_one_line(str(info.value), "ALPHAVANTAGE_BASE_URL", url, "no connection within 0.3s")
    # It already waited its whole timeout: one attempt, no backoff, nothing counted.
    assert quota.attempts() == 1 and quota.clock.sleeps == []
    assert quota.limiter.used_today == USED


def test_a_max_retries_of_zero_is_kept_for_the_first_request_too(quota):
    with pytest.raises(ServerUnreachable):
        alphavantage(closed_port_url(), quota, max_retries=0).fetch("IBM", None, UNTIL)
    assert quota.attempts() == 1 and quota.clock.sleeps == []


def test_polygon_names_its_own_setting(quota):
    url = closed_port_url("")
    with pytest.raises(ServerUnreachable) as info:
        polygon(url, quota).fetch_grouped(SESSION)
    assert_one_line(
        str(info.value), "POLYGON_BASE_URL", url, "connection failed: Connection refused"
    )
    assert quota.attempts() == 1 + FIRST_CONTACT_RETRIES
    assert quota.clock.sleeps == FIRST_CONTACT_SLEEPS and quota.limiter.used_today == USED


# -- after the server has answered ---------------------------------------------------------


def test_a_connect_failure_mid_run_keeps_the_usual_retries_and_counts_only_what_connected(
    quota,
):
    with FakeAlphaVantage() as server:
        server.default = Reply(daily_json("IBM", sample_bars(5)))
        provider = alphavantage(server.url, quota, backoff_seconds=1.0)
        provider.fetch("IBM", None, UNTIL)
    slept = list(quota.clock.sleeps)
    # The server is gone now (its port refuses): a blip mid-run, not the run's end.
    with pytest.raises(FetchFailed, match="after 4 attempts: connection failed") as info:
        provider.fetch("MSFT", None, UNTIL)

    assert not isinstance(info.value, ServerUnreachable)
    assert quota.attempts() == 1 + 4
    # The pace's wait for the first attempt, then the usual exponential backoffs; the
    # refused attempts gave their places in the pace back, so no retry waited for it.
    interval = quota.limiter.interval
    assert quota.clock.sleeps[len(slept) :] == pytest.approx([interval, 1.0, 2.0, 4.0])
    assert [kind for kind, _ in quota.events] == ["retry"] * 3  # each said, as usual
    assert quota.limiter.used_today == USED + 1  # the answered request only
    assert provider.requests_made == 1


def test_polygon_mid_run_connect_failure_is_a_fetch_failed(quota):
    with FakePolygon(KEY, tickers=3) as server:
        provider = polygon(server.url, quota, backoff_seconds=1.0, max_retries=1)
        provider.fetch_grouped(SESSION)
    with pytest.raises(PolygonFetchFailed, match="connection failed"):
        provider.fetch_grouped(SESSION)
    assert quota.limiter.used_today == USED + 1 and provider.requests_made == 1


# -- requests that may have reached the server stay counted --------------------------------


def test_a_read_timeout_counts_every_attempt(quota):
    # The request was sent: the server may have counted it, so the quota does too.
    late = r"after 2 attempts: no answer within 0\.2s"
    with silent_server() as url, pytest.raises(FetchFailed, match=late):
        alphavantage(url, quota, timeout=0.2, max_retries=1).fetch("IBM", None, UNTIL)
    assert quota.attempts() == 2 and quota.limiter.used_today == USED + 2


def test_a_dropped_answer_counts_every_attempt(quota):
    with FakeAlphaVantage() as server:
        server.default = Reply(drop=True)
        with pytest.raises(FetchFailed, match="connection dropped"):
            alphavantage(server.url, quota, max_retries=1).fetch("IBM", None, UNTIL)
        assert len(server.requests) == 2
    assert quota.limiter.used_today == USED + 2


def test_a_malformed_base_url_is_not_counted_either(quota):
    with pytest.raises(FetchFailed, match="check ALPHAVANTAGE_BASE_URL"):
        alphavantage("htp:/nowhere", quota).fetch("IBM", None, UNTIL)
    assert quota.attempts() == 1 and quota.limiter.used_today == USED
