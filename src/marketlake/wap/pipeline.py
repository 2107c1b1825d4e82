"""Build daily_prices by write-audit-publish: run_build calls the named steps below in turn.

plan    — what the run must read (plan): nothing new (skip), everything (a full build), or the
          raw partitions it has not read (an incremental build).
write   — the new bars (sql/staging/bars.sql over the unread raw rows) and, in an incremental
          build, the published bars their windows reach back to (gather_bars); the row checks
          exclude and quarantine failing bars (exclude_rejected_bars); the metrics SQL writes
          a new version of the rebuilt years (write_version).
audit   — the table checks run on that version: blocking ones (and too many excluded rows)
          stop the run; warnings are recorded.
publish — one write of the version registry (state/versions/TABLE.json), the only source
          of truth of what is published; the engine's pointer (the catalog) then follows it
          (follow), and follows it again whenever a build or rollback opens the lake, so a
          publish a kill cut short is completed, never half-visible.
record  — old versions are pruned, and the run goes into pipeline_runs. A run that did not
          publish deletes its version and is recorded as blocked or failed (abandon).

The SQL of each step is in sql/ (sql/wap/ holds the build's own: which raw rows are unread,
which published bars are read again, which bars are rejected, how rebuilt years are spliced),
bound to this run's relations and values by marketlake.sqlfiles.bind.

A run is incremental when it can be: it reads the raw partitions it has not read (and the
last one it read again, if anything landed there since), rebuilds the years the new bars touch
(and the years after them), and reads the published rows of a few earlier years as lookback
for the windows. Its cost follows the new data and the rebuilt years, not the length of
history. A change in the SQL makes the next run full.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Callable

from marketlake.config import Settings
from marketlake.errors import BuildBlocked
from marketlake.faults import crash_point
from marketlake.lake import actions, integrity
from marketlake.lake.audit import (
    RunRecord,
    new_run_id,
)
from marketlake.lake.raw import RAW_PREFIX
from marketlake.lake.state import (
    read_state_bytes,
)
from marketlake.storage import ObjectStore
from marketlake.wap.build import (  # noqa: F401 -- the build's names, as before the split
    CURATED_PREFIX,
    RAW_TABLE,
    TABLE,
    Build,
    BuildObserver,
    BuildResult,
    Plan,
    after_publish,
    create_views,
    nyse_sessions_frame,
    record_run,
)
from marketlake.wap.plan import plan
from marketlake.wap.publish import (  # noqa: F401
    PublishConflict,
    _commit,
    _names,
    abandon,
    audit,
    follow,
    prune,
    publish,
    record,
)
from marketlake.wap.rollback import follow_registry_read_only, rollback  # noqa: F401
from marketlake.wap.versions import (
    DamagedRegistry,
    Version,
    load_registry,
    published_version,
)
from marketlake.wap.write import METRICS_SQL, RSI_SEEDED_WINDOWS, write  # noqa: F401

if TYPE_CHECKING:  # the Glue job never imports DuckDB
    from marketlake.engines.base import Engine


def run_build(
    settings: Settings,
    store: ObjectStore,
    engine: Engine,
    full: bool = False,
    force: bool = False,
    observer: BuildObserver | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    run_id: str | None = None,
) -> BuildResult:
    """Build daily_prices: plan, write, audit, publish, then follow, prune and record."""
    observer = observer or BuildObserver()
    started = now()
    run_id = run_id or new_run_id(started)
    # Before the raw zone is listed: a full build clears rebuild_needed only if no ingest
    # wrote the state since (on AWS the Lambda may land bars while the Glue job builds).
    state_seen = read_state_bytes(store)
    registry = load_registry(store, TABLE)
    replaces = None  # a damaged `current` a --full build publishes over
    try:
        current = published_version(store, registry)
    except DamagedRegistry:
        if not full:
            raise  # an incremental build builds on the current version: there is none
        # --full, the documented last resort, rebuilds from raw and needs nothing published:
        # it builds on nothing (parent None) and replaces the dangling `current`.
        current, replaces = None, registry.current
        registry = dataclasses.replace(registry, current=None)
    if replaces is None:
        # The registry is the truth: a catalog a kill left behind (or ahead) follows it
        # first. Best effort: a build publishes anew at its end, and readers follow the
        # registry.
        partitions = current.partitions if current else {}
        after_publish([], "the catalog", engine.publish, TABLE, partitions)
    # Splits, dividends and earnings: small, checked and read whole from the raw zone on
    # every build.
    damages, _ = integrity.verify_raw(store, zones=("splits", "dividends", "earnings"))
    if damages:
        raise BuildBlocked(integrity.raw_blocked(damages, "nothing was built"))
    corporate = actions.build_frames(store, as_of=started)
    build_plan = plan(store, registry, full, corporate, force)
    if build_plan is None:
        assert current is not None, "plan() finds nothing to build only after a version"
        return skip(store, engine, run_id, started, now, current)
    if replaces is not None:
        build_plan.reason += f"; replaces run {replaces}, a damaged current version"

    build = Build(
        settings, store, engine, run_id, started, build_plan, current, state_seen, corporate
    )
    build.replaces = replaces
    try:
        observer.step("write")
        write(build)
        observer.step("audit")
        audit(build)
        observer.step("publish")
        registry = publish(build)
    except BaseException as exc:
        # An interrupt (a Ctrl-C) can land just after the registry's write: then it is
        # published, and stays.
        if not _names(store, run_id):
            # Its version is deleted first; the run record may fail on what failed the run
            # (a full disk): the run's own error is the one that says what to do.
            with contextlib.suppress(Exception):
                abandon(build, exc, now)
        raise
    crash_point("committed")
    # Published. What follows only tidies up: a failure is a warning, not a failed build
    # (a reported failure means nothing was published).
    follow(build)
    prune(build, registry)
    return record(build, now)


def skip(
    store: ObjectStore,
    engine: Engine,
    run_id: str,
    started: dt.datetime,
    now: Callable[[], dt.datetime],
    current: Version,
) -> BuildResult:
    """Nothing to build: record the skipped run, and make the catalog whole again (a deleted
    catalog.duckdb is rebuilt here): every relation the views read, then the views."""
    message = (
        "no new raw data, splits, dividends or earnings and no SQL change since run "
        f"{current.run_id}; nothing to build"
    )
    run = RunRecord(run_id, started, now(), "skipped", version=current.run_id, message=message)
    engine.register_raw(RAW_TABLE, RAW_PREFIX.rstrip("/"))
    engine.register_frame("xnys_sessions", nyse_sessions_frame(started))
    warnings: list[str] = []
    record_run(store, engine, run, warnings)
    create_views(engine)
    return BuildResult(
        run_id, "skipped", "none", 0, [], current.run_id, message=message, warnings=warnings
    )
