"""Splits and dividends at ingest: which symbols are due, and asking, judging and landing
them after every symbol's bars (runner.run_ingest calls ingest_actions)."""

from __future__ import annotations

import datetime as dt
from typing import Callable

from marketlake.config import Settings
from marketlake.ingest.landing import quarantine_stamp
from marketlake.ingest.ratelimit import RateLimiter
from marketlake.ingest.report import IngestObserver, IngestReport
from marketlake.lake import actions, integrity, raw
from marketlake.lake.state import IngestState, save_state
from marketlake.providers.base import (
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


def actions_due(settings: Settings, state: IngestState, symbol: str, today: dt.date) -> bool:
    """A symbol's splits and dividends are asked when it is new to them, then every
    MARKETLAKE_ACTIONS_EVERY_DAYS days (0: never)."""
    return asked_due(settings, state, symbol, today, "actions_on")


def asked_due(
    settings: Settings, state: IngestState, symbol: str, today: dt.date, asked_on: str
) -> bool:
    """Whether a symbol with bars is due for what its state field `asked_on` dates: never
    asked, or asked MARKETLAKE_ACTIONS_EVERY_DAYS days ago or more (0: never)."""
    if settings.actions_every_days <= 0:
        return False
    entry = state.symbols.get(symbol)
    if entry is None or entry.watermark is None or entry.invalid:
        return False  # no bars yet (deferred, failed or refused): nothing to adjust
    last = getattr(entry, asked_on)
    if last is None:
        return True
    return (today - dt.date.fromisoformat(last)).days >= settings.actions_every_days


def ingest_actions(
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
    """Splits and dividends of the symbols that are due (and of those refetched whose
    splits or dividends object is damaged: a refetch is the remedy for those too), after
    every symbol's bars: when the day's quota is short, bars come first. Two requests a
    symbol, through the same limiter, refusal handling and redaction as the bars. A premium
    or unknown-function refusal turns the feature off for this run (said once); the quota
    running out leaves the rest due."""
    fetch = provider.fetch_actions
    if fetch is None:
        return
    today = eastern_date(now())
    due = [
        s
        for s in symbols
        if actions_due(settings, state, s, today) or (s in refetch and _damaged(store, s))
    ]
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
            # Held back, not quarantined: an announced event ahead of the last closed session
            # (Alpha Vantage's DIVIDENDS lists declared ex-dates) is not bad data; it lands
            # from the first fetch after it has gone ex, and until then it is not in raw, so
            # no build can apply it early.
            ahead = [d > report.session for d in valid["date"]]
            if any(ahead):
                held = report.actions_held.setdefault(kind.name, 0)
                report.actions_held[kind.name] = held + sum(ahead)
                valid = valid.loc[[not a for a in ahead]]
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
                bad = report.actions_quarantined.get(kind.name, 0)
                report.actions_quarantined[kind.name] = bad + len(rejected)
            landed = actions.land_actions(
                store, kind, symbol, valid, provider.name, report.ingest_date, stamp
            )
            report.actions_landed[kind.name] = report.actions_landed.get(kind.name, 0) + landed
        state.entry(symbol).actions_on = today.isoformat()
        report.actions_asked.append(symbol)
        save_state(store, state)


def _damaged(store: ObjectStore, symbol: str) -> bool:
    return any(integrity.damaged_objects(store, kind.prefix, symbol) for kind in actions.KINDS)
