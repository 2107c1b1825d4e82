"""What an ingest run reports: each symbol's status and counts, and the observer hooks a
display follows the run with."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final, Literal, Protocol

# Statuses of one symbol in a run.
SymbolStatus = Literal["fetched", "up_to_date", "no_new_bars", "invalid", "deferred", "failed"]
FETCHED: Final = "fetched"  # new or changed bars landed
UP_TO_DATE: Final = "up_to_date"  # watermark at the last closed session: no request made
NO_NEW_BARS: Final = "no_new_bars"  # asked, but the provider had nothing new
INVALID: Final = "invalid"  # the provider does not know the symbol: skipped, noted in state
DEFERRED: Final = "deferred"  # the day's quota or time budget ran out: first in line next run
FAILED: Final = "failed"  # transport or payload trouble after retries: tried again next run


@dataclasses.dataclass
class SymbolResult:
    symbol: str
    status: SymbolStatus
    new_bars: int = 0
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    quarantined: int = 0
    message: str = ""
    last_written: dt.date | None = None  # newest bar landed (last_date: the watermark)


@dataclasses.dataclass
class IngestReport:
    provider: str
    as_of: dt.datetime
    session: dt.date  # the last closed session at as_of: nothing later is stored
    ingest_date: dt.date
    results: list[SymbolResult] = dataclasses.field(default_factory=list)

    @property
    def new_bars(self) -> int:
        return sum(r.new_bars for r in self.results)

    @property
    def quarantined(self) -> int:
        return sum(r.quarantined for r in self.results) + self.market_quarantined

    def with_status(self, status: SymbolStatus) -> list[SymbolResult]:
        return [r for r in self.results if r.status == status]

    # Corporate actions: rows landed per kind, symbols asked, and why some were not; rows
    # held back per kind (dated after the last closed session: fetched again once effective)
    # and quarantined per kind (unreadable, or one date given with different values).
    actions_landed: dict = dataclasses.field(default_factory=dict)
    actions_held: dict = dataclasses.field(default_factory=dict)
    actions_quarantined: dict = dataclasses.field(default_factory=dict)
    actions_asked: list = dataclasses.field(default_factory=list)
    actions_waiting: list = dataclasses.field(default_factory=list)
    actions_off: str = ""
    actions_market: str = ""  # asked market-wide (Polygon), from this day on
    # Earnings (ingest/earnings.py): quarters landed (new or changed), held back (reported
    # after the last closed session), quarantined, and listed without an EPS ("None": not
    # reported yet, counted only); the symbols asked, those whose answer had no quarter at
    # all, those left for the next run, and why earnings are off (a refusal, a provider
    # that offers none).
    earnings_landed: int = 0
    earnings_held: int = 0
    earnings_quarantined: int = 0
    earnings_unreported: int = 0
    earnings_asked: list = dataclasses.field(default_factory=list)
    earnings_none: list = dataclasses.field(default_factory=list)
    earnings_waiting: list = dataclasses.field(default_factory=list)
    earnings_off: str = ""
    # A whole-market provider (Polygon): the sessions whose grouped answer waits for the next
    # run and why (failed: a request failed, not the clock or the quota), rows quarantined
    # from grouped answers, and where the plan's history starts when it refused older days.
    market_waiting: list = dataclasses.field(default_factory=list)
    market_why: str = ""
    market_failed: bool = False
    market_quarantined: int = 0
    plan_history: str = ""
    requests: int = 0  # HTTP requests the provider sent (its own count), when it keeps one


class IngestObserver(Protocol):
    """Hooks for progress display (the CLI's bar); any class with these methods is one, so
    a caller need not import ingest to make one. QuietObserver does nothing."""

    def started(self, total: int) -> None:
        """How many symbols the run settles."""

    def symbol_started(self, symbol: str) -> None:
        """A request for `symbol` is about to go out."""

    def symbol_done(self, result: SymbolResult) -> None:
        """`symbol` is settled, with or without a request."""

    def waiting(self, seconds: float) -> None:
        """The rate limiter is about to sleep."""

    def event(self, kind: str, message: str) -> None:
        """Something the user should read (a retry, a fallback to compact)."""


class QuietObserver(IngestObserver):
    """The observer of a run nobody watches: every hook does nothing."""

    def started(self, total: int) -> None:
        return None

    def symbol_started(self, symbol: str) -> None:
        return None

    def symbol_done(self, result: SymbolResult) -> None:
        return None

    def waiting(self, seconds: float) -> None:
        return None

    def event(self, kind: str, message: str) -> None:
        return None
