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
    # The splits and dividends it applied: symbol -> fingerprints (wap.restate.applied_actions).
    # None in a version from before they were recorded: the next build is full.
    actions: dict[str, dict] | None = None
    # The digest of every file of its partitions (storage digests), by key: what readers
    # check before they read it. None in a version from before they were recorded.
    files: dict[str, str] | None = None


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
        return self.get(self.current) if self.current else None

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
