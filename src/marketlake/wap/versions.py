"""The version registry of a curated table: which partitions each published version is made
of, which one is current, how far into the raw zone it has read, and which splits and
dividends it applied.

It lives in the lake (state/versions/TABLE.json), the same on both engines. The engine's own
pointer (the DuckDB view; on Athena the view over the version's table) is what readers use;
the registry is what builds and rollbacks reason with. It is changed only by
update_registry, a conditional read-modify-write, so concurrent writers lose nothing.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable, Literal

from marketlake.errors import MarketlakeError
from marketlake.storage import ObjectStore


@dataclasses.dataclass
class Version:
    run_id: str
    published_at: str  # ISO UTC
    mode: Literal["full", "incremental", "rollback"]
    sql_fingerprint: str
    partitions: dict[str, str]  # year -> location (lake key prefix, no trailing slash)
    raw_through: str | None = None  # newest ingest_date read
    raw_seen: dict[str, str] = dataclasses.field(default_factory=dict)  # key -> version, in it
    # Newest ingested_at read: a raw object rewritten the same day keeps its older rows, and
    # those need not be read again.
    ingested_through: str | None = None
    parent: str | None = None  # the version this one was built on (what rollback returns to)
    # The actions and earnings it applied: symbol -> fingerprints (wap.restate.applied_actions).
    # None in a version from before they were recorded: the next build is full.
    actions: dict[str, dict] | None = None
    # The digest of every file of its partitions (storage digests), by key: what readers
    # check before they read it. None in a version from before they were recorded.
    files: dict[str, str] | None = None
    # The symbols purged from it (`marketlake tickers remove --purge`); None: none (and in a
    # version from before purges were recorded).
    purged: list[str] | None = None


@dataclasses.dataclass
class Registry:
    table: str
    current: str | None = None  # run_id of the version readers see
    versions: list[Version] = dataclasses.field(default_factory=list)  # oldest first

    def key(self) -> str:
        return registry_key(self.table)

    def get(self, run_id: str) -> Version:
        for version in self.versions:
            if version.run_id == run_id:
                return version
        known = ", ".join(v.run_id for v in self.versions[-5:]) or "none"
        raise MarketlakeError(f"no version {run_id} of {self.table}; recent versions: {known}")

    def current_version(self) -> Version | None:
        """The version `current` names; DamagedRegistry if it names none this lists (use
        published_version to check its files too)."""
        if not self.current:
            return None
        found = self.find(self.current)
        if found is None:
            raise DamagedRegistry(
                damage_line(self, "which it does not list", self.versions, checked=False)
            )
        return found

    def find(self, run_id: str) -> Version | None:
        return next((v for v in self.versions if v.run_id == run_id), None)

    def locations_in_use(self, keep: int) -> set[str]:
        """Partition locations the newest `keep` versions and the current one refer to."""
        kept = self.versions[-keep:] + ([self.current_version()] if self.current else [])
        return {loc for v in kept if v for loc in v.partitions.values()}

    def to_json(self) -> bytes:
        body = {
            "table": self.table,
            "current": self.current,
            "versions": [dataclasses.asdict(v) for v in self.versions],
        }
        return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()


class DamagedRegistry(MarketlakeError):
    """The registry's `current` names a version it does not list, or one whose partition
    folders are gone: nothing can build on it, but `rollback --to` repairs it."""


# How many intact versions a damage line lists (newest first): enough to pick one.
LISTED_VERSIONS = 5


def damage_line(
    registry: Registry, problem: str, candidates: list[Version], checked: bool = True
) -> str:
    """One line: what is wrong with `current`, which versions are left, and the remedy."""
    newest = list(reversed(candidates))[:LISTED_VERSIONS]
    kind = "versions whose files are all there" if checked else "versions it lists"
    if newest:
        left = ", ".join(f"{v.run_id} ({v.published_at})" for v in newest)
        remedy = (
            f"{kind}: {left}; switch to one with `marketlake rollback --to RUN_ID`, or "
            "rebuild from raw with `marketlake build --full`"
        )
    else:
        remedy = "no version's files are left; rebuild from raw with `marketlake build --full`"
    return (
        f"{registry_key(registry.table)} is damaged: `current` names version "
        f"{registry.current}, {problem}; {remedy}"
    )


def missing_partitions(store: ObjectStore, versions: list[Version]) -> dict[str, list[str]]:
    """run_id -> the partition locations of that version with no file left. Each version
    folder is listed once, however many versions share its partitions."""
    listed: dict[str, list[str]] = {}
    missing: dict[str, list[str]] = {}
    for version in versions:
        gone = []
        for location in version.partitions.values():
            folder = location.rsplit("/", 1)[0]
            if folder not in listed:
                listed[folder] = [o.key for o in store.list_objects(folder + "/")]
            if not any(key.startswith(location + "/") for key in listed[folder]):
                gone.append(location)
        missing[version.run_id] = gone
    return missing


def published_version(store: ObjectStore, registry: Registry) -> Version | None:
    """The current version, with its files checked: DamagedRegistry (one line naming the
    versions left and the remedy) if `current` names a version not listed, or one whose
    partition folders are gone. A build would fail on it further in, naming no remedy."""
    if not registry.current:
        return None
    version = registry.find(registry.current)
    # Only the current version's folders are listed unless it is damaged.
    gone = missing_partitions(store, [version])[version.run_id] if version else []
    if version is not None and not gone:
        return version
    if version is None:
        problem = "which it does not list"
    else:
        problem = f"whose files are gone ({gone[0]}/ is empty or missing)"
    checked = missing_partitions(store, registry.versions)
    intact = [v for v in registry.versions if not checked[v.run_id]]
    raise DamagedRegistry(damage_line(registry, problem, intact))


def registry_key(table: str) -> str:
    return f"state/versions/{table}.json"


def load_registry(store: ObjectStore, table: str) -> Registry:
    try:
        data = store.get_bytes(registry_key(table))
    except KeyError:
        return Registry(table)
    return _parse(table, data)


def _parse(table: str, data: bytes | None) -> Registry:
    if data is None:
        return Registry(table)
    try:
        body = json.loads(data)
        return Registry(
            table=body["table"],
            current=body.get("current"),
            versions=[Version(**v) for v in body.get("versions", [])],
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MarketlakeError(
            f"{registry_key(table)} is unreadable ({type(exc).__name__}: {exc}); restore it "
            "(S3 versioning keeps old copies), or move it aside and run "
            "`marketlake build --full`, which starts a new version history"
        ) from None


def update_registry(
    store: ObjectStore, table: str, change: Callable[[Registry], Registry | None]
) -> Registry:
    """Read-modify-write of the registry that loses no other writer's update: `change` gets
    the registry as it is in the store now and returns it changed (or None: no write); if
    another writer got in between, it runs again on what they wrote. It may raise to refuse
    (e.g. the version it builds on is no longer current): nothing is written then."""

    def apply(current: bytes | None) -> bytes | None:
        changed = change(_parse(table, current))
        return None if changed is None else changed.to_json()

    return _parse(table, store.update_bytes(registry_key(table), apply))
