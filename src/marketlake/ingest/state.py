"""Ingest state: watermarks, the day's request count, deferred symbols. One JSON object."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

from marketlake.errors import MarketlakeError
from marketlake.storage import ObjectStore

STATE_KEY = "state/ingest_state.json"
STATE_VERSION = 1


@dataclasses.dataclass
class SymbolState:
    watermark: str | None = None  # last trade_date stored, ISO
    source: str | None = None
    last_ingest: str | None = None  # ISO timestamp of the last run that touched it
    invalid: str | None = None  # why the provider refused the symbol, if it did
    invalid_on: str | None = None  # the US/Eastern day it refused it
    actions_on: str | None = None  # the US/Eastern day its splits and dividends were asked


@dataclasses.dataclass
class IngestState:
    lake_kind: str | None = None  # "synthetic" or "market": the two never mix in one lake
    symbols: dict[str, SymbolState] = dataclasses.field(default_factory=dict)
    quota_date: str | None = None  # US/Eastern day the count below belongs to
    quota_used: int = 0
    deferred: list[str] = dataclasses.field(default_factory=list)
    newest_ingest_date: str | None = None  # newest raw partition ingest ever wrote
    # Set when raw lands in an ingest_date older than that (an --as-of in the past): an
    # incremental build reads only newer partitions, so the next build must be full.
    rebuild_needed: bool = False

    def watermark(self, symbol: str) -> dt.date | None:
        entry = self.symbols.get(symbol)
        if entry is None or entry.watermark is None:
            return None
        return dt.date.fromisoformat(entry.watermark)

    def entry(self, symbol: str) -> SymbolState:
        return self.symbols.setdefault(symbol, SymbolState())

    def used_on(self, day: dt.date) -> int:
        return self.quota_used if self.quota_date == day.isoformat() else 0

    def to_json(self) -> bytes:
        body = {
            "version": STATE_VERSION,
            "lake_kind": self.lake_kind,
            "quota": {"date": self.quota_date, "used": self.quota_used},
            "deferred": self.deferred,
            "newest_ingest_date": self.newest_ingest_date,
            "rebuild_needed": self.rebuild_needed,
            "symbols": {k: dataclasses.asdict(v) for k, v in sorted(self.symbols.items())},
        }
        return (json.dumps(body, indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> IngestState:
        body = json.loads(data)
        if not isinstance(body, dict) or not isinstance(body.get("quota") or {}, dict):
            raise ValueError("not a JSON object of the expected shape")
        if body.get("version") != STATE_VERSION:
            raise ValueError(f"unknown state version {body.get('version')!r}")
        quota = body.get("quota") or {}
        _check_day(quota.get("date"), "quota.date")
        _check_day(body.get("newest_ingest_date"), "newest_ingest_date")
        for symbol, entry in (body.get("symbols") or {}).items():
            if isinstance(entry, dict):
                _check_day(entry.get("watermark"), f"the watermark of {symbol}")
                _check_day(entry.get("invalid_on"), f"invalid_on of {symbol}")
                _check_day(entry.get("actions_on"), f"actions_on of {symbol}")
        return cls(
            lake_kind=body.get("lake_kind"),
            symbols={k: SymbolState(**v) for k, v in (body.get("symbols") or {}).items()},
            quota_date=quota.get("date"),
            quota_used=int(quota.get("used") or 0),
            deferred=list(body.get("deferred") or []),
            newest_ingest_date=body.get("newest_ingest_date"),
            rebuild_needed=bool(body.get("rebuild_needed", False)),
        )


def _check_day(value, what: str) -> None:
    """Dates in the state are ISO days or null; anything else would fail later, far away."""
    if value is None:
        return
    try:
        dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is {value!r}, not a date like 2024-06-28") from None


def load_state(store: ObjectStore) -> IngestState:
    try:
        data = store.get_bytes(STATE_KEY)
    except KeyError:
        return IngestState()
    try:
        return IngestState.from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MarketlakeError(
            f"{STATE_KEY} in the lake is unreadable ({exc}); restore it from S3 versioning or "
            "delete it to re-fetch from scratch (raw data is kept and deduplicated)"
        ) from None


def save_state(store: ObjectStore, state: IngestState) -> None:
    store.put_bytes(STATE_KEY, state.to_json())


# Recent bars per symbol, as digests of their raw values: enough to tell whether a bar an API
# sends again (Alpha Vantage's compact answer repeats 100 sessions) changed since it landed.
DIGESTS_PREFIX = "state/recent_bars/"
DIGESTS_KEPT = 150


def bar_digests(frame) -> list:
    """One short digest per raw row of (open, high, low, close, volume) as text."""
    columns = ["open", "high", "low", "close", "volume"]
    return [
        hashlib.sha256(",".join(values).encode()).hexdigest()[:16]
        for values in frame[columns].itertuples(index=False, name=None)
    ]


def load_digests(store: ObjectStore, symbol: str) -> dict:
    try:
        return json.loads(store.get_bytes(f"{DIGESTS_PREFIX}{symbol}.json"))
    except KeyError:
        return {}
    except ValueError:
        return {}  # unreadable: treat every repeated bar as unchanged


def save_digests(store: ObjectStore, symbol: str, digests: dict) -> None:
    kept = dict(sorted(digests.items())[-DIGESTS_KEPT:])
    store.put_bytes(f"{DIGESTS_PREFIX}{symbol}.json", json.dumps(kept, sort_keys=True).encode())


# What ingest and import landed in each raw object: its rows, a digest of its bytes, and the
# trade dates it spans; one JSON per ingest_date partition. The build reconciles the rows it
# reads with it, so a raw object that lost rows is found instead of published around.
LANDED_PREFIX = "state/raw_landed/"


def landed_key(raw_key: str) -> str:
    """state/raw_landed/ingest_date=D.json for raw/daily_prices/ingest_date=D/SYMBOL.csv."""
    partition = raw_key.rstrip("/").split("/")[-2]
    return f"{LANDED_PREFIX}{partition}.json"


def load_landed(store: ObjectStore, key: str) -> dict:
    """The records of one partition's file (`key` from landed_key), by raw object key."""
    try:
        body = json.loads(store.get_bytes(key))
    except KeyError:
        return {}
    except ValueError:
        raise MarketlakeError(
            f"{key} in the lake is unreadable; delete it (the build then cannot check that "
            "partition's raw objects until they are landed again)"
        ) from None
    return body if isinstance(body, dict) else {}


def record_landed(store: ObjectStore, raw_key: str, data: bytes, trade_dates) -> None:
    """Record what a raw object holds now, right after it was written."""
    key = landed_key(raw_key)
    records = load_landed(store, key)
    dates = sorted(str(d) for d in trade_dates)
    records[raw_key] = {
        "rows": len(dates),
        "sha256": hashlib.sha256(data).hexdigest(),
        "first": dates[0] if dates else None,
        "last": dates[-1] if dates else None,
    }
    store.put_bytes(key, (json.dumps(records, indent=1, sort_keys=True) + "\n").encode())
