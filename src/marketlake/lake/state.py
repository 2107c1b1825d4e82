"""Ingest state: watermarks, the day's request count, deferred symbols. One JSON object."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from typing import Literal

from marketlake.errors import MarketlakeError
from marketlake.storage import ObjectStore

STATE_KEY = "state/ingest_state.json"
STATE_VERSION = 1
# What a lake holds: the synthetic market's bars or a real market's; the two never mix.
LakeKind = Literal["synthetic", "market"]


@dataclasses.dataclass
class SymbolState:
    watermark: str | None = None  # last trade_date stored, ISO
    source: str | None = None
    last_ingest: str | None = None  # ISO timestamp of the last run that touched it
    invalid: str | None = None  # why the provider refused the symbol, if it did
    invalid_on: str | None = None  # the US/Eastern day it refused it
    actions_on: str | None = None  # the US/Eastern day its splits and dividends were asked
    earnings_on: str | None = None  # the US/Eastern day its earnings were asked
    # ... and the day they were last asked, answered or not: a run that asks only some of
    # the due symbols (POLYGON_EARNINGS_PER_RUN) takes the least recently tried first, so a
    # symbol whose answer keeps failing does not take a turn every run.
    earnings_tried: str | None = None


@dataclasses.dataclass
class IngestState:
    lake_kind: LakeKind | None = None
    symbols: dict[str, SymbolState] = dataclasses.field(default_factory=dict)
    quota_date: str | None = None  # US/Eastern day the count below belongs to
    quota_used: int = 0
    deferred: list[str] = dataclasses.field(default_factory=list)
    newest_ingest_date: str | None = None  # newest raw partition ingest ever wrote
    # Set when raw lands in an ingest_date older than that (an --as-of in the past): an
    # incremental build reads only newer partitions, so the next build must be full.
    rebuild_needed: bool = False
    # A provider with a whole-market answer (Polygon): the newest session whose answer
    # landed for --tickers ALL (every older one in the window landed before it: oldest
    # first); the last day market-wide splits and dividends were asked through; and the
    # first session the vendor's plan served when it refused older history.
    market_through: str | None = None
    actions_through: str | None = None
    plan_edge: str | None = None
    # The lake's own tickers (`marketlake tickers`): what a run without --tickers or
    # MARKETLAKE_TICKERS fetches; ["*"] is the whole market. None: not set yet (a new lake,
    # or one from before it was kept), and the first run sets it (lake/universe.py).
    universe: list[str] | None = None
    # Symbols `tickers remove --purge` took out of the published table -> when (ISO UTC):
    # builds leave their raw rows out (kept, for audit) until `tickers add` brings them back.
    purged: dict[str, str] = dataclasses.field(default_factory=dict)
    # The state as last read from or written to the store (to_json's body): a save writes
    # only what this run changed since then, on top of whatever the store holds now.
    base: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

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
        return (json.dumps(self.body(), indent=2) + "\n").encode("utf-8")

    def body(self) -> dict:
        return {
            "version": STATE_VERSION,
            "lake_kind": self.lake_kind,
            "quota": {"date": self.quota_date, "used": self.quota_used},
            "deferred": self.deferred,
            "newest_ingest_date": self.newest_ingest_date,
            "rebuild_needed": self.rebuild_needed,
            "market_through": self.market_through,
            "actions_through": self.actions_through,
            "plan_edge": self.plan_edge,
            "universe": self.universe,
            "purged": dict(sorted(self.purged.items())),
            "symbols": {k: dataclasses.asdict(v) for k, v in sorted(self.symbols.items())},
        }

    def adopt(self, other: IngestState) -> None:
        """Take `other`'s content in place (SymbolState objects others hold stay live)."""
        for field in dataclasses.fields(self):
            if field.name != "symbols":
                setattr(self, field.name, getattr(other, field.name))
        for symbol, entry in other.symbols.items():
            mine = self.symbols.setdefault(symbol, SymbolState())
            for name, value in dataclasses.asdict(entry).items():
                setattr(mine, name, value)

    @classmethod
    def from_json(cls, data: bytes) -> IngestState:
        body = json.loads(data)
        if not isinstance(body, dict) or not isinstance(body.get("quota") or {}, dict):
            raise ValueError("not a JSON object of the expected shape")
        if body.get("version") != STATE_VERSION:
            raise ValueError(f"unknown state version {body.get('version')!r}")
        quota = body.get("quota") or {}
        _check_day(quota.get("date"), "quota.date")
        for name in ("newest_ingest_date", "market_through", "actions_through", "plan_edge"):
            _check_day(body.get(name), name)
        for symbol, entry in (body.get("symbols") or {}).items():
            if isinstance(entry, dict):
                _check_day(entry.get("watermark"), f"the watermark of {symbol}")
                _check_day(entry.get("invalid_on"), f"invalid_on of {symbol}")
                _check_day(entry.get("actions_on"), f"actions_on of {symbol}")
                _check_day(entry.get("earnings_on"), f"earnings_on of {symbol}")
                _check_day(entry.get("earnings_tried"), f"earnings_tried of {symbol}")
        universe, purged = body.get("universe"), body.get("purged") or {}
        if universe is not None and not (
            isinstance(universe, list) and all(isinstance(s, str) for s in universe)
        ):
            raise ValueError(f"universe is {universe!r}, not a list of symbols")
        if not isinstance(purged, dict) or not all(isinstance(v, str) for v in purged.values()):
            raise ValueError(f"purged is {purged!r}, not symbols with the time of their purge")
        state = cls(
            lake_kind=body.get("lake_kind"),
            symbols={k: SymbolState(**v) for k, v in (body.get("symbols") or {}).items()},
            quota_date=quota.get("date"),
            quota_used=int(quota.get("used") or 0),
            deferred=list(body.get("deferred") or []),
            newest_ingest_date=body.get("newest_ingest_date"),
            rebuild_needed=bool(body.get("rebuild_needed", False)),
            market_through=body.get("market_through"),
            actions_through=body.get("actions_through"),
            plan_edge=body.get("plan_edge"),
            universe=None if universe is None else list(universe),
            purged=dict(purged),
        )
        state.base = state.body()
        return state


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
    return _parse_state(data)


def _parse_state(data: bytes | None) -> IngestState:
    if data is None:
        return IngestState()
    try:
        return IngestState.from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MarketlakeError(
            f"{STATE_KEY} in the lake is unreadable ({exc}); restore it from S3 versioning or "
            "delete it to re-fetch from scratch (raw data is kept and deduplicated)"
        ) from None


def save_state(store: ObjectStore, state: IngestState) -> None:
    """Write what this run changed in `state` since it was read (or last saved), on top of
    the state in the store now: the Lambda and the Glue job both write it, and a conditional
    write (re-read and re-applied on a conflict) means neither loses the other's update.
    `state` then holds the merged result."""
    mine = state.body()
    base = state.base or IngestState().body()  # never read: it was the empty state

    def change(current: bytes | None) -> bytes | None:
        merged = merge_state(_parse_state(current).body(), base, mine)
        data = (json.dumps(merged, indent=2) + "\n").encode("utf-8")
        return None if data == current else data  # nothing new: no write (no S3 PUT)

    written = store.update_bytes(STATE_KEY, change)
    assert written is not None, "the state was written, or is already what it would be"
    state.adopt(IngestState.from_json(written))


def read_state_bytes(store: ObjectStore) -> bytes | None:
    """The state object as it is now, to compare with later (see clear_rebuild_needed)."""
    return store.get_tagged(STATE_KEY)[0]


def clear_rebuild_needed(store: ObjectStore, seen: bytes | None) -> bool:
    """After a full build: clear rebuild_needed, but only if the state is still exactly what
    the build read before it listed the raw zone. If an ingest wrote it since, it may have
    landed bars in an old partition after the listing (and set the flag again): the flag
    stays, and the next build is full too. Re-checked on every retry of the write."""

    cleared: list[bool] = []

    def change(current: bytes | None) -> bytes | None:
        cleared.clear()
        if current is None or current != seen:
            return None
        state = IngestState.from_json(current)
        if not state.rebuild_needed:
            return None
        state.rebuild_needed = False
        cleared.append(True)
        return state.to_json()

    store.update_bytes(STATE_KEY, change)
    return bool(cleared)


def merge_state(current: dict, base: dict, mine: dict) -> dict:
    """A three-way merge of state bodies: each field this run changed (mine differs from
    base) takes this run's value; the others keep the store's. Per symbol, per field."""
    merged = dict(current)
    for name, value in mine.items():
        if name in ("symbols", "quota"):
            continue
        if value != base.get(name):
            merged[name] = value
    if mine.get("newest_ingest_date") != base.get("newest_ingest_date"):
        days = [d for d in (current.get("newest_ingest_date"), mine["newest_ingest_date"]) if d]
        merged["newest_ingest_date"] = max(days) if days else None
    merged["quota"] = _merge_quota(current.get("quota") or {}, base.get("quota"), mine["quota"])
    symbols = dict(current.get("symbols") or {})
    base_symbols = base.get("symbols") or {}
    for symbol, entry in (mine.get("symbols") or {}).items():
        was = base_symbols.get(symbol) or {}
        now = dict(symbols.get(symbol) or {})
        for name, value in entry.items():
            if value != was.get(name) or name not in now:
                now[name] = value
        symbols[symbol] = now
    merged["symbols"] = dict(sorted(symbols.items()))
    return merged


def _merge_quota(current: dict, base, mine: dict) -> dict:
    """Requests counted by two writers on one day: the store's count plus the calls this
    writer added since it read (both spent quota); a newer day's count wins over an older."""
    if mine == base:
        return current
    if current.get("date") == mine.get("date"):
        read = (base or {}).get("used") or 0 if (base or {}).get("date") == mine["date"] else 0
        added = (mine["used"] or 0) - read
        return {"date": mine["date"], "used": (current.get("used") or 0) + added}
    if (current.get("date") or "") > (mine.get("date") or ""):
        return current
    return mine


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
    """Add `digests` to the symbol's record (a conditional write: nothing another writer
    added in between is lost)."""

    def change(current: bytes | None) -> bytes:
        try:
            merged = json.loads(current) if current is not None else {}
        except ValueError:
            merged = {}
        merged = dict(merged) if isinstance(merged, dict) else {}
        merged.update(digests)
        kept = dict(sorted(merged.items())[-DIGESTS_KEPT:])
        return json.dumps(kept, sort_keys=True).encode()

    store.update_bytes(f"{DIGESTS_PREFIX}{symbol}.json", change)


# What ingest and import landed in each raw object: its rows, a digest of its bytes, and the
# trade dates it spans; one JSON per ingest_date partition. The build reconciles the rows it
# reads with it, so a raw object that lost rows is found instead of published around.
LANDED_PREFIX = "state/raw_landed/"


def landed_prefix(zone: str) -> str:
    """Where the records of a raw zone's objects are: the bars' at state/raw_landed/ itself,
    the others' (splits, dividends) in a folder each, so a build reads only the zone it
    checks."""
    return LANDED_PREFIX if zone == "daily_prices" else f"{LANDED_PREFIX}{zone}/"


def landed_key(raw_key: str) -> str:
    """state/raw_landed/ingest_date=D.json for raw/daily_prices/ingest_date=D/SYMBOL.csv;
    state/raw_landed/splits/ingest_date=D.json for raw/splits/ingest_date=D/SYMBOL.csv."""
    parts = raw_key.rstrip("/").split("/")
    return f"{landed_prefix(parts[1])}{parts[-2]}.json"


def landed_files(store: ObjectStore, zone: str, since: str | None = None) -> list[tuple[str, str]]:
    """(ingest_date, key) of each record file of `zone`, oldest first, from `since` on."""
    prefix = landed_prefix(zone)
    found = []
    for info in store.list_objects(prefix):
        name = info.key[len(prefix) :]
        if "/" in name or not name.startswith("ingest_date="):
            continue  # another zone's folder
        day = name.split("=", 1)[1].rsplit(".", 1)[0]
        if since is None or day >= since:
            found.append((day, info.key))
    return sorted(found)


def load_landed(store: ObjectStore, key: str) -> dict:
    """The records of one partition's file (`key` from landed_key), by raw object key."""
    try:
        data = store.get_bytes(key)
    except KeyError:
        return {}
    return _parse_landed(key, data)


def _parse_landed(key: str, data: bytes | None) -> dict:
    if data is None:
        return {}
    try:
        body = json.loads(data)
    except ValueError:
        raise MarketlakeError(
            f"{key} in the lake is unreadable; delete it (the build then cannot check that "
            "partition's raw objects until they are landed again)"
        ) from None
    return body if isinstance(body, dict) else {}


def record_landed(
    store: ObjectStore, raw_key: str, data: bytes, trade_dates, digest: str | None = None
) -> None:
    """Record what a raw object holds now, right after it was written: `digest` is what
    put_bytes returned (asked of the store when not given), which builds compare with."""
    key = landed_key(raw_key)
    dates = sorted(str(d) for d in trade_dates)
    if digest is None:
        digest = store.digests(raw_key).get(raw_key)
    record = {
        "rows": len(dates),
        "sha256": hashlib.sha256(data).hexdigest(),
        "digest": digest,
        "first": dates[0] if dates else None,
        "last": dates[-1] if dates else None,
    }

    def change(current: bytes | None) -> bytes:
        records = _parse_landed(key, current)
        records[raw_key] = record
        return (json.dumps(records, indent=1, sort_keys=True) + "\n").encode()

    store.update_bytes(key, change)


def forget_landed(store: ObjectStore, raw_key: str) -> None:
    """Drop the record of a raw object set aside (moved to quarantine/)."""
    key = landed_key(raw_key)

    def change(current: bytes | None) -> bytes | None:
        records = _parse_landed(key, current)
        if raw_key not in records:
            return None
        del records[raw_key]
        return (json.dumps(records, indent=1, sort_keys=True) + "\n").encode()

    store.update_bytes(key, change)
