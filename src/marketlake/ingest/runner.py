"""Ingest: fetch what each symbol lacks, validate it, land it in the raw zone, move watermarks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Callable, Final, Literal, Protocol

import pandas as pd

from marketlake import fields
from marketlake.config import Settings
from marketlake.errors import MarketlakeError
from marketlake.ingest.ratelimit import RateLimiter
from marketlake.ingest.validate import split_valid
from marketlake.lake import actions, raw
from marketlake.lake.state import (
    LANDED_PREFIX,
    IngestState,
    LakeKind,
    bar_digests,
    load_digests,
    load_landed,
    load_state,
    record_landed,
    save_digests,
    save_state,
)
from marketlake.providers import make_provider
from marketlake.providers.base import (
    Fatal,
    NotOffered,
    Provider,
    QuotaExhausted,
    Retriable,
    UnknownSymbol,
    UnusablePayload,
)
from marketlake.redaction import redact
from marketlake.sessions import (
    CALENDAR_START,
    eastern_date,
    last_closed_session,
    sessions_between,
)
from marketlake.storage import ObjectStore

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
        return sum(r.quarantined for r in self.results)

    def with_status(self, status: SymbolStatus) -> list[SymbolResult]:
        return [r for r in self.results if r.status == status]

    # Corporate actions: rows landed per kind, symbols asked, and why some were not.
    actions_landed: dict = dataclasses.field(default_factory=dict)
    actions_asked: list = dataclasses.field(default_factory=list)
    actions_waiting: list = dataclasses.field(default_factory=list)
    actions_off: str = ""


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
) -> IngestReport:
    """Fetch what each symbol lacks, stalest first. With provider None, the settings'
    provider is made here, with a rate limiter on the ingest state's daily count.

    Alpha Vantage calls go through one rate limiter whose daily count lives in the ingest
    state, so runs on one US/Eastern day together stay within the quota. `out_of_time(wait)`
    (the Lambda's budget) is asked before each symbol with the limiter's next wait; when it
    says yes, the rest are deferred and progress is saved.

    A symbol in `refetch` is asked for its whole window again (history_days), within the
    quota, and every bar of the answer lands: the remedy for a raw object that lost rows.
    """
    observer = observer or QuietObserver()
    state = load_state(store)
    today = eastern_date(now())
    limiter = None
    if provider is None:
        limiter = make_limiter(settings, store, state, today, observer, clock, sleep)
        provider = make_provider(settings, limiter=limiter, on_event=observer.event, sleep=sleep)
    session = last_closed_session(as_of)
    report = IngestReport(provider.name, as_of, session, eastern_date(as_of))
    _claim_lake(state, provider.name, settings)

    refetching = frozenset(refetch)
    wanted = list(dict.fromkeys([*(tickers or settings.tickers), *sorted(refetching)]))
    symbols = _stalest_first(wanted, state)
    started = now()
    used_before = limiter.used_today if limiter is not None else 0
    try:
        _ingest_all(
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
        _ingest_actions(
            settings, store, state, provider, wanted, report, observer, now, out_of_time, limiter
        )
    finally:
        save_state(store, state)
        _log_run(store, state, report, limiter, used_before, started, now(), settings)
    return report


def _ingest_all(
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
    for position, symbol in enumerate(waiting):
        try:
            next_wait = limiter.peek_wait() if limiter is not None else 0.0
        except QuotaExhausted as exc:  # the day's budget was spent before this symbol
            _defer(report, state, waiting[position:], str(exc), observer)
            break
        if out_of_time is not None and out_of_time(next_wait):
            _defer(report, state, waiting[position:], "time budget of this run spent", observer)
            break
        observer.symbol_started(symbol)
        try:
            result = _ingest_symbol(
                settings, store, state, provider, symbol, report, now, symbol in refetch
            )
        except QuotaExhausted as exc:
            _defer(report, state, waiting[position:], str(exc), observer)
            break
        except Fatal:
            save_state(store, state)
            raise
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
            _quarantine_payload(store, report, symbol, exc, now())
            result = SymbolResult(symbol, FAILED, quarantined=1, message=f"{exc.reason}")
        except BadBatch as exc:
            # Too many impossible bars in the answer: nothing of it landed; asked again
            # next run.
            result = SymbolResult(symbol, FAILED, quarantined=exc.count, message=str(exc))
        except MarketlakeError:
            save_state(store, state)
            raise
        except Exception as exc:  # one symbol's failure must not stop the others
            first = redact((str(exc).splitlines() or [""])[0], settings.api_key)
            result = SymbolResult(symbol, FAILED, message=f"{type(exc).__name__}: {first}")
        if result.status != INVALID and symbol in state.symbols:
            state.symbols[symbol].invalid = None
            state.symbols[symbol].invalid_on = None
        state.deferred = [s for s in state.deferred if s != symbol]
        report.results.append(result)
        save_state(store, state)
        observer.symbol_done(result)


INVALID_RETRY_DAYS = 7


def actions_due(settings: Settings, state: IngestState, symbol: str, today: dt.date) -> bool:
    """A symbol's splits and dividends are asked when it is new to them, then every
    MARKETLAKE_ACTIONS_EVERY_DAYS days (0: never)."""
    if settings.actions_every_days <= 0:
        return False
    entry = state.symbols.get(symbol)
    if entry is None or entry.watermark is None or entry.invalid:
        return False  # no bars yet (deferred, failed or refused): nothing to adjust
    if entry.actions_on is None:
        return True
    return (today - dt.date.fromisoformat(entry.actions_on)).days >= settings.actions_every_days


def _ingest_actions(
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
) -> None:
    """Splits and dividends of the symbols that are due, after every symbol's bars: when the
    day's quota is short, bars come first. Two requests a symbol, through the same limiter,
    refusal handling and redaction as the bars. A premium or unknown-function refusal turns
    the feature off for this run (said once); the quota running out leaves the rest due."""
    fetch = provider.fetch_actions
    if fetch is None:
        return
    today = eastern_date(now())
    due = [s for s in symbols if actions_due(settings, state, s, today)]
    for position, symbol in enumerate(due):
        try:
            next_wait = limiter.peek_wait() if limiter is not None else 0.0
            if out_of_time is not None and out_of_time(next_wait):
                raise QuotaExhausted("time budget of this run spent")
            answers = [(kind, fetch(kind.name, symbol, report.session)) for kind in actions.KINDS]
        except QuotaExhausted as exc:
            report.actions_waiting = due[position:]
            observer.event(
                "actions",
                f"splits and dividends of {len(due) - position} symbol(s) wait for the next "
                f"run ({exc})",
            )
            return
        except NotOffered as exc:
            report.actions_off = str(exc)
            report.actions_waiting = due[position:]
            observer.event(
                "actions", f"splits and dividends are off for this run: {exc}; bars are unaffected"
            )
            return
        except (UnknownSymbol, Retriable, UnusablePayload) as exc:
            # This symbol's actions wait for the next run; the others carry on.
            first = redact((str(exc).splitlines() or [""])[0], settings.api_key)
            observer.event("actions", f"{symbol}: splits and dividends not fetched ({first})")
            continue
        moment = now()
        stamp = raw.format_timestamp(moment)
        for kind, rows in answers:
            valid, rejected = actions.judge_actions(kind, rows)
            # An announced event ahead of the last closed session waits until it has passed.
            valid = valid.loc[[d <= report.session for d in valid["date"]]]
            if len(rejected):
                actions.quarantine_actions(
                    store,
                    kind,
                    symbol,
                    rejected,
                    provider.name,
                    report.ingest_date,
                    quarantine_stamp(moment),
                )
            landed = actions.land_actions(
                store, kind, symbol, valid, provider.name, report.ingest_date, stamp
            )
            report.actions_landed[kind.name] = report.actions_landed.get(kind.name, 0) + landed
        state.entry(symbol).actions_on = today.isoformat()
        report.actions_asked.append(symbol)
        save_state(store, state)


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
    """The run's limiter, starting from the calls already made today (persisted)."""
    used = state.used_on(today)

    def persist(count: int) -> None:
        # Saved before each request goes out: a crash never forgets a call it made.
        state.quota_date = today.isoformat()
        state.quota_used = count
        save_state(store, state)

    extra: dict[str, Any] = {}  # unset: the limiter's own clock and sleep
    if clock is not None:
        extra["clock"] = clock
    if sleep is not None:
        extra["sleep"] = sleep
    return RateLimiter(
        calls_per_minute=settings.av_calls_per_minute,
        calls_per_day=settings.av_calls_per_day,
        used_today=used,
        on_acquire=persist,
        on_wait=observer.waiting,
        **extra,
    )


def _stalest_first(symbols: list[str], state: IngestState) -> list[str]:
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


def _quarantine_payload(store, report, symbol, exc, moment: dt.datetime) -> None:
    """A body that could not be used, kept as received (key redacted) with its reason."""
    stamp = raw.format_timestamp(moment).replace(" ", "T").replace(":", "")
    body = {"symbol": symbol, "source": report.provider, "reason": exc.reason}
    store.put_bytes(
        raw.quarantine_key(report.ingest_date, symbol, stamp, "json"),
        (json.dumps(body) + "\n").encode(),
    )
    store.put_bytes(
        raw.quarantine_key(report.ingest_date, symbol, stamp, "payload.txt"),
        (exc.payload or "").encode("utf-8", "replace"),
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


def _ingest_symbol(
    settings: Settings,
    store: ObjectStore,
    state: IngestState,
    provider: Provider,
    symbol: str,
    report: IngestReport,
    now: Callable[[], dt.datetime],
    refetch: bool = False,
) -> SymbolResult:
    watermark = state.watermark(symbol)
    if watermark is None or refetch:
        since = report.session - dt.timedelta(days=settings.history_days)
        if refetch:
            # The symbol's whole window: back to the oldest bar any raw object holds.
            firsts = [r["first"] for _, r in _landed_records(store, symbol) if r.get("first")]
            since = min([since, *(dt.date.fromisoformat(f) for f in firsts)])
    elif provider.resends_history:
        since = None  # compare what it sends again against what landed
    else:
        since = watermark + dt.timedelta(days=1)
    bars = provider.fetch_daily(symbol, since, report.session)
    unparsed = provider.last_rejected
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
        _settle_shortfalls(store, symbol, result)
    return result


class BadBatch(MarketlakeError):
    """One batch (an imported file, one API answer) holds more impossible bars than
    MARKETLAKE_MAX_BAD_ROW_PCT allows: none of it lands, all of it is kept in quarantine."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


def judge_bars(
    bars: pd.DataFrame, report: IngestReport, strict: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid bars, rejected bars with a reason): split_valid, then the NYSE calendar.

    A bar of a session that has not closed is provisional: an API sends it while the market
    is open, so it is dropped without a word; with `strict` (an import, where no such bar is
    expected) it is rejected with the reason, as is a bar dated in the future.
    """
    if not strict and len(bars):
        parsed = [fields.date_or_none(d) for d in bars["trade_date"]]
        # An unparseable date stays: validation rejects it with a reason.
        bars = bars[[d is None or d <= report.session for d in parsed]]
    valid, rejected = split_valid(bars)
    if not len(valid):
        return valid, rejected
    today = eastern_date(report.as_of)
    days = list(valid["trade_date"])
    sessions = set(sessions_between(min(days), max(days)))

    def reason(day: dt.date) -> str:
        if day > today:
            return f"trade_date is in the future (today is {today})"
        if day not in sessions:
            if day.isoformat() < CALENDAR_START:
                return f"trade_date is before {CALENDAR_START}, where the NYSE calendar starts"
            return "trade_date is not an NYSE session (a weekend or a holiday)"
        if day > report.session:
            return f"the session of {day} has not closed yet (last closed: {report.session})"
        return ""

    reasons = pd.Series([reason(d) for d in days], index=valid.index, dtype=object)
    off = reasons != ""
    if off.any():
        held = valid[off].astype(str).assign(reason=reasons[off])
        rejected = pd.concat([rejected, held], ignore_index=True)
        valid = valid[~off].reset_index(drop=True)
    return valid, rejected


def bad_share(valid: pd.DataFrame, rejected: pd.DataFrame) -> float:
    total = len(valid) + len(rejected)
    return 100.0 * len(rejected) / total if total else 0.0


def quarantine_stamp(moment: dt.datetime) -> str:
    return raw.format_timestamp(moment).replace(" ", "T").replace(":", "")


def quarantine_rejected(store, report, symbol, rejected, source, moment) -> str:
    """The rejected bars with their reasons, as one CSV object; returns its key."""
    key = raw.quarantine_key(report.ingest_date, symbol, quarantine_stamp(moment), "csv")
    rejected = rejected.assign(source=source)
    rejected.insert(0, "symbol", symbol)
    store.put_bytes(key, rejected.to_csv(index=False).encode())
    return key


def refuse_batch(
    store, report, symbol, valid, rejected, source, moment, payload: bytes, what: str, limit
) -> BadBatch:
    """Keep the whole batch as received, and its rejected bars with their reasons, in
    quarantine; the error that says so."""
    quarantine_rejected(store, report, symbol, rejected, source, moment)
    key = raw.quarantine_key(report.ingest_date, symbol, quarantine_stamp(moment), "batch.csv")
    store.put_bytes(key, payload)
    count, total = len(rejected), len(valid) + len(rejected)
    return BadBatch(
        f"{what}: {count} of {total} bars ({bad_share(valid, rejected):.3g}%) are impossible, "
        f"more than MARKETLAKE_MAX_BAD_ROW_PCT={limit:g}%, so none of them landed "
        f"(first reason: {rejected['reason'].iloc[0]}); the whole batch is kept in {key}, "
        "the reasons beside it. Fix the data, or raise MARKETLAKE_MAX_BAD_ROW_PCT",
        count,
    )


def land_bars(
    store: ObjectStore,
    state: IngestState,
    symbol: str,
    bars: pd.DataFrame,
    source: str,
    report: IngestReport,
    moment: dt.datetime,
    land_unknown: bool = False,
    strict: bool = False,
    max_bad_pct: float | None = None,
    force: bool = False,
) -> SymbolResult:
    """Validate bars and land what is new or changed; quarantine what is impossible.

    A bar after the watermark is new. A bar at or before it is rewritten only when its
    values differ from the copy stored (known from the symbol's recent-bar digests), or,
    with `land_unknown` (an import of history), when there is no copy on record. With
    `max_bad_pct`, a batch with a larger share of impossible bars lands nothing (BadBatch).
    """
    watermark = state.watermark(symbol)
    valid, rejected = judge_bars(bars, report, strict)
    if max_bad_pct is not None and bad_share(valid, rejected) > max_bad_pct:
        payload = bars.astype(str).to_csv(index=False).encode()
        raise refuse_batch(
            store, report, symbol, valid, rejected, source, moment, payload, symbol, max_bad_pct
        )
    stamp = raw.format_timestamp(moment)
    result = SymbolResult(symbol, NO_NEW_BARS, last_date=watermark)
    if len(rejected):
        rejected = rejected.reset_index(drop=True)
        quarantine_rejected(store, report, symbol, rejected, source, moment)
        result.quarantined = len(rejected)
        result.message = f"{len(rejected)} bar(s) quarantined: {rejected['reason'].iloc[0]}"
    if not len(valid):
        return result

    frame = raw.bars_to_frame(symbol, valid, source, stamp)
    digests = load_digests(store, symbol)

    def is_fresh(day: dt.date, digest: str) -> bool:
        if force or watermark is None or day > watermark:
            return True
        # At or before the watermark: rewrite only a bar on record whose values changed.
        stored = digests.get(day.isoformat())
        if stored is None:
            return land_unknown
        return stored != digest

    fresh = [is_fresh(d, h) for d, h in zip(valid["trade_date"], bar_digests(frame))]
    frame = frame[fresh]
    if not len(frame):
        return result
    _land(store, report.ingest_date, symbol, frame)
    day = report.ingest_date.isoformat()
    if state.newest_ingest_date is None or day > state.newest_ingest_date:
        state.newest_ingest_date = day
    elif day < state.newest_ingest_date:
        state.rebuild_needed = True
    written = valid[fresh]
    digests.update(zip(frame["trade_date"], bar_digests(frame)))
    save_digests(store, symbol, digests)

    newest = written["trade_date"].iloc[-1]
    result.status = FETCHED
    result.new_bars = len(written)
    result.first_date = written["trade_date"].iloc[0]
    result.last_written = newest
    result.last_date = max(newest, watermark) if watermark else newest
    entry = state.entry(symbol)
    entry.watermark = result.last_date.isoformat()
    entry.source = source
    entry.last_ingest = stamp
    return result


def _settle_shortfalls(store: ObjectStore, symbol: str, result: SymbolResult) -> None:
    """After a refetch landed the symbol's window again: a raw object of the symbol that
    lost rows, and whose dates the refetch covered, is recorded as it is now, so builds read
    it again (the refetched copies win over it). One the refetch could not reach back to
    still blocks builds, naming itself."""
    if result.first_date is None:
        return
    covered_from = result.first_date.isoformat()
    for key, record in _landed_records(store, symbol):
        if (record.get("first") or "") >= covered_from:
            try:
                data = store.get_bytes(key)
            except KeyError:
                data = raw.frame_to_csv(pd.DataFrame(columns=raw.RAW_COLUMNS))
            try:
                frame = raw.read_csv(data)
            except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
                continue  # unreadable: left for a restore
            if len(frame) < int(record.get("rows") or 0):
                record_landed(store, key, data, frame["trade_date"])


def _landed_records(store: ObjectStore, symbol: str) -> list:
    """(raw key, what was landed in it) of every raw object of `symbol`."""
    return [
        (key, record)
        for info in store.list_objects(LANDED_PREFIX)
        for key, record in load_landed(store, info.key).items()
        if key.endswith(f"/{symbol}.csv")
    ]


def _land(store: ObjectStore, ingest_date: dt.date, symbol: str, frame: pd.DataFrame) -> None:
    # One object per (day, symbol): a second run that day merges into it instead of
    # replacing it, so bars landed earlier that day are never lost.
    key = raw.raw_key(ingest_date, symbol)
    try:
        existing = raw.read_csv(store.get_bytes(key))
    except KeyError:
        existing = None
    if existing is not None:
        frame = raw.merge(existing, frame)
    data = raw.frame_to_csv(frame)
    store.put_bytes(key, data)
    record_landed(store, key, data, frame["trade_date"])
