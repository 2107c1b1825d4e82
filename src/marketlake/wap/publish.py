"""audit, publish, and what follows a publish: follow, prune, record (see pipeline.py); and
the one conditional write that publishes (_commit), which rollback uses too."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Callable

from marketlake import sqlfiles
from marketlake.config import Settings
from marketlake.errors import BuildBlocked, MarketlakeError
from marketlake.faults import crash_point
from marketlake.lake import integrity
from marketlake.lake.audit import (
    CheckResult,
    RunRecord,
    RunStatus,
    check_counts,
    write_checks,
)
from marketlake.lake.state import (
    clear_rebuild_needed,
)
from marketlake.storage import ObjectStore
from marketlake.wap.build import (
    CURATED_PREFIX,
    TABLE,
    Build,
    BuildResult,
    after_publish,
    attach_published,
    create_views,
    purged_sql,
    record_run,
    run_checks,
)
from marketlake.wap.versions import (
    Registry,
    Version,
    load_registry,
    update_registry,
)

if TYPE_CHECKING:  # the Glue job never imports DuckDB
    from marketlake.engines.base import Engine, Partitions


def audit(build: Build) -> None:
    """The table checks on the new version (against the published rows it rebuilds), with the
    row checks and the bad-row gate: recorded, and blocking ones stop the run."""
    engine, current = build.engine, build.current
    engine.attach("staging_daily_prices", build.written)
    rebuilt_before = {
        y: loc
        for y, loc in (current.partitions.items() if current else [])
        if build.first_year is None or int(y) >= build.first_year
    }
    table_results = _table_checks(build, rebuilt_before)
    build.checks = [*build.row_results, _bad_row_share(build.settings, build.counts)]
    build.checks += table_results
    write_checks(build.store, build.run_id, build.checks)
    crash_point("audited")
    failed = [c for c in build.checks if c.blocks]
    if failed:
        summary = ", ".join(f"{c.check_name} ({c.failing_rows} rows)" for c in failed)
        kept = f"run {current.run_id}" if current else "nothing"
        raise BuildBlocked(
            f"build blocked by {summary}; the published data stays as it was ({kept}). "
            "See `marketlake status`, or the dq_results and quarantined_rows tables"
        )


def _bad_row_share(settings: Settings, counts: dict[str, int]) -> CheckResult:
    share = 100.0 * counts["bad"] / counts["new"] if counts["new"] else 0.0
    limit = settings.max_bad_row_pct
    return CheckResult(
        "bad_row_share",
        "blocking",
        "fail" if share > limit else "pass",
        counts["bad"],
        [{"excluded_rows": counts["bad"], "new_rows": counts["new"], "pct": round(share, 3)}],
        f"rows excluded by the row checks are at most {limit:g}% of the run's new rows",
    )


def _table_checks(build: Build, rebuilt_before: Partitions) -> list[CheckResult]:
    """The table checks of the staging version, against the published rows it rebuilds."""
    engine, current = build.engine, build.current
    full = build.first_year is None
    empty = "SELECT * FROM staging_daily_prices WHERE 1 = 0"
    try:
        if rebuilt_before:
            attach_published(build, "published_daily_prices", rebuilt_before)
        else:
            engine.materialize("published_daily_prices", empty)
        return run_checks(engine, table_checks(build.plan.purged))[0]
    except MarketlakeError as exc:
        # DamagedFile, or files gone from a version that recorded none (DuckDB: "No files
        # found"): either way the published version cannot be read.
        if current is None or not (full and rebuilt_before) or isinstance(exc, BuildBlocked):
            raise
        # A full build reads the published version only to check that no history is lost.
        # If that version is damaged, the rebuild from raw is the repair: it goes on without
        # the comparison, and says so in a warning.
        engine.materialize("published_daily_prices", empty)
        unreadable = CheckResult(
            "published_readable",
            "warning",
            "fail",
            0,
            [{"version": current.run_id, "error": str(exc)}],
            "the published version can be read (a full build rebuilt without comparing to it)",
        )
        return [*run_checks(engine, table_checks(build.plan.purged))[0], unreadable]


def table_checks(purged_symbols: list[str]) -> list[sqlfiles.Check]:
    """The table checks, bound to the symbols purged (no_lost_history accepts their loss)."""
    purged = {"purged_symbols": purged_sql(purged_symbols)}
    return [
        dataclasses.replace(c, sql=sqlfiles.bind(c.sql, purged)) if "purged_symbols" in c.sql else c
        for c in sqlfiles.checks("table")
    ]


def publish(build: Build) -> Registry:
    """Make the version durable, then publish it: one conditional write of the registry."""
    current, build_plan = build.current, build.plan
    # An incremental build (first_year set) keeps the published years it did not rebuild.
    partitions = dict(build.built_on.partitions) if build.first_year is not None else {}
    partitions = {y: loc for y, loc in partitions.items() if y not in build.written}
    partitions.update(build.written)
    build.partitions = partitions
    # Durable before visible: a power cut after the publish must not leave it naming
    # files that never reached the disk.
    build.store.make_durable(build.location + "/")
    crash_point("synced")
    version = Version(
        parent=current.run_id if current else None,
        run_id=build.run_id,
        published_at=build.started.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
        mode=build_plan.mode,
        sql_fingerprint=sqlfiles.fingerprint(),
        partitions=dict(sorted(partitions.items())),
        raw_through=build_plan.raw_through,
        raw_seen=build_plan.raw_seen,
        ingested_through=max(
            t for t in (build.ingested_through, build_plan.ingested_after, "") if t is not None
        )
        or None,
        actions=build_plan.actions,
        files=_published_files(build, partitions),
        purged=build_plan.purged or None,
    )
    # The publish: one conditional write, refused if another build or a rollback
    # switched the table since this run read the registry (its version builds on that).
    expected = current.run_id if current else build.replaces
    return _commit(build.store, expected, build.run_id, version)


class PublishConflict(MarketlakeError):
    """Another build or a rollback switched the table while this run worked."""


def _names(store: ObjectStore, run_id: str) -> bool:
    """Whether the registry, as stored now, names this run's version."""
    try:
        return any(v.run_id == run_id for v in load_registry(store, TABLE).versions)
    except Exception:  # an unreadable registry names nothing we could keep
        return False


def _commit(
    store: ObjectStore, expected: str | None, run_id: str, version: Version | None = None
) -> Registry:
    """The one step that publishes: switch the registry's current version from `expected`
    to `run_id` (adding `version`, when new). It is a conditional write of the registry: a
    write by someone else in between is read again, and if it moved the current version
    away from `expected` this switch is refused (PublishConflict), since what it publishes
    was built on, or chosen from, a registry that is no longer the truth. If the write
    reports a failure after the new registry reached the store (e.g. syncing its directory
    failed), it is published all the same, and not reported as a failure."""

    def change(registry: Registry) -> Registry | None:
        known = {v.run_id for v in registry.versions}
        if registry.current == run_id and (version is None or run_id in known):
            return None  # already switched: a retry of our own write that landed
        if registry.current != expected:
            raise PublishConflict(
                f"{TABLE} was switched to run {registry.current} by another build or rollback "
                f"while this one worked from run {expected}; nothing of run {run_id} was "
                "published: run the command again"
            )
        if version is not None and version.run_id not in known:
            registry.versions.append(version)
        registry.current = run_id
        return registry

    try:
        return update_registry(store, TABLE, change)
    except PublishConflict:
        raise
    except Exception:
        try:
            registry = load_registry(store, TABLE)
        except Exception:
            registry = None
        if registry is None or registry.current != run_id:
            raise
        return registry


def _published_files(build: Build, partitions: Partitions) -> dict[str, str]:
    """The digests of the version's files: its own, read now that they are durable, and
    those of the years it keeps from the version it builds on, as that version recorded
    them (the build checked the ones it read; `marketlake verify` checks the rest)."""
    files = integrity.partition_files(build.store, build.written)
    kept = {y: loc for y, loc in partitions.items() if y not in build.written}
    recorded = build.current.files if build.current is not None else None
    if kept and recorded is not None:
        prefixes = tuple(loc.rstrip("/") + "/" for loc in kept.values())
        files.update({k: d for k, d in recorded.items() if k.startswith(prefixes)})
    elif kept:  # built on a version from before files were recorded
        files.update(integrity.partition_files(build.store, kept))
    return dict(sorted(files.items()))


def abandon(build: Build, exc: BaseException, now: Callable[[], dt.datetime]) -> None:
    """A run that did not publish (the registry does not name it): no reader can see its
    version, so it is deleted rather than left half-written, and the run is recorded."""
    build.store.delete_prefix(build.location + "/")
    status: RunStatus = "blocked" if isinstance(exc, BuildBlocked) else "failed"
    run = RunRecord(
        build.run_id,
        build.started,
        now(),
        status,
        build.counts["rows"],
        *check_counts(build.checks),
        mode=build.plan.mode,
        rows_quarantined=build.counts["bad"],
        message=str(exc) or type(exc).__name__,
    )
    record_run(build.store, build.engine, run)


def follow(build: Build) -> None:
    """The catalog follows the registry; a full build clears the ingest state's
    rebuild_needed (unless an ingest wrote the state since the build read it)."""
    after_publish(build.warnings, "the catalog", build.engine.publish, TABLE, build.partitions)
    crash_point("catalog")
    if build.plan.mode == "full":
        after_publish(
            build.warnings, "the ingest state", clear_rebuild_needed, build.store, build.state_seen
        )


def prune(build: Build, registry: Registry) -> None:
    after_publish(
        build.warnings,
        "pruning old versions",
        _prune,
        build.settings,
        build.store,
        build.engine,
        registry,
    )
    crash_point("pruned")


def _prune(settings: Settings, store: ObjectStore, engine: Engine, registry: Registry) -> None:
    """Forget versions beyond the newest `keep_versions` (and the current one), drop what
    the engine keeps for them (on Athena their tables), then the partitions no kept version
    refers to (and versions a crash left behind)."""
    keep = settings.keep_versions

    def forget(latest: Registry) -> Registry | None:
        kept = {v.run_id for v in latest.versions[-keep:]} | {latest.current}
        if all(v.run_id in kept for v in latest.versions):
            return None
        latest.versions = [v for v in latest.versions if v.run_id in kept]
        return latest

    registry = update_registry(store, TABLE, forget)
    engine.forget_versions(TABLE, [v.partitions for v in registry.versions])
    in_use = registry.locations_in_use(keep)
    for version_dir in store.list_prefixes(CURATED_PREFIX + "/"):
        base = f"{CURATED_PREFIX}/{version_dir}"
        for part in store.list_prefixes(base + "/"):
            if f"{base}/{part}" not in in_use:
                store.delete_prefix(f"{base}/{part}/")
        if not store.list_objects(base + "/"):
            store.delete_prefix(base + "/")


def record(build: Build, now: Callable[[], dt.datetime]) -> BuildResult:
    """The run record of the published run, then the views; the result of the build."""
    counts, mode = build.counts, build.plan.mode
    message = f"{mode} build ({build.plan.reason})"
    run = RunRecord(
        build.run_id,
        build.started,
        now(),
        "published",
        counts["rows"],
        *check_counts(build.checks),
        version=build.run_id,
        mode=mode,
        rows_quarantined=counts["bad"],
        message=message,
    )
    after_publish(
        build.warnings, "the run record", record_run, build.store, build.engine, run, build.warnings
    )
    crash_point("recorded")
    after_publish(build.warnings, "the views", create_views, build.engine)
    return BuildResult(
        build.run_id,
        "published",
        mode,
        counts["rows"],
        build.checks,
        build.run_id,
        new_rows=counts["new"],
        rows_quarantined=counts["bad"],
        years=sorted(int(y) for y in build.written),
        message=message,
        warnings=build.warnings,
        restated={symbol: day.isoformat() for symbol, day in sorted(build.restated.items())},
    )
