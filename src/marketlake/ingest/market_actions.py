"""Splits and dividends from a provider that lists them market-wide by date (Polygon's
/v3/reference/splits and /v3/reference/dividends): one paginated request each a run, from
the last day asked on, instead of two requests per symbol. They land as the day's one
market-wide object per kind, judged by the same rules as any other source's."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from marketlake.ingest.landing import quarantine_stamp
from marketlake.ingest.market import MarketRun, window_sessions
from marketlake.ingest.report import FETCHED, SymbolResult
from marketlake.lake import actions, raw
from marketlake.lake.state import save_state
from marketlake.providers.base import (
    BeyondPlan,
    NotOffered,
    QuotaExhausted,
    Retriable,
    UnusablePayload,
)
from marketlake.redaction import redact


def actions_since(run: MarketRun) -> dt.date | None:
    """The first day to ask, or None when nothing is due: the last day asked (asked again:
    a list of that day may have grown since), or the history window's start the first time.
    MARKETLAKE_ACTIONS_EVERY_DAYS=0 asks never; otherwise market-wide lists are asked every
    run, which costs one request each."""
    if run.settings.actions_every_days <= 0:
        return None
    asked = run.state.actions_through
    if asked:
        return min(dt.date.fromisoformat(asked), run.report.session)
    window = window_sessions(run.settings, run.state, run.report.session)
    return window[0] if window else run.report.session


# Market-wide lists are asked this many days at a time. Two years of the market's dividends
# are about 40 pages of 1,000 at 12 s each on the free plan: asked whole, the request could
# outlast a Lambda run, and the next run would ask it whole again. A month is a page or two,
# the deadline is checked between months, and the day asked through moves with each.
ACTIONS_CHUNK_DAYS = 30


def ingest_market_actions(run: MarketRun) -> None:
    """Ask, judge and land the market's splits and dividends since the last day asked, a
    month at a time, oldest first; what the run has no time for waits for the next."""
    since = actions_since(run)
    if since is None:
        return
    run.report.actions_market = since.isoformat()
    until = run.report.session
    while True:
        through = min(since + dt.timedelta(days=ACTIONS_CHUNK_DAYS - 1), until)
        if not _ask_and_land(run, since, through):
            return
        run.state.actions_through = through.isoformat()
        save_state(run.store, run.state)
        if through >= until:
            return
        since = through + dt.timedelta(days=1)


def _ask_and_land(run: MarketRun, since: dt.date, until: dt.date) -> bool:
    """One span of days: both kinds asked, then landed; False when the run must stop."""
    report = run.report
    answers = []
    for kind in actions.KINDS:
        try:
            if run.out_of_time is not None and run.out_of_time(run.next_wait()):
                raise QuotaExhausted("time budget of this run spent")
            label = f"{kind.name} {since} .. {until}"
            run.observer.symbol_started(label)
            answers.append((kind, run.provider.fetch_market_actions(kind.name, since, until)))
            run.observer.symbol_done(SymbolResult(label, FETCHED))  # the progress bar's step
        except (QuotaExhausted, Retriable, UnusablePayload) as exc:
            report.actions_waiting = [f"every ticker from {since}"]
            first = redact((str(exc).splitlines() or [""])[0], run.settings.polygon_api_key)
            run.observer.event(
                "actions", f"splits and dividends from {since} wait for the next run ({first})"
            )
            return False
        except (NotOffered, BeyondPlan) as exc:
            report.actions_off = str(exc)
            run.observer.event(
                "actions", f"splits and dividends are off for this run: {exc}; bars are unaffected"
            )
            return False
    moment = run.now()
    stamp = raw.format_timestamp(moment)
    for kind, rows in answers:
        if run.universe is not None:
            rows = rows[rows["symbol"].isin(run.universe)]
        valid, rejected = judge_market(kind, rows)
        # Held back like Alpha Vantage's declared ex-dates: not effective yet, not landed.
        ahead = [d > run.report.session for d in valid["date"]]
        if any(ahead):
            report.actions_held[kind.name] = report.actions_held.get(kind.name, 0) + sum(ahead)
            valid = valid.loc[[not a for a in ahead]]
        if len(rejected):
            key = kind.quarantine_key(
                report.ingest_date,
                raw.MARKET_OBJECT + since.isoformat(),  # one object per span asked
                quarantine_stamp(moment),
            )
            body = rejected.assign(source=run.provider.name)
            run.store.put_bytes(key, body.to_csv(index=False).encode())
            bad = report.actions_quarantined.get(kind.name, 0)
            report.actions_quarantined[kind.name] = bad + len(rejected)
        landed = actions.land_market_actions(
            run.store, kind, valid, run.provider.name, report.ingest_date, stamp
        )
        report.actions_landed[kind.name] = report.actions_landed.get(kind.name, 0) + landed
    return True


def judge_market(kind: actions.ActionKind, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """actions.judge_actions symbol by symbol: (valid `symbol`, `date`, `value`; rejected
    rows as text with a `reason`)."""
    valid, rejected = [], []
    for symbol, group in rows.groupby("symbol", sort=True):
        good, bad = actions.judge_actions(kind, group)
        valid.append(good.assign(symbol=symbol))
        rejected.append(bad.assign(symbol=symbol))
    columns = ["symbol", "date", "value"]
    good_all = (
        pd.concat(valid, ignore_index=True)[columns] if valid else pd.DataFrame(columns=columns)
    )
    bad_columns = ["symbol", kind.date_column, kind.value_column, "reason"]
    bad_all = (
        pd.concat(rejected, ignore_index=True)[bad_columns]
        if rejected
        else pd.DataFrame(columns=bad_columns)
    )
    return good_all, bad_all
