"""Pacing of API calls: a token bucket per minute plus a persisted per-day budget.

The bucket is kept in its time-based form (GCRA: one "theoretical arrival time" instead
of a fractional token count), which paces exactly and needs no float tolerance on tokens.
Each interval carries a 1 ms guard so that float rounding never lands call R + 1 a hair
inside the minute that already holds R calls; over a minute at 75 calls that costs 75 ms.

Burst choice. ``burst`` defaults to 1: one call may go at once, after that calls are
spaced ``60 / calls_per_minute`` seconds apart (plus the guard). A bucket of size B refilled at R
calls a minute lets B + R calls through in any 60-second window, so with B = R (the
"obvious" choice for the old 5-a-minute keys) a run can send 9 calls in its first
minute and trip a sliding-window per-minute limit. B = 1 keeps every half-open
60-second window at or under R calls. It also honours the free tier's "about 1 request
per second" burst rule whenever ``calls_per_minute <= 60`` (the free default, 5 a
minute, spaces calls 12 s apart). For a larger ``burst`` (e.g. a premium key that
tolerates short bursts) set ``min_interval`` to keep a floor between two calls.

Daily budget. ``calls_per_day`` caps the calls counted since the caller's day began;
``used_today`` is that count as persisted by the caller (the ingest state). Every
counted call fires ``on_acquire(used_today)`` *before* ``acquire`` returns, i.e. before
the HTTP request goes out, so a crash after the call still leaves it counted. A call that
then could not connect is given back with ``refund`` (the vendor never saw it), which
fires ``on_acquire`` again with the lowered count: counting first and refunding keeps the
crash-safe order, at the price of one extra save per failed connection.

``QuotaExhausted`` (defined in ``providers.base``) is a ``MarketlakeError``: if nothing
catches it, the CLI prints its one-line message. The ingest loop is expected to catch it
(and its subclass ``alphavantage.DailyLimitReached``) and defer the remaining symbols.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

# Defined with the providers' errors: a provider raises it too (its own daily limit).
from marketlake.providers.base import QuotaExhausted

__all__ = ["QuotaExhausted", "RateLimiter", "SimulatedClock"]

# Added to every interval: keeps the (R+1)-th call past the end of a minute holding R.
GUARD_SECONDS = 0.001
# A wait this small after sleeping is float noise: go instead of sleeping again.
_TOLERANCE = 1e-9


class SimulatedClock:
    """A monotonic clock whose ``sleep`` advances time instantly (tests, benchmarks)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot sleep a negative time ({seconds})")
        self.sleeps.append(seconds)
        self._now += seconds

    @property
    def slept(self) -> float:
        """Total simulated seconds spent sleeping."""
        return sum(self.sleeps)


class RateLimiter:
    """Blocks each call until the per-minute pace allows it; refuses past the daily budget.

    ``calls_per_day=0`` means no daily cap. ``clock`` returns monotonic seconds and
    ``sleep`` waits; both are injected so tests and benchmarks run on simulated time.
    ``on_wait(seconds)`` fires before each sleep. ``on_acquire(used_today)`` fires whenever
    ``used_today`` changes: after each counted call (before ``acquire`` returns) and from
    ``mark_exhausted``; persist the value there. One limiter may be shared between
    threads: callers queue.
    """

    def __init__(
        self,
        calls_per_minute: float = 5,
        calls_per_day: int = 25,
        used_today: int = 0,
        burst: int = 1,
        min_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_acquire: Callable[[int], None] | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        if not calls_per_minute > 0:
            raise ValueError(f"calls_per_minute must be positive, not {calls_per_minute!r}")
        if int(burst) < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        if calls_per_day < 0 or used_today < 0:
            raise ValueError("calls_per_day and used_today cannot be negative")
        if min_interval < 0:
            raise ValueError("min_interval cannot be negative")
        self.calls_per_minute = float(calls_per_minute)
        self.calls_per_day = int(calls_per_day)
        self.used_today = int(used_today)
        self.burst = int(burst)
        self.min_interval = float(min_interval)
        self._clock = clock
        self._sleep = sleep
        self.on_acquire = on_acquire
        self.on_wait = on_wait
        self.interval = 60.0 / self.calls_per_minute + GUARD_SECONDS
        # When the next call would be due if every call so far had been paced evenly;
        # up to `burst - 1` intervals of it may be spent ahead of time.
        self._due = clock()
        self._last_call: float | None = None
        # What the last acquire changed, for refund: (_due, _last_call) before it, _due after.
        self._undo: tuple[float, float | None, float] | None = None
        self._refundable = 0  # calls acquired and not refunded yet: a refund needs one
        self._spent_by_vendor = False
        self._lock = threading.Lock()

    # -- budget ---------------------------------------------------------------------

    def remaining_today(self) -> int | None:
        """Calls left in today's budget, or None when there is no daily cap."""
        if self.calls_per_day == 0:
            return None
        return max(0, self.calls_per_day - self.used_today)

    def _check_budget(self) -> None:
        if self.calls_per_day and self.used_today >= self.calls_per_day:
            raise QuotaExhausted(
                f"the daily API budget is spent ({self.used_today} of {self.calls_per_day} "
                "calls used today); the remaining symbols wait for the next day's run",
                used_today=self.used_today,
                calls_per_day=self.calls_per_day,
            )

    def mark_exhausted(self) -> None:
        """Spend the rest of today's budget: the API itself said the day's limit is hit.

        Fires ``on_acquire(used_today)`` too, so the caller persists the spent budget and
        a later run on the same day makes no call.
        """
        with self._lock:
            self._spent_by_vendor = True  # a refund must not reopen a day the vendor closed
            if self.calls_per_day and self.used_today < self.calls_per_day:
                self.used_today = self.calls_per_day
                if self.on_acquire is not None:
                    self.on_acquire(self.used_today)

    # -- pacing ---------------------------------------------------------------------

    def _wait_needed(self, now: float) -> float:
        allowed = self._due - (self.burst - 1) * self.interval
        if self._last_call is not None and self.min_interval > 0:
            allowed = max(allowed, self._last_call + self.min_interval)
        return max(0.0, allowed - now)

    def peek_wait(self) -> float:
        """Seconds the next ``acquire`` would sleep now (0.0 if a call may go at once).

        Raises ``QuotaExhausted`` when the budget is spent, so a caller that checks the
        time it has left (the Lambda) learns about the budget first.
        """
        with self._lock:
            self._check_budget()
            return self._wait_needed(self._clock())

    def acquire(self) -> float:
        """Wait until one call may go, count it, and return the seconds spent waiting.

        Raises ``QuotaExhausted`` before any waiting when today's budget is spent.
        """
        with self._lock:
            self._check_budget()
            waited = 0.0
            wait = self._wait_needed(self._clock())
            while wait > 0.0:
                if self.on_wait is not None:
                    self.on_wait(wait)
                self._sleep(wait)
                waited += wait
                wait = self._wait_needed(self._clock())
                if wait <= _TOLERANCE:
                    break
            now = self._clock()
            before = (self._due, self._last_call)
            # An idle spell refills the bucket: `_due` never lags behind now.
            self._due = max(self._due, now) + self.interval
            self._last_call = now
            self._undo = (*before, self._due)
            self._refundable += 1
            self.used_today += 1
            if self.on_acquire is not None:
                self.on_acquire(self.used_today)
            return waited

    def refund(self) -> None:
        """Give back the call just acquired: it never reached the server (the connection
        could not be made), so the vendor did not count it. It leaves today's count and
        ``on_acquire`` persists the lowered count; its place in the pace is given back too
        when it was the last call acquired (the next call need not wait for one never
        sent). One refund per acquired call at most; after ``mark_exhausted`` the vendor's
        word stands and no count is given back."""
        with self._lock:
            if self._refundable == 0:
                return
            self._refundable -= 1
            undo, self._undo = self._undo, None
            if undo is not None and undo[2] == self._due:
                self._due, self._last_call = undo[0], undo[1]
            if self._spent_by_vendor or self.used_today == 0:
                return
            self.used_today -= 1
            if self.on_acquire is not None:
                self.on_acquire(self.used_today)
