"""Quarterly earnings at ingest: which symbols are due, and asking, judging and landing them
after every symbol's bars and its splits and dividends (runner.run_ingest calls
ingest_earnings). The raw layout, the checks and the landing rules are lake/earnings.py's."""

from __future__ import annotations

import datetime as dt
from typing import Callable

import pandas as pd

from marketlake.config import Settings
from marketlake.ingest.corporate import asked_due
from marketlake.ingest.landing import quarantine_stamp
from marketlake.ingest.ratelimit import RateLimiter
from marketlake.ingest.report import IngestObserver, IngestReport
from marketlake.lake import earnings, integrity, raw
from marketlake.lake.state import IngestState, save_state
from marketlake.providers.base import (
    BeyondPlan,
    NotOffered,
    Provider,
    QuotaExhausted,
    Retriable,
    UnknownSymbol,
    UnusablePayload,
)
from marketlake.redaction import redact
from marketlake.sessions import eastern_date
from marketlake.storage import ObjectStore

# What a run says, once, when its provider has no earnings to ask.
NOT_OFFERED = (
    "not offered by {name}; import them with `marketlake import --earnings FILE` "
    "or use Alpha Vantage"
)


def earnings_due(settings: Settings, state: IngestState, symbol: str, today: dt.date) -> bool:
    """A symbol's earnings are asked on the splits' and dividends' cadence: when it is new to
    them, then every MARKETLAKE_ACTIONS_EVERY_DAYS days (0: never). Kept in a field of their
    own, so a refusal of one leaves the other's schedule alone."""
    return asked_due(settings, state, symbol, today, "earnings_on")


def ingest_earnings(
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
    refetch: frozenset[str] = frozenset(),
) -> None:
    """Earnings of the symbols that are due (and of those refetched whose earnings object is
    damaged), after every symbol's bars: when the day's quota is short, bars come first. One
    request a symbol, through the same limiter, refusal handling and redaction as the bars.
    A premium or unknown-function refusal turns earnings off for this run (said once), not
    splits and dividends; the quota running out leaves the rest due."""
    if settings.actions_every_days <= 0:
        return
    fetch = getattr(provider, "fetch_earnings", None)
    if fetch is None:
        report.earnings_off = NOT_OFFERED.format(name=provider.name)
        return
    today = eastern_date(now())
    due = [
        s
        for s in symbols
        if earnings_due(settings, state, s, today) or (s in refetch and _damaged(store, s))
    ]
    cap = getattr(provider, "earnings_per_run", 0)
    if cap and len(due) > cap:
        # One request a symbol (Polygon's financials): those refetched first, then the
        # least recently tried, so runs take turns through a long list; the rest stay due.
        due.sort(key=lambda s: (s not in refetch, _tried_on(state, s), s))
        report.earnings_waiting = due[cap:]
        observer.event(
            "earnings",
            f"earnings of {len(due) - cap} symbol(s) wait for the next run "
            f"({provider.name} is asked for {cap} a run; POLYGON_EARNINGS_PER_RUN)",
        )
        due = due[:cap]
    # Alpha Vantage's EPS are restated for every split up to the fetch: on the basis of the
    # day they are fetched (today, not report.session: a backfill --as-of a past day still
    # gets today's restated numbers).
    basis = today if getattr(provider, "restates_earnings", False) else None
    for position, symbol in enumerate(due):
        try:
            next_wait = limiter.peek_wait() if limiter is not None else 0.0
            if out_of_time is not None and out_of_time(next_wait):
                raise QuotaExhausted("time budget of this run spent")
            rows = fetch(symbol, report.session)
        except QuotaExhausted as exc:
            report.earnings_waiting = due[position:] + report.earnings_waiting
            observer.event(
                "earnings",
                f"earnings of {len(due) - position} symbol(s) wait for the next run ({exc})",
            )
            return
        except (NotOffered, BeyondPlan) as exc:
            # The key cannot ask for them (Polygon's 403s: not entitled, or "this data
            # timeframe"): asking the next symbol would be refused the same way.
            report.earnings_off = (
                f"off for this run: {exc}; bars, splits and dividends are unaffected"
            )
            report.earnings_waiting = due[position:] + report.earnings_waiting
            observer.event("earnings", f"earnings are {report.earnings_off}")
            return
        except (UnknownSymbol, Retriable, UnusablePayload) as exc:
            # This symbol's earnings wait for the next run (still due, tried today); the
            # others carry on.
            first = redact((str(exc).splitlines() or [""])[0], settings.api_key)
            observer.event("earnings", f"{symbol}: earnings not fetched ({first})")
            state.entry(symbol).earnings_tried = today.isoformat()
            save_state(store, state)
            continue
        _land(store, provider.name, symbol, rows, report, now(), basis)
        state.entry(symbol).earnings_on = today.isoformat()
        state.entry(symbol).earnings_tried = today.isoformat()
        report.earnings_asked.append(symbol)
        save_state(store, state)


def _land(
    store: ObjectStore,
    source: str,
    symbol: str,
    rows: pd.DataFrame,
    report: IngestReport,
    moment: dt.datetime,
    basis: dt.date | None,
) -> None:
    if not len(rows):
        report.earnings_none.append(symbol)  # no quarter at all (a fund): nothing to land
    judged = earnings.judge(rows)
    valid = judged.valid
    # Held back, not quarantined: a report dated after the last closed session is not bad
    # data (a fetch as of an earlier day); it lands from the first fetch after it, and until
    # then no build can use it early.
    ahead = [day > report.session for day in valid["reported"]]
    if any(ahead):
        report.earnings_held += sum(ahead)
        valid = valid.loc[[not a for a in ahead]]
    report.earnings_unreported += judged.unreported
    rejected = judged.rejected
    on_record = earnings.of_source(earnings.current(store, symbol), source)
    near = earnings.near_quarters(valid, on_record["fiscal"])
    if len(near):
        # One quarter under two dates (the vendor's and one on record): neither lands.
        valid = valid[~valid["fiscal"].astype(str).isin(set(near["fiscal_date_ending"]))]
        rejected = pd.concat([rejected, near], ignore_index=True)
    if len(rejected):
        earnings.quarantine(
            store,
            symbol,
            rejected,
            source,
            report.ingest_date,
            quarantine_stamp(moment),
        )
        report.earnings_quarantined += len(rejected)
    report.earnings_landed += earnings.land(
        store,
        symbol,
        valid,
        source,
        report.ingest_date,
        raw.format_timestamp(moment),
        basis=basis,
    )


def _tried_on(state: IngestState, symbol: str) -> str:
    """When `symbol`'s earnings were last asked, answered or not ("" for never; a state from
    before earnings_tried has only earnings_on): ISO days sort by date."""
    entry = state.symbols.get(symbol)
    if entry is None:
        return ""
    return entry.earnings_tried or entry.earnings_on or ""


def _damaged(store: ObjectStore, symbol: str) -> bool:
    return bool(integrity.damaged_objects(store, earnings.EARNINGS.prefix, symbol))
