"""Ingest: fetch what each symbol lacks, validate it, land it in the raw zone, move watermarks.

A symbol's own trouble (a refusal, a bad answer, transport errors after retries) settles that
symbol and the run goes on; the lake refusing the run (LakeUnreachable), a bad key, or the
provider's server unreachable on the run's first request (ServerUnreachable) stops it, loudly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from typing import Any, Callable

from marketlake.config import Settings
from marketlake.errors import MarketlakeError
from marketlake.ingest import market, market_actions
from marketlake.ingest.corporate import actions_due, ingest_actions
from marketlake.ingest.earnings import ingest_earnings
from marketlake.ingest.landing import (
    BadBatch,
    bad_share,
    judge_bars,
    land_bars,
    quarantine_rejected,
    quarantine_stamp,
    refuse_batch,
)
from marketlake.ingest.per_symbol import ask_each, ingest_each, stalest_first
from marketlake.ingest.ratelimit import RateLimiter
from marketlake.ingest.report import (
    DEFERRED,
    FAILED,
    FETCHED,
    INVALID,
    NO_NEW_BARS,
    UP_TO_DATE,
    IngestObserver,
    IngestReport,
    QuietObserver,
    SymbolResult,
    SymbolStatus,
)
from marketlake.lake import universe
from marketlake.lake.state import IngestState, LakeKind, load_state, save_state
from marketlake.providers import make_provider
from marketlake.providers.base import Provider, ServerUnreachable
from marketlake.sessions import eastern_date, last_closed_session
from marketlake.storage import ObjectStore

# What other modules import from here, as before the landing and report code moved out.
__all__ = [
    "DEFERRED",
    "FAILED",
    "FETCHED",
    "INVALID",
    "NO_NEW_BARS",
    "UP_TO_DATE",
    "BadBatch",
    "IngestObserver",
    "IngestReport",
    "QuietObserver",
    "SymbolResult",
    "SymbolStatus",
    "actions_due",
    "bad_share",
    "judge_bars",
    "lake_kind",
    "land_bars",
    "make_limiter",
    "quarantine_rejected",
    "quarantine_stamp",
    "refuse_batch",
    "run_ingest",
]


def lake_kind(provider_name: str) -> LakeKind:
    return "synthetic" if provider_name == "synthetic" else "market"


def run_ingest(
    settings: Settings,
    store: ObjectStore,
    provider: Provider | None,
    as_of: dt.datetime,
    tickers: Sequence[str] | None = None,
    observer: IngestObserver | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    out_of_time: Callable[[float], bool] | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    refetch: Sequence[str] = (),
    refetch_days: Sequence[dt.date] = (),
) -> IngestReport:
    """Fetch what each symbol lacks, stalest first. With provider None, the settings'
    provider is made here, with a rate limiter on the ingest state's daily count.

    Alpha Vantage calls go through one rate limiter whose daily count lives in the ingest
    state, so runs on one US/Eastern day together stay within the quota. `out_of_time(wait)`
    (the Lambda's budget) is asked before each symbol with the limiter's next wait; when it
    says yes, the rest are deferred and progress is saved.

    A symbol in `refetch` is asked for its whole window again (history_days), within the
    quota, and every bar of the answer lands: the remedy for a raw object that lost rows.
    A day in `refetch_days` is asked again market-wide (a provider with a whole-market
    answer): the remedy for a damaged whole-market object.
    """
    observer = observer or QuietObserver()
    state = load_state(store)
    # Without tickers given, the lake's own (lake/universe.py); settings.whole_market and
    # the market planner read settings.tickers.
    own = universe.run_tickers(settings, state)
    if own != settings.tickers:
        settings = dataclasses.replace(settings, tickers=own)
    today = eastern_date(now())
    limiter = None
    if provider is None:
        limiter = make_limiter(settings, store, state, today, observer, clock, sleep)
        provider = make_provider(settings, limiter=limiter, on_event=observer.event, sleep=sleep)
    session = last_closed_session(as_of)
    report = IngestReport(provider.name, as_of, session, eastern_date(as_of))
    unclaimed = state.lake_kind is None
    _claim_lake(state, provider.name, settings)
    universe.claim(state, tickers or settings.tickers)

    refetching = frozenset(refetch)
    wanted = list(dict.fromkeys([*(tickers or settings.tickers), *sorted(refetching)]))
    symbols = stalest_first(wanted, state)
    started = now()
    used_before = limiter.used_today if limiter is not None else 0
    if refetch_days and not hasattr(provider, "fetch_grouped"):
        raise MarketlakeError(
            f"--refetch-days asks whole-market answers again, which {provider.name} does not "
            "give; use the polygon provider (--provider polygon with POLYGON_API_KEY)"
        )
    try:
        if hasattr(provider, "fetch_grouped"):
            _ingest_market(
                settings,
                store,
                state,
                provider,
                symbols,
                report,
                observer,
                now,
                out_of_time,
                limiter,
                refetching,
                refetch_days,
            )
            # Per ticker, after every bar: at most POLYGON_EARNINGS_PER_RUN symbols a run;
            # for the whole market, of every ticker the lake holds bars of.
            ingest_earnings(
                settings,
                store,
                state,
                provider,
                universe.held(state) if settings.whole_market else symbols,
                report,
                observer,
                now,
                out_of_time,
                limiter,
                refetching,
            )
            return _finish(store, state, report, limiter, used_before, started, now, settings)
        ingest_each(
            settings,
            store,
            state,
            provider,
            symbols,
            report,
            observer,
            now,
            out_of_time,
            limiter,
            refetching,
        )
        ingest_actions(
            settings,
            store,
            state,
            provider,
            wanted,
            report,
            observer,
            now,
            out_of_time,
            limiter,
            refetching,
        )
        ingest_earnings(
            settings,
            store,
            state,
            provider,
            wanted,
            report,
            observer,
            now,
            out_of_time,
            limiter,
            refetching,
        )
    except BaseException as exc:
        # The run stops (the lake refused it, the key is bad, an interrupt). Keep what it
        # learned, the requests spent above all, if the lake still takes it; a refusal of
        # that too must not hide the error that stopped the run.
        if isinstance(exc, ServerUnreachable) and unclaimed:
            # Nothing was fetched: the lake is not this provider's yet (another may start it).
            state.lake_kind = None
        with contextlib.suppress(Exception):
            save_state(store, state)
        with contextlib.suppress(Exception):
            _log_run(store, state, report, limiter, used_before, started, now(), settings)
        raise
    return _finish(store, state, report, limiter, used_before, started, now, settings)


def _finish(store, state, report, limiter, used_before, started, now, settings) -> IngestReport:
    save_state(store, state)
    _log_run(store, state, report, limiter, used_before, started, now(), settings)
    return report


def _ingest_market(
    settings: Settings,
    store: ObjectStore,
    state: IngestState,
    provider: Provider,
    wanted: list[str],
    report: IngestReport,
    observer: IngestObserver,
    now: Callable[[], dt.datetime],
    out_of_time: Callable[[float], bool] | None,
    limiter: RateLimiter | None,
    refetch: frozenset[str],
    refetch_days: Sequence[dt.date] = (),
) -> None:
    """A provider with a whole-market answer (ingest.market): the fewest requests, grouped
    sessions landed one object each, splits and dividends asked market-wide."""
    if settings.whole_market:  # every ticker the answers list: none named but those refetched
        wanted = sorted(refetch)
    plan, current = market.plan_run(settings, state, wanted, report.session, refetch)
    run = market.MarketRun(
        settings,
        store,
        state,
        provider,
        report,
        observer,
        now,
        out_of_time,
        limiter,
        None if settings.whole_market else frozenset(wanted),
        frozenset(plan.per_ticker),
    )
    again = market.refetch_days(run, refetch_days)
    run.forced = frozenset(again)
    plan.grouped = sorted({*plan.grouped, *again})
    pace = limiter.calls_per_minute if limiter is not None else math.inf
    if plan.requests >= market.ANNOUNCE_REQUESTS:
        observer.event("plan", market.describe(plan, pace))
    observer.started(plan.requests + (2 if market_actions.actions_since(run) is not None else 0))
    stopped = ask_each(
        settings,
        store,
        state,
        provider,
        plan.per_ticker,
        report,
        observer,
        now,
        out_of_time,
        limiter,
        refetch,
    )
    if stopped:
        market.defer(run, plan.grouped, stopped)
    else:
        market.ingest_grouped(run, plan.grouped)
    market.settle(run, wanted, current)
    market_actions.ingest_market_actions(run)
    report.requests = getattr(provider, "requests_made", 0)


def _log_run(
    store: ObjectStore,
    state: IngestState,
    report: IngestReport,
    limiter: RateLimiter | None,
    used_before: int,
    started: dt.datetime,
    finished: dt.datetime,
    settings: Settings,
) -> None:
    """One row in audit/ingest_runs per run, for the pipeline-health dashboard."""
    from marketlake.lake.audit import new_run_id, write_ingest_run

    def count(status: SymbolStatus) -> int:
        return len(report.with_status(status))

    write_ingest_run(
        store,
        {
            "run_id": new_run_id(started),
            "started_at": started,
            "finished_at": finished,
            "provider": report.provider,
            "session": report.session,
            "requests_used": (limiter.used_today - used_before) if limiter is not None else 0,
            "quota_date": dt.date.fromisoformat(state.quota_date) if state.quota_date else None,
            "quota_used": state.quota_used,
            "calls_per_day": settings.av_calls_per_day if report.provider == "alphavantage" else 0,
            "new_bars": report.new_bars,
            "fetched": count(FETCHED),
            "up_to_date": count(UP_TO_DATE) + count(NO_NEW_BARS),
            "deferred": count(DEFERRED),
            "invalid": count(INVALID),
            "failed": count(FAILED),
            "quarantined": report.quarantined,
        },
    )


def make_limiter(
    settings: Settings,
    store: ObjectStore,
    state: IngestState,
    today: dt.date,
    observer: IngestObserver,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> RateLimiter:
    """The run's limiter, starting from the calls already made today (persisted). Polygon
    has no daily cap: its limiter only paces (POLYGON_CALLS_PER_MINUTE, 0 for none), and
    the calls are not persisted one by one (a PUT per request for a count nothing caps)."""
    used = state.used_on(today)
    extra: dict[str, Any] = {}  # unset: the limiter's own clock and sleep
    if clock is not None:
        extra["clock"] = clock
    if sleep is not None:
        extra["sleep"] = sleep
    if settings.provider == "polygon":
        return RateLimiter(
            calls_per_minute=settings.polygon_calls_per_minute or math.inf,
            calls_per_day=0,
            used_today=used,
            on_wait=observer.waiting,
            **extra,
        )

    def persist(count: int) -> None:
        # Saved before each request goes out: a crash never forgets a call it made.
        state.quota_date = today.isoformat()
        state.quota_used = count
        save_state(store, state)

    return RateLimiter(
        calls_per_minute=settings.av_calls_per_minute,
        calls_per_day=settings.av_calls_per_day,
        used_today=used,
        on_acquire=persist,
        on_wait=observer.waiting,
        **extra,
    )


def _claim_lake(state: IngestState, provider_name: str, settings: Settings) -> None:
    kind = lake_kind(provider_name)
    if state.lake_kind is None:
        state.lake_kind = kind
    elif state.lake_kind != kind:
        raise MarketlakeError(
            f"the lake at {settings.home} holds {state.lake_kind} data and {provider_name} "
            f"would mix in {kind} data; point MARKETLAKE_HOME (or --home) at another directory"
        )
