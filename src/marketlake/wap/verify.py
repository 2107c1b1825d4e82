"""`marketlake verify`: the whole lake checked against what was recorded when it was written.

Raw objects against their landing records, every kept version's published files against the
digests the registry recorded, the registry itself, the audit files and the state files. Each
finding is one line: the object, what is wrong, and what to run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io

import pyarrow.parquet as pq

from marketlake.errors import DamagedFile, MarketlakeError
from marketlake.lake import integrity
from marketlake.lake.raw import RAW_PREFIX
from marketlake.lake.state import LANDED_PREFIX, STATE_KEY, load_landed, load_state
from marketlake.storage import ObjectStore
from marketlake.wap.build import TABLE
from marketlake.wap.versions import Registry, Version, load_registry, registry_key

AUDIT_PREFIX = "audit/"
AUDIT_REMEDY = (
    "move it out of audit/ (it holds one run's records; the runs, checks and data are not "
    "affected), or restore it from S3 versioning"
)


@dataclasses.dataclass
class Verified:
    checked: dict[str, int] = dataclasses.field(default_factory=dict)  # what -> how many
    damaged: list[str] = dataclasses.field(default_factory=list)  # one line each

    @property
    def ok(self) -> bool:
        return not self.damaged


def verify_lake(store: ObjectStore) -> Verified:
    report = Verified()
    _state_files(store, report)
    # An unreadable landing record is one finding (_state_files), not the end of the check.
    damages, checked = integrity.verify_raw(store, skip_unreadable=True)
    report.checked["raw objects"] = checked
    unrecorded = unrecorded_raw(store)
    if unrecorded:
        # Not damage: landed before records were kept, or put there by hand.
        report.checked["raw bar objects without a landing record (not checked)"] = unrecorded
    report.damaged += [d.line() for d in damages]
    registry = _registry(store, report)
    if registry is not None:
        _published(store, registry, report)
    _audit(store, report)
    return report


def published_damage(store: ObjectStore, version: Version) -> DamagedFile | None:
    """What a reader of `version` must refuse: its first damaged file, or None. A reader
    reuses the digests of files unchanged since they were last hashed (ObjectStore.digests):
    hashing every file of the version on every query cost 0.24x of a `query` at 2M rows
    (docs/benchmarks.md)."""
    damages = integrity.verify_files(store, version.files, version.partitions, reuse=True)
    if not damages:
        return None
    return DamagedFile(f"published file {integrity.summary(damages, 'published file')}")


def _state_files(store: ObjectStore, report: Verified) -> None:
    checks = 0
    try:
        load_state(store)
    except MarketlakeError as exc:
        report.damaged.append(str(exc))
    checks += store.exists(STATE_KEY)
    for info in store.list_objects(LANDED_PREFIX):
        checks += 1
        try:
            load_landed(store, info.key)
        except MarketlakeError as exc:
            report.damaged.append(str(exc))
    report.checked["state files"] = checks


def _registry(store: ObjectStore, report: Verified) -> Registry | None:
    try:
        registry = load_registry(store, TABLE)
    except MarketlakeError as exc:
        report.damaged.append(str(exc))
        return None
    report.checked["versions"] = len(registry.versions)
    known = {v.run_id for v in registry.versions}
    if registry.current is not None and registry.current not in known:
        listed = ", ".join(v.run_id for v in registry.versions[-5:]) or "none"
        report.damaged.append(
            f"{registry_key(TABLE)} is damaged: its current version {registry.current} is not "
            f"among its versions ({listed}); run `marketlake rollback --to RUN_ID` with one of "
            "them, or `marketlake build --full`"
        )
    return registry


def _published(store: ObjectStore, registry: Registry, report: Verified) -> None:
    files = 0
    unrecorded = []
    for version in registry.versions:
        if version.files is None:
            unrecorded.append(version.run_id)
            continue
        files += len(version.files)
        damages = integrity.verify_files(store, version.files, version.partitions)
        if not damages:
            continue
        role = (
            "the current version"
            if version.run_id == registry.current
            else "a version `marketlake rollback` can return to"
        )
        for damage in damages:
            remedy = (
                damage.remedy
                if version.run_id == registry.current
                else "nothing serves it; `marketlake rollback` refuses to return to it, and "
                "builds prune it once MARKETLAKE_KEEP_VERSIONS newer versions exist"
            )
            report.damaged.append(
                f"{damage.key} ({role}, {version.run_id}) {damage.problem}; {remedy}"
            )
    report.checked["published files"] = files
    if unrecorded:
        # Not damage: versions published before digests were recorded cannot be checked.
        report.checked["versions without digests (not checked)"] = len(unrecorded)


def _audit(store: ObjectStore, report: Verified) -> None:
    infos = [i for i in store.list_objects(AUDIT_PREFIX) if i.key.endswith(".parquet")]
    for info in infos:
        try:
            # One thread: pyarrow's pool can abort the process at exit ("terminate called
            # without an active exception", seen in 1 of 3 runs of the CLI tests).
            pq.read_table(io.BytesIO(store.get_bytes(info.key)), use_threads=False)
        except KeyError:
            continue  # gone since the listing
        except Exception as exc:  # pyarrow raises several kinds for a damaged file
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
            report.damaged.append(f"{info.key} cannot be read ({reason}); {AUDIT_REMEDY}")
    report.checked["audit files"] = len(infos)


def unrecorded_raw(store: ObjectStore) -> int:
    """Raw bar objects without a landing record (landed before records were kept, or put
    there by hand): the build reads them but cannot check them."""
    recorded: set[str] = set()
    for info in store.list_objects(LANDED_PREFIX):
        with contextlib.suppress(MarketlakeError):  # unreadable: reported by _state_files
            recorded.update(load_landed(store, info.key))
    return sum(1 for i in store.list_objects(RAW_PREFIX) if i.key not in recorded)
