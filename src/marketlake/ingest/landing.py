"""Landing bars in the raw zone: validate against the NYSE calendar, quarantine what is
impossible, write what is new or changed (one object per day and symbol), record it."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from marketlake import fields
from marketlake.errors import MarketlakeError
from marketlake.ingest.report import FETCHED, NO_NEW_BARS, IngestReport, SymbolResult
from marketlake.ingest.validate import split_valid
from marketlake.lake import audit, integrity, raw
from marketlake.lake.state import (
    IngestState,
    bar_digests,
    landed_files,
    load_digests,
    load_landed,
    record_landed,
    save_digests,
)
from marketlake.sessions import CALENDAR_START, eastern_date, sessions_between
from marketlake.storage import ObjectStore


def quarantine_payload(store, report, symbol, exc, moment: dt.datetime) -> None:
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
    """The rejected bars with their reasons, as one CSV object; returns its key. Bars of
    many symbols (a whole-market answer) keep their own symbol column; `symbol` then names
    the object. Each bar is also logged in the audit table ingest_quarantine, which the
    pipeline-health dashboard reads (it cannot read quarantine/ objects)."""
    key = raw.quarantine_key(report.ingest_date, symbol, quarantine_stamp(moment), "csv")
    rejected = rejected.assign(source=source)
    if "symbol" not in rejected.columns:
        rejected.insert(0, "symbol", symbol)
    store.put_bytes(key, rejected.to_csv(index=False).encode())
    rows = [
        dict(row, trade_date=fields.date_or_none(row.get("trade_date")))
        for row in rejected.to_dict("records")
    ]
    # An import lands as source "import" (importer.SOURCE), whether its bars come through
    # land_bars (strict) or a whole refused file through refuse_batch.
    stage = "import" if source == "import" else "ingest"
    audit.write_ingest_quarantine(store, rows, stage, source, key, moment)
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


def settle_shortfalls(store: ObjectStore, symbol: str, result: SymbolResult) -> None:
    """After a refetch or an import landed the symbol's bars again: a raw object of the
    symbol that is damaged (gone, changed since it landed, short of rows), and whose dates
    the new landing covers, is set aside (quarantine/damaged/), so builds read the new copy
    instead of blocking on it. One the landing could not reach back to still blocks builds,
    naming itself."""
    if result.first_date is None:
        return
    covered_from = result.first_date.isoformat()
    for key, record in landed_records(store, symbol):
        if (record.get("first") or "") < covered_from:
            continue
        if _damaged(store, key, record):
            integrity.set_aside(store, key)


def _damaged(store: ObjectStore, key: str, record: dict) -> bool:
    digest = store.digests(key).get(key)
    return integrity.check_raw_object(key, record, digest) is not None or _short(store, key, record)


def has_damaged_objects(store: ObjectStore, symbol: str) -> bool:
    """Whether a raw bar object of `symbol` is gone, changed or short of rows."""
    return any(_damaged(store, key, record) for key, record in landed_records(store, symbol))


def _short(store: ObjectStore, key: str, record: dict) -> bool:
    """Whether the object holds fewer rows than landed (for records whose digest the store
    cannot compare: written before digests were kept, on S3)."""
    try:
        return len(raw.read_csv(store.get_bytes(key))) < int(record.get("rows") or 0)
    except KeyError:
        return True
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return True


def landed_records(store: ObjectStore, symbol: str) -> list:
    """(raw key, what was landed in it) of every raw bar object of `symbol` (its splits and
    dividends are recorded in the same files, and are not bars)."""
    return [
        (key, record)
        for _, landed in landed_files(store, "daily_prices")
        for key, record in load_landed(store, landed).items()
        if key.startswith(raw.RAW_PREFIX) and key.endswith(f"/{symbol}.csv")
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
    digest = store.put_bytes(key, data)
    record_landed(store, key, data, frame["trade_date"], digest)
