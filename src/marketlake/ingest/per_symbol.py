"""Providers asked one symbol at a time (Alpha Vantage; Polygon's per-ticker requests):
settle what needs no request, then ask for each symbol in turn, stalest first, each one's
trouble settling that symbol while the run goes on."""

from __future__ import annotations

import datetime as dt
from typing import Callable

import pandas as pd

from marketlake.config import Settings
from marketlake.errors import MarketlakeError
from marketlake.ingest import market
from marketlake.ingest.landing import (
    BadBatch,
    land_bars,
    landed_records,
    quarantine_payload,
    settle_shortfalls,
)
from marketlake.ingest.ratelimit import RateLimiter
from marketlake.ingest.report import (
    DEFERRED,
    FAILED,
    INVALID,
    UP_TO_DATE,
    IngestObserver,
    IngestReport,
    QuietObserver,
    SymbolResult,
)
from marketlake.lake.state import IngestState, save_state
from marketlake.providers.base import (
    BeyondPlan,
    Provider,
    QuotaExhausted,
    Retriable,
    UnknownSymbol,
    UnusablePayload,
)
from marketlake.redaction import redact
from marketlake.sessions import eastern_date
from marketlake.storage import ObjectStore


def ingest_each(
    settings: Settings,
    store: ObjectStore,
    state: IngestState,
    provider: Provider,
    symbols: list[str],
    report: IngestReport,
    observer: IngestObserver,
    now: Callable[[], dt.datetime],
    out_of_time: Callable[[float], bool] | None,
    limiter: RateLimiter | None,
    refetch: frozenset[str],
) -> None:
    observer.started(len(symbols))
    today = eastern_date(now())
    # Symbols that need no request are settled first: only the rest can be deferred.
    waiting = []
    for symbol in symbols:
        watermark = state.watermark(symbol)
        known_invalid = _still_invalid(state, symbol, today)
        if symbol in refetch:
            waiting.append(symbol)
            continue
        if watermark is not None and watermark >= report.session:
            result = SymbolResult(symbol, UP_TO_DATE, last_date=watermark)
        elif known_invalid:
            # Refused recently: asking again would spend a request of the day's few.
            result = SymbolResult(symbol, INVALID, message=known_invalid)
        else:
            waiting.append(symbol)
            continue
        state.deferred = [s for s in state.deferred if s != symbol]
        report.results.append(result)
        observer.symbol_done(result)
    ask_each(
        settings,
        store,
        state,
        provider,
        waiting,
        report,
        observer,
        now,
        out_of_time,
        limiter,
        refetch,
    )


def ask_each(
    settings: Settings,
    store: ObjectStore,
    state: IngestState,
    provider: Provider,
    waiting: list[str],
    report: IngestReport,
    observer: IngestObserver,
    now: Callable[[], dt.datetime],
    out_of_time: Callable[[float], bool] | None,
    limiter: RateLimiter | None,
    refetch: frozenset[str],
) -> str:
    """Ask for each symbol in turn and settle it; returns why the rest were deferred (the
    quota, the time budget), or "" when every symbol was asked."""
    today = eastern_date(now())
    for position, symbol in enumerate(waiting):
        try:
            next_wait = limiter.peek_wait() if limiter is not None else 0.0
        except QuotaExhausted as exc:  # the day's budget was spent before this symbol
            _defer(report, state, waiting[position:], str(exc), observer)
            return str(exc)
        if out_of_time is not None and out_of_time(next_wait):
            why = "time budget of this run spent"
            _defer(report, state, waiting[position:], why, observer)
            return why
        observer.symbol_started(symbol)
        try:
            result = ingest_symbol(
                settings, store, state, provider, symbol, report, now, symbol in refetch, observer
            )
        except QuotaExhausted as exc:
            _defer(report, state, waiting[position:], str(exc), observer)
            return str(exc)
        except BeyondPlan as exc:
            # Not even the newest sessions are in the plan: asking again will not help.
            result = SymbolResult(symbol, FAILED, message=str(exc))
        except UnknownSymbol as exc:
            entry = state.entry(symbol)
            entry.invalid = str(exc)
            entry.invalid_on = today.isoformat()
            result = SymbolResult(symbol, INVALID, message=str(exc))
        except Retriable as exc:
            # Transport trouble or throttling after every retry: this symbol waits for the
            # next run, the others carry on.
            result = SymbolResult(symbol, FAILED, message=str(exc))
        except UnusablePayload as exc:
            quarantine_payload(store, report, symbol, exc, now())
            result = SymbolResult(symbol, FAILED, quarantined=1, message=f"{exc.reason}")
        except BadBatch as exc:
            # Too many impossible bars in the answer: nothing of it landed; asked again
            # next run.
            result = SymbolResult(symbol, FAILED, quarantined=exc.count, message=str(exc))
        except MarketlakeError:
            # Not this symbol's trouble: a bad key (Fatal), the lake refusing a read or a
            # write (LakeUnreachable), a setting. run_ingest saves what it can and stops.
            raise
        except Exception as exc:  # one symbol's own failure must not stop the others
            first = redact((str(exc).splitlines() or [""])[0], settings.api_key)
            result = SymbolResult(symbol, FAILED, message=f"{type(exc).__name__}: {first}")
        if result.status != INVALID and symbol in state.symbols:
            state.symbols[symbol].invalid = None
            state.symbols[symbol].invalid_on = None
        state.deferred = [s for s in state.deferred if s != symbol]
        report.results.append(result)
        save_state(store, state)
        observer.symbol_done(result)
    return ""


INVALID_RETRY_DAYS = 7


def _still_invalid(state: IngestState, symbol: str, today: dt.date) -> str | None:
    """The provider's refusal, if it came less than a week ago (then it is asked again)."""
    entry = state.symbols.get(symbol)
    if entry is None or not entry.invalid or not entry.invalid_on:
        return None
    since = today - dt.date.fromisoformat(entry.invalid_on)
    if since.days >= INVALID_RETRY_DAYS:
        return None
    return (
        f"{entry.invalid} (refused on {entry.invalid_on}; "
        f"asked again after {INVALID_RETRY_DAYS} days)"
    )


def stalest_first(symbols: list[str], state: IngestState) -> list[str]:
    """Deferred symbols first, then by watermark (never fetched first); ties keep order."""
    deferred = set(state.deferred)

    def rank(item: tuple[int, str]) -> tuple:
        position, symbol = item
        mark = state.watermark(symbol)
        return (symbol not in deferred, mark or dt.date.min, position)

    return [symbol for _, symbol in sorted(enumerate(symbols), key=rank)]


def _defer(
    report: IngestReport,
    state: IngestState,
    symbols: list[str],
    why: str,
    observer: IngestObserver,
) -> None:
    for symbol in symbols:
        result = SymbolResult(symbol, DEFERRED, message=why)
        report.results.append(result)
        observer.symbol_done(result)
    state.deferred = list(dict.fromkeys([*symbols, *state.deferred]))


def ingest_symbol(
    settings: Settings,
    store: ObjectStore,
    state: IngestState,
    provider: Provider,
    symbol: str,
    report: IngestReport,
    now: Callable[[], dt.datetime],
    refetch: bool = False,
    observer: IngestObserver | None = None,
) -> SymbolResult:
    watermark = state.watermark(symbol)
    if watermark is None or refetch:
        since = report.session - dt.timedelta(days=settings.history_days)
        if refetch:
            # The symbol's whole window: back to the oldest bar any raw object holds.
            firsts = [r["first"] for _, r in landed_records(store, symbol) if r.get("first")]
            since = min([since, *(dt.date.fromisoformat(f) for f in firsts)])
    elif provider.resends_history:
        since = None  # compare what it sends again against what landed
    else:
        since = watermark + dt.timedelta(days=1)
    bars, unparsed = market.fetch_within_plan(
        provider, state, symbol, since, report.session, report, observer or QuietObserver()
    )
    if len(unparsed):
        # Rows the parser could not read go through validation too, and so to quarantine.
        bars = pd.concat([bars.astype(object), unparsed[bars.columns].astype(object)])
    result = land_bars(
        store,
        state,
        symbol,
        bars,
        provider.name,
        report,
        now(),
        max_bad_pct=settings.max_bad_row_pct,
        force=refetch,
    )
    if refetch:
        settle_shortfalls(store, symbol, result)
    return result
