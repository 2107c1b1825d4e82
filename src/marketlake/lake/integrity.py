"""Every object the lake reads is checked against what was recorded when it was written.

Raw objects (bars, splits, dividends, earnings): ingest and import record each one's rows and
digest in state/raw_landed/ingest_date=D.json as they land it (state.record_landed). Published
Parquet: the build records each file's digest in the version registry when it publishes. A digest is
what the store can tell cheaply (storage.ObjectStore.digests): a local lake hashes the bytes,
S3 lists the ETags, which S3 changes whenever an object is written.

A damaged object blocks whatever would read it, naming the object and the remedy; it is never
read around. The one exception is the documented last resort, `build --full`, which reads no
published file it needs: it rebuilds from raw.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Mapping

from marketlake.errors import MarketlakeError
from marketlake.lake.raw import MARKET_OBJECT, is_market_object
from marketlake.lake.state import forget_landed, landed_files, load_landed
from marketlake.storage import ObjectStore

# The raw zones whose objects are recorded as they land, by the word the remedies use.
RAW_ZONES = {
    "daily_prices": "raw/daily_prices/",
    "splits": "raw/splits/",
    "dividends": "raw/dividends/",
    "earnings": "raw/earnings/",
}
# Where a damaged raw object is moved when its data lands again (kept for a look).
DAMAGED_PREFIX = "quarantine/damaged/"
PUBLISHED_REMEDY = (
    "switch daily_prices back with `marketlake rollback` (to a version without that file, see "
    "`marketlake status`), or rebuild it from raw with `marketlake build --full`"
)


@dataclasses.dataclass(frozen=True)
class Damage:
    key: str  # the lake key of the damaged (or missing) object
    problem: str
    remedy: str

    def line(self) -> str:
        return f"{self.key} {self.problem}; {self.remedy}"


def summary(damages: list[Damage], what: str = "object") -> str:
    """One line: the first damage, and how many more."""
    first = damages[0].line()
    more = len(damages) - 1
    return first + (
        f" (and {more} more damaged {what}(s): `marketlake verify` lists them)" if more else ""
    )


def recorded_digest(record: Mapping) -> str | None:
    """The digest recorded for a raw object: what the store reported, or (records written
    before digests were kept) the sha256 of its bytes."""
    if record.get("digest"):
        return str(record["digest"])
    return f"sha256:{record['sha256']}" if record.get("sha256") else None


def _scheme(digest: str) -> str:
    return digest.split(":", 1)[0]


def symbol_of(key: str) -> str:
    return key.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def zone_of(key: str) -> str | None:
    return next((name for name, prefix in RAW_ZONES.items() if key.startswith(prefix)), None)


def raw_blocked(damages: list[Damage], outcome: str = "nothing was published") -> str:
    """The one line a build blocked by damaged raw objects says: the first, how many more,
    and one remedy naming every symbol."""
    first = damages[0]
    more = f" (and {len(damages) - 1} more raw object(s))" if len(damages) > 1 else ""
    keys = [d.key for d in damages]
    zones = sorted({zone_of(k) or "daily_prices" for k in keys if not is_market_object(k)})
    imports = " or ".join(
        "`marketlake import FILE --symbol SYM`"
        if zone == "daily_prices"
        else f"`marketlake import --{zone} FILE --symbol SYM`"
        for zone in zones
    )
    again = f" (or re-import: {imports})" if imports else ""
    return (
        f"raw object {first.key} {first.problem}{more}; {outcome}. Restore it from S3 "
        f"versioning (or a backup), or {refetch_remedy(keys)}{again}, which sets the damaged "
        "object aside; then build again"
    )


def session_of(key: str) -> str:
    """The session (bars) or ingest day (splits, dividends) of a whole-market object."""
    return key.rsplit("/", 1)[-1][len(MARKET_OBJECT) :].rsplit(".", 1)[0]


def refetch_remedy(keys: list[str]) -> str:
    """How to land the data of damaged raw objects again: their symbols asked again, and
    for a whole-market object (every ticker of one session, or of one day's splits or
    dividends) that day asked again."""
    symbols = sorted({symbol_of(k) for k in keys if not is_market_object(k)})
    days = sorted({session_of(k) for k in keys if is_market_object(k)})
    steps = []
    if symbols:
        steps.append(f"run `marketlake ingest --refetch {','.join(symbols)}`")
    if days:
        steps.append(f"run `marketlake ingest --refetch-days {','.join(days)}`")
    return " and ".join(steps)


def raw_remedy(key: str) -> str:
    symbol, zone = symbol_of(key), zone_of(key)
    if is_market_object(key):
        land = refetch_remedy([key])
    elif zone == "daily_prices":
        land = (
            f"run `marketlake ingest --refetch {symbol}`, or re-import {symbol}'s bars "
            f"(`marketlake import FILE --symbol {symbol}`)"
        )
    else:
        land = (
            f"land {symbol}'s {zone} again (`marketlake import --{zone} FILE --symbol {symbol}`, "
            f"or `marketlake ingest --refetch {symbol}`)"
        )
    return (
        f"restore it from S3 versioning (or a backup), or {land}, which sets the damaged object "
        "aside; then build again"
    )


def check_raw_object(key: str, record: Mapping, digest: str | None) -> Damage | None:
    """Whether the raw object at `key` (its digest now, None if it is gone) is what landed."""
    rows = int(record.get("rows") or 0)
    if digest is None:
        return Damage(key, f"is missing (it held {rows} rows when it landed)", raw_remedy(key))
    expected = recorded_digest(record)
    if expected is not None and _scheme(expected) == _scheme(digest) and expected != digest:
        return Damage(
            key,
            f"changed since it landed (its {rows} rows were recorded with {expected[:19]}…, "
            f"it is now {digest[:19]}…)",
            raw_remedy(key),
        )
    return None


def verify_raw(
    store: ObjectStore,
    since: str | None = None,
    zones: Iterable[str] = tuple(RAW_ZONES),
    skip_unreadable: bool = False,
) -> tuple[list[Damage], int]:
    """The raw objects of `zones` landed in ingest_date partitions from `since` on (None:
    all) that are missing or changed since they landed, and how many were checked. A raw
    object without a record (landed before records were kept, or put there by hand) is not
    checked here: the build reconciles what it can read of it. An unreadable landing record
    raises, unless `skip_unreadable` (`marketlake verify`, which reports it on its own)."""
    records: dict[str, Mapping] = {}
    days: dict[str, list[str]] = {}
    for zone in zones:
        for day, key in landed_files(store, zone, since):
            days.setdefault(zone, []).append(day)
            try:
                landed = load_landed(store, key)
            except MarketlakeError:
                if not skip_unreadable:
                    raise
                continue
            for raw_key, record in landed.items():
                if raw_key.startswith(RAW_ZONES[zone]) and isinstance(record, Mapping):
                    records[raw_key] = record
    if not records:
        return [], 0
    digests: dict[str, str] = {}
    for zone, zone_days in days.items():
        prefix = RAW_ZONES[zone]
        if since is None:
            digests.update(store.digests(prefix))  # one listing of the zone
        else:
            for day in zone_days:
                digests.update(store.digests(f"{prefix}ingest_date={day}/"))
    damages = [
        damage
        for key, record in sorted(records.items())
        if (damage := check_raw_object(key, record, digests.get(key))) is not None
    ]
    return damages, len(records)


def partition_files(
    store: ObjectStore, partitions: Mapping[str, str], reuse: bool = False
) -> dict[str, str]:
    """The digest of every file of these partitions (value -> location), by key; `reuse`
    (readers): see ObjectStore.digests."""
    files: dict[str, str] = {}
    for location in sorted(set(partitions.values())):
        files.update(store.digests(location.rstrip("/") + "/", reuse=reuse))
    return files


def verify_files(
    store: ObjectStore,
    recorded: Mapping[str, str] | None,
    partitions: Mapping[str, str],
    reuse: bool = False,
) -> list[Damage]:
    """The files of these published partitions that differ from `recorded` (a version's
    files, by key): changed, missing, or a file the build never wrote (the engine would read
    it). `recorded` None: a version from before files were recorded, which cannot be checked."""
    if recorded is None:
        return []
    locations = sorted({loc.rstrip("/") + "/" for loc in partitions.values()})
    now = partition_files(store, partitions, reuse)
    damages = []
    for key, digest in sorted(recorded.items()):
        if not key.startswith(tuple(locations)):
            continue
        found = now.get(key)
        if found is None:
            damages.append(Damage(key, "is missing", PUBLISHED_REMEDY))
        elif _scheme(found) == _scheme(digest) and found != digest:
            damages.append(
                Damage(key, "changed since it was published (its digest differs)", PUBLISHED_REMEDY)
            )
    for key in sorted(set(now) - set(recorded)):
        damages.append(
            Damage(key, "was not written by the build that published it", PUBLISHED_REMEDY)
        )
    for location in locations:
        if not any(k.startswith(location) for k in now) and not any(
            k.startswith(location) for k in recorded
        ):
            damages.append(Damage(location, "holds no file", PUBLISHED_REMEDY))
    return damages


def set_aside(store: ObjectStore, key: str) -> None:
    """Move a damaged raw object to quarantine/damaged/<its key> (kept for a look, never
    read by a build) and forget what was recorded of it."""
    with contextlib.suppress(KeyError):  # gone already: only the record is left to drop
        store.put_bytes(DAMAGED_PREFIX + key, store.get_bytes(key))
    store.delete_prefix(key)
    forget_landed(store, key)


def set_aside_damaged(store: ObjectStore, prefix: str, symbol: str) -> list[str]:
    """Set aside every recorded raw object of `symbol` under `prefix` that is damaged, before
    its data lands again (an import or a refetch of splits or dividends: the whole list of
    the symbol's actions). Returns their keys."""
    damaged = damaged_objects(store, prefix, symbol)
    for key in damaged:
        set_aside(store, key)
    return damaged


def damaged_objects(store: ObjectStore, prefix: str, symbol: str) -> list[str]:
    """The recorded raw objects of `symbol` under `prefix` that are gone or changed."""
    records = {}
    zone = zone_of(prefix) or "daily_prices"
    for _, landed in landed_files(store, zone):
        for key, record in load_landed(store, landed).items():
            if key.startswith(prefix) and key.endswith(f"/{symbol}.csv"):
                records[key] = record
    return [
        key
        for key, record in sorted(records.items())
        if check_raw_object(key, record, store.digests(key).get(key)) is not None
    ]
