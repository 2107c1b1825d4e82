"""Ingest from a provider with a whole-market answer (Polygon's grouped daily): plan the
fewest requests from what the lake lacks, and land each session's answer as one raw object.

Two kinds of request bring bars:
- grouped daily: one session, every ticker of the market: one request per missing session;
- per ticker: one ticker, any range: one request per ticker.

A symbol always lacks the newest sessions (its watermark is where it stands), so a grouped
request for each of the last k sessions serves every symbol lacking at most k, and each
symbol lacking more costs one per-ticker request: k + #{gap > k} requests. The cheapest k is
0 or one of the gaps (between two gaps the count only grows with k). A 6-ticker watchlist's
first year is 6 per-ticker requests; the next weekday is 1 grouped request for any number of
tickers. With --tickers ALL every missing session is asked grouped.

Sessions are asked oldest first: a symbol's watermark is the newest bar it has, and a run
that stops early (the Lambda's deadline, a failed request) must leave no hole below it. The
next run goes on from there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import pandas as pd

from marketlake.config import Settings
from marketlake.ingest.landing import (
    BadBatch,
    bad_share,
    judge_bars,
    quarantine_payload,
    quarantine_rejected,
    refuse_batch,
)
from marketlake.ingest.ratelimit import RateLimiter
from marketlake.ingest.report import (
    DEFERRED,
    FAILED,
    FETCHED,
    NO_NEW_BARS,
    UP_TO_DATE,
    IngestObserver,
    IngestReport,
    SymbolResult,
    SymbolStatus,
)
from marketlake.lake import integrity, raw
from marketlake.lake.state import (
    IngestState,
    landed_files,
    load_landed,
    record_landed,
    save_state,
)
from marketlake.providers.base import (
    BeyondPlan,
    Provider,
    QuotaExhausted,
    Retriable,
    UnusablePayload,
)
from marketlake.sessions import sessions_between
from marketlake.storage import ObjectStore

# Before a backfill of at least this many requests, or a minute at the pace, the run says
# what it will ask and how long that takes.
ANNOUNCE_REQUESTS = 5


@dataclasses.dataclass
class RequestPlan:
    grouped: list[dt.date]  # sessions asked for the whole market, oldest first
    per_ticker: list[str]  # symbols asked one by one, each for its whole gap

    @property
    def requests(self) -> int:
        return len(self.grouped) + len(self.per_ticker)


def plan_requests(gaps: Mapping[str, int], sessions: Sequence[dt.date]) -> RequestPlan:
    """The fewest requests that bring every symbol of `gaps` (symbol -> how many of the
    newest `sessions` it lacks, at least 1) up to the last session. Ties go to fewer grouped
    requests: a per-ticker answer is a few rows, a grouped one 10,000."""

    def cost(k: int) -> int:
        return k + sum(1 for gap in gaps.values() if gap > k)

    k = min({0, *gaps.values()}, key=lambda k: (cost(k), k))
    grouped = list(sessions[len(sessions) - k :]) if k else []
    return RequestPlan(grouped, [symbol for symbol, gap in gaps.items() if gap > k])


def window_sessions(settings: Settings, state: IngestState, session: dt.date) -> list[dt.date]:
    """The sessions a symbol should have: the history window, from the plan's edge on when
    the vendor refused older history before."""
    sessions = sessions_between(session - dt.timedelta(days=settings.history_days), session)
    edge = _day(state.plan_edge)
    return [s for s in sessions if edge is None or s >= edge]


def _day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def plan_run(
    settings: Settings,
    state: IngestState,
    wanted: Sequence[str],
    session: dt.date,
    refetch: frozenset[str],
) -> tuple[RequestPlan, list[str]]:
    """(the plan, the wanted symbols already up to date)."""
    window = window_sessions(settings, state, session)
    if settings.whole_market:
        through = _day(state.market_through)
        grouped = [s for s in window if through is None or s > through]
        return RequestPlan(grouped, sorted(refetch)), []
    gaps: dict[str, int] = {}
    current = []
    for symbol in wanted:
        if symbol in refetch:
            continue
        mark = state.watermark(symbol)
        gap = sum(1 for s in window if mark is None or s > mark)
        if gap:
            gaps[symbol] = gap
        else:
            current.append(symbol)
    plan = plan_requests(gaps, window)
    plan.per_ticker = [*sorted(refetch), *plan.per_ticker]
    return plan, current


def describe(plan: RequestPlan, calls_per_minute: float) -> str:
    """What the run will ask, and how long that takes at the configured pace."""
    parts = []
    if plan.grouped:
        first, last = plan.grouped[0], plan.grouped[-1]
        span = f"{first}" if first == last else f"{first} .. {last}"
        parts.append(f"{len(plan.grouped)} grouped-daily (every ticker, {span})")
    if plan.per_ticker:
        parts.append(f"{len(plan.per_ticker)} per-ticker")
    total = plan.requests + 2  # and one (paginated) request each for splits and dividends
    if not calls_per_minute or math.isinf(calls_per_minute):
        pace = "unpaced (POLYGON_CALLS_PER_MINUTE=0)"
    else:
        minutes = max(total - 1, 0) / calls_per_minute
        pace = f"about {_duration(minutes)} at {calls_per_minute:g} a minute"
    return f"{total} requests: {' + '.join(parts) or 'no bars'} + splits + dividends; {pace}"


def _duration(minutes: float) -> str:
    if minutes < 1:
        return f"{minutes * 60:.0f} s"
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


@dataclasses.dataclass
class MarketRun:
    """What one run asks and lands, handed from step to step."""

    settings: Settings
    store: ObjectStore
    state: IngestState
    provider: Any  # a Provider with fetch_grouped (providers.polygon.PolygonProvider)
    report: IngestReport
    observer: IngestObserver
    now: Callable[[], dt.datetime]
    out_of_time: Callable[[float], bool] | None
    limiter: RateLimiter | None
    universe: frozenset[str] | None  # the watchlist; None: every ticker (--tickers ALL)
    # Symbols asked one by one for their whole gap: a grouped answer's newer bars must not
    # land for them (if their own request failed, the gap below would stay a hole).
    asked_alone: frozenset[str] = frozenset()
    # Sessions asked again (--refetch-days): their bars land whatever the watermarks say.
    forced: frozenset[dt.date] = frozenset()
    results: dict[str, SymbolResult] = dataclasses.field(default_factory=dict)

    def next_wait(self) -> float:
        return self.limiter.peek_wait() if self.limiter is not None else 0.0


def ingest_grouped(run: MarketRun, sessions: list[dt.date]) -> list[dt.date]:
    """Ask and land `sessions` oldest first; returns those left for the next run (the
    deadline, the quota, or a session that failed: none after it lands before it does)."""
    cached: dict[dt.date, Any] = {}
    position = 0
    while position < len(sessions):
        session = sessions[position]
        label = f"{session} (every ticker)"
        try:
            if session not in cached:
                if run.out_of_time is not None and run.out_of_time(run.next_wait()):
                    return defer(run, sessions[position:], "time budget of this run spent")
                run.observer.symbol_started(label)
            day = cached.pop(session, None) or run.provider.fetch_grouped(session)
        except BeyondPlan as exc:
            edge = _grouped_edge(run, sessions[position + 1 :], cached)
            _plan_edge(run, exc, sessions[position], edge)
            if edge is None:
                return []
            position = sessions.index(edge)
            continue
        except QuotaExhausted as exc:
            return defer(run, sessions[position:], str(exc))
        except UnusablePayload as exc:
            quarantine_payload(
                run.store, run.report, raw.MARKET_OBJECT + str(session), exc, run.now()
            )
            return defer(run, sessions[position:], f"{session}: {exc.reason}", failed=True)
        except Retriable as exc:
            return defer(run, sessions[position:], f"{session}: {exc}", failed=True)
        try:
            land_market_day(run, day)
        except BadBatch as exc:
            return defer(run, sessions[position:], str(exc), failed=True, quarantined=exc.count)
        through = _day(run.state.market_through)
        if run.settings.whole_market and (through is None or session > through):
            run.state.market_through = session.isoformat()
        save_state(run.store, run.state)
        run.observer.symbol_done(SymbolResult(label, FETCHED))
        position += 1
    return []


def fetch_within_plan(
    provider: Provider,
    state: IngestState,
    symbol: str,
    since: dt.date | None,
    until: dt.date,
    report: IngestReport,
    observer: IngestObserver,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bars, rows it could not parse) of provider.fetch_daily, from the plan's edge when
    one is known; when the plan refuses `since` (BeyondPlan), the first session it serves
    is found by bisection (a plan that serves a day serves every later one), said, kept in
    the state, and the bars from there are returned: history beyond the plan lands up to
    its edge, never in a loop."""
    edge = _day(state.plan_edge)
    if since is not None and edge is not None and since < edge <= until:
        since = edge
    try:
        return provider.fetch_daily(symbol, since, until), provider.last_rejected
    except BeyondPlan as exc:
        refused, first = exc, since
    days = sessions_between(first or until, until)
    days = [d for d in days if first is None or d > first]
    # hi only moves to a day whose answer came: `found` is always the answer for days[hi].
    lo, hi, found = 0, len(days), None
    while lo < hi:
        mid = (lo + hi) // 2
        observer.symbol_started(f"{symbol} from {days[mid]} (looking for the plan's first day)")
        try:
            bars = provider.fetch_daily(symbol, days[mid], until)
        except BeyondPlan:
            lo = mid + 1
        else:
            hi, found = mid, (days[mid], bars, provider.last_rejected)
    where = "serves none of the sessions asked" if found is None else f"starts at {found[0]}"
    if found is not None:
        state.plan_edge = found[0].isoformat()
    message = (
        f"the {provider.name} plan's history {where} (it refused {symbol} from {first}: "
        f"{_words(refused)}); older history needs a bigger plan, or `marketlake import`"
    )
    report.plan_history = message
    observer.event("plan", message)
    if found is None:
        raise refused
    return found[1], found[2]


def _words(exc: BeyondPlan) -> str:
    """The vendor's own words for a refusal (its first sentence), else our message."""
    words = getattr(exc, "vendor_message", "") or str(exc)
    return words.split(". ", 1)[0].rstrip(".")


def _grouped_edge(run: MarketRun, later: list[dt.date], cached: dict) -> dt.date | None:
    """The first of `later` (oldest first) the plan serves, by bisection: a plan that serves
    a day serves every later one. The answers asked on the way are kept for landing."""
    lo, hi = 0, len(later)  # the edge is in later[lo:hi], or there is none (hi == len)
    while lo < hi:
        mid = (lo + hi) // 2
        run.observer.symbol_started(f"{later[mid]} (looking for the plan's first day)")
        try:
            cached[later[mid]] = run.provider.fetch_grouped(later[mid])
        except BeyondPlan:
            lo = mid + 1
        else:
            hi = mid
    return later[lo] if lo < len(later) else None


def _plan_edge(run: MarketRun, exc: BeyondPlan, refused: dt.date, edge: dt.date | None) -> None:
    """Say, once per run and in the state, where the plan's history starts."""
    if edge is not None:
        run.state.plan_edge = edge.isoformat()
        where = f"starts at {edge}: sessions before it were not asked"
    else:
        where = "serves none of the sessions asked"
    message = (
        f"the {run.provider.name} plan's history {where} (it refused {refused}: "
        f"{_words(exc)}); older history needs a bigger plan, or `marketlake import`"
    )
    run.report.plan_history = message
    run.observer.event("plan", message)


def defer(
    run: MarketRun,
    sessions: list[dt.date],
    why: str,
    failed: bool = False,
    quarantined: int = 0,
) -> list[dt.date]:
    run.report.market_waiting = [s.isoformat() for s in sessions]
    run.report.market_why = why
    if failed:
        run.report.market_failed = True
    run.report.market_quarantined += quarantined
    run.observer.event("deferred", f"{len(sessions)} session(s) wait for the next run: {why}")
    return sessions


def land_market_day(run: MarketRun, day) -> int:
    """Land one session's whole-market answer as one raw object: the bars of the universe
    that the lake lacks (after each symbol's watermark), validated; what is impossible, and
    rows the provider could not parse (binary junk in a ticker), in one quarantine object.
    Returns the bars landed."""
    report, state = run.report, run.state
    bars, unparsed = day.bars, day.rejected
    if run.universe is not None:
        keep = run.universe - run.asked_alone
        bars = bars[bars["symbol"].isin(keep)]
        unparsed = unparsed[unparsed["symbol"].isin(keep)]
    if day.session not in run.forced:
        marks = {s: state.watermark(s) for s in pd.unique(bars["symbol"])}
        lacking = [
            marks[s] is None or d > marks[s] for s, d in zip(bars["symbol"], bars["trade_date"])
        ]
        bars = bars[lacking]
    valid, rejected = judge_bars(bars, report)
    # Rows the provider could not parse keep the provider's reason (a ticker of binary junk
    # has numbers that would pass validation).
    rejected = pd.concat([rejected, unparsed], ignore_index=True) if len(unparsed) else rejected
    moment = run.now()
    name = f"{raw.MARKET_OBJECT}{day.session}"
    limit = run.settings.max_bad_row_pct
    if bad_share(valid, rejected) > limit:
        payload = pd.concat([bars.astype(str), unparsed.astype(str)]).to_csv(index=False).encode()
        raise refuse_batch(
            run.store,
            report,
            name,
            valid,
            rejected,
            run.provider.name,
            moment,
            payload,
            f"the answer for {day.session}",
            limit,
        )
    if len(rejected):
        quarantine_rejected(run.store, report, name, rejected, run.provider.name, moment)
        report.market_quarantined += len(rejected)
    if not len(valid):
        return 0
    stamp = raw.format_timestamp(moment)
    frame = raw.bars_to_frame(None, valid, run.provider.name, stamp)
    key = raw.market_key(report.ingest_date, day.session)
    try:
        existing = raw.read_csv(run.store.get_bytes(key))
    except KeyError:
        existing = None
    if existing is not None:  # a second run that day: merge, never lose what landed
        frame = raw.merge(existing, frame)
    data = raw.frame_to_csv(frame)
    digest = run.store.put_bytes(key, data)
    record_landed(run.store, key, data, frame["trade_date"], digest)
    _moved(run, valid, stamp)
    return len(valid)


def _moved(run: MarketRun, valid: pd.DataFrame, stamp: str) -> None:
    """Each symbol's watermark and result, after its bars landed."""
    state, report = run.state, run.report
    day = report.ingest_date.isoformat()
    if state.newest_ingest_date is None or day > state.newest_ingest_date:
        state.newest_ingest_date = day
    elif day < state.newest_ingest_date:
        state.rebuild_needed = True
    for symbol, rows in valid.groupby("symbol", sort=False):
        first, last = rows["trade_date"].iloc[0], rows["trade_date"].iloc[-1]
        entry = state.entry(symbol)
        mark = _day(entry.watermark)
        newest = max(last, mark) if mark else last
        entry.watermark = newest.isoformat()
        entry.source = run.provider.name
        entry.last_ingest = stamp
        result = run.results.get(symbol)
        if result is None:
            result = run.results[symbol] = SymbolResult(symbol, FETCHED, first_date=first)
        result.status = FETCHED
        result.new_bars += len(rows)
        result.first_date = min(result.first_date or first, first)
        result.last_written = max(result.last_written or last, last)
        result.last_date = newest


def refetch_days(run: MarketRun, days: Sequence[dt.date]) -> list[dt.date]:
    """The remedy for a damaged whole-market object (`marketlake ingest --refetch-days D`):
    each such object of those days (a session's bars, a day's splits or dividends) is set
    aside when it is gone or changed, and the days are asked again: the sessions returned
    (every ticker's bars, landed whatever the watermarks say), and splits and dividends from
    the first date the day's objects held."""
    wanted = {d.isoformat() for d in days}
    asked_from = []
    for zone in integrity.RAW_ZONES:
        for _, landed in landed_files(run.store, zone):
            for key, record in load_landed(run.store, landed).items():
                if not raw.is_market_object(key) or integrity.session_of(key) not in wanted:
                    continue
                digest = run.store.digests(key).get(key)
                if integrity.check_raw_object(key, record, digest) is not None:
                    integrity.set_aside(run.store, key)
                if zone != "daily_prices" and record.get("first"):
                    asked_from.append(record["first"])
    if asked_from:
        through = run.state.actions_through
        run.state.actions_through = min([*asked_from, *([through] if through else [])])
    sessions = set(sessions_between(min(days), max(days))) if days else set()
    return sorted(d for d in days if d in sessions and d <= run.report.session)


def settle(run: MarketRun, wanted: Sequence[str], current: Sequence[str]) -> None:
    """The run's word on each symbol that no per-ticker request settled: landed, up to date,
    asked without news, or waiting for the sessions left."""
    report, state = run.report, run.state
    settled = {r.symbol for r in report.results}
    for symbol in current:
        if symbol not in settled:
            report.results.append(
                SymbolResult(symbol, UP_TO_DATE, last_date=state.watermark(symbol))
            )
            settled.add(symbol)
    for symbol, result in sorted(run.results.items()):
        if symbol not in settled:
            report.results.append(result)
            settled.add(symbol)
    if run.universe is None:
        return
    for symbol in wanted:
        if symbol in settled:
            continue
        mark = state.watermark(symbol)
        if report.market_waiting and (mark is None or mark < report.session):
            status: SymbolStatus = FAILED if report.market_failed else DEFERRED
            report.results.append(
                SymbolResult(symbol, status, last_date=mark, message=report.market_why)
            )
        else:
            report.results.append(SymbolResult(symbol, NO_NEW_BARS, last_date=mark))
