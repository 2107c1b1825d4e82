"""Ingest: fetch what each symbol lacks, validate it, land it in the raw zone, move watermarks."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Callable

import pandas as pd

from marketlake.config import Settings
from marketlake.errors import MarketlakeError
from marketlake.ingest import raw
from marketlake.ingest.state import IngestState, load_state, save_state
from marketlake.ingest.validate import split_valid
from marketlake.providers.base import Provider
from marketlake.sessions import eastern_date, last_closed_session
from marketlake.storage import ObjectStore

# Statuses of one symbol in a run.
FETCHED = "fetched"  # new bars landed
UP_TO_DATE = "up_to_date"  # watermark already at the last closed session: no request made
NO_NEW_BARS = "no_new_bars"  # asked, but the provider had nothing newer
FAILED = "failed"


@dataclasses.dataclass
class SymbolResult:
    symbol: str
    status: str
    new_bars: int = 0
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    quarantined: int = 0
    message: str = ""


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

    def with_status(self, status: str) -> list[SymbolResult]:
        return [r for r in self.results if r.status == status]


class IngestObserver:
    """Hooks for progress display; the default does nothing."""

    def started(self, total: int) -> None:
        pass

    def symbol_started(self, symbol: str) -> None:
        pass

    def symbol_done(self, result: SymbolResult) -> None:
        pass


def lake_kind(provider_name: str) -> str:
    return "synthetic" if provider_name == "synthetic" else "market"


def run_ingest(
    settings: Settings,
    store: ObjectStore,
    provider: Provider,
    as_of: dt.datetime,
    tickers: Sequence[str] | None = None,
    observer: IngestObserver | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> IngestReport:
    observer = observer or IngestObserver()
    symbols = list(tickers or settings.tickers)
    session = last_closed_session(as_of)
    report = IngestReport(provider.name, as_of, session, eastern_date(as_of))
    state = load_state(store)
    _claim_lake(state, provider.name, settings)

    observer.started(len(symbols))
    for symbol in symbols:
        observer.symbol_started(symbol)
        try:
            result = _ingest_symbol(settings, store, state, provider, symbol, report, now)
        except MarketlakeError:
            save_state(store, state)
            raise
        except Exception as exc:  # one symbol's failure must not stop the others
            result = SymbolResult(symbol, FAILED, message=f"{type(exc).__name__}: {exc}")
        report.results.append(result)
        save_state(store, state)
        observer.symbol_done(result)
    return report


def _claim_lake(state: IngestState, provider_name: str, settings: Settings) -> None:
    kind = lake_kind(provider_name)
    if state.lake_kind is None:
        state.lake_kind = kind
    elif state.lake_kind != kind:
        raise MarketlakeError(
            f"the lake at {settings.home} holds {state.lake_kind} data and the "
            f"{provider_name} provider would mix in {kind} data; "
            "point MARKETLAKE_HOME (or --home) at another directory"
        )


def _ingest_symbol(
    settings: Settings,
    store: ObjectStore,
    state: IngestState,
    provider: Provider,
    symbol: str,
    report: IngestReport,
    now: Callable[[], dt.datetime],
) -> SymbolResult:
    watermark = state.watermark(symbol)
    if watermark is not None and watermark >= report.session:
        return SymbolResult(symbol, UP_TO_DATE, last_date=watermark)
    if watermark is not None:
        since = watermark + dt.timedelta(days=1)
    else:
        since = report.session - dt.timedelta(days=settings.history_days)

    bars = provider.fetch_daily(symbol, since, report.session)
    # Bars of a session that has not closed are provisional; never store them.
    bars = bars[[d <= report.session for d in bars["trade_date"]]] if len(bars) else bars
    valid, rejected = split_valid(bars)
    if watermark is not None and len(valid):
        valid = valid[valid["trade_date"] > watermark]

    stamp = raw.format_timestamp(now())
    result = SymbolResult(symbol, NO_NEW_BARS, last_date=watermark)
    if len(rejected):
        key = raw.quarantine_key(
            report.ingest_date, symbol, stamp.replace(" ", "T").replace(":", ""), "csv"
        )
        store.put_bytes(key, rejected.assign(source=provider.name).to_csv(index=False).encode())
        result.quarantined = len(rejected)
        result.message = f"{len(rejected)} bar(s) quarantined: {rejected['reason'].iloc[0]}"
    if len(valid):
        _land(
            store,
            report.ingest_date,
            symbol,
            raw.bars_to_frame(symbol, valid, provider.name, stamp),
        )
        result.status = FETCHED
        result.new_bars = len(valid)
        result.first_date = valid["trade_date"].iloc[0]
        result.last_date = valid["trade_date"].iloc[-1]
        entry = state.entry(symbol)
        entry.watermark = result.last_date.isoformat()
        entry.source = provider.name
        entry.last_ingest = stamp
    return result


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
    store.put_bytes(key, raw.frame_to_csv(frame))
