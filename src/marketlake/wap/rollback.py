"""Switching daily_prices back to an earlier version, and following the registry read-only."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Callable

from marketlake.config import Settings
from marketlake.errors import MarketlakeError
from marketlake.lake.audit import (
    RunRecord,
    new_run_id,
)
from marketlake.storage import ObjectStore
from marketlake.wap.build import TABLE, after_publish, create_views, record_run
from marketlake.wap.publish import _commit
from marketlake.wap.verify import published_damage
from marketlake.wap.versions import (
    DamagedRegistry,
    Version,
    load_registry,
    missing_partitions,
    published_version,
    registry_key,
)

if TYPE_CHECKING:  # the Glue job never imports DuckDB
    from marketlake.engines.base import Engine
    from marketlake.engines.duckdb import DuckDBEngine


def rollback(
    settings: Settings,
    store: ObjectStore,
    engine: Engine,
    to: str | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    warnings: list[str] | None = None,
) -> Version:
    """Switch daily_prices back to an earlier version: the one the current version was built
    on, or `to`. What fails after the switch is appended to `warnings`."""
    registry = load_registry(store, TABLE)
    try:
        current = published_version(store, registry)
    except DamagedRegistry:
        if to is None:
            raise  # no parent to go back to: the line names the versions for --to
        # --to is the repair of a damaged registry: the switch needs only a target.
        current = None
    if registry.current is None:
        raise MarketlakeError("nothing is published yet; run `marketlake build` first")
    if to is None:
        assert current is not None
        # The version the current one was built on, not merely the one published before it:
        # after a rollback and a rebuild, those differ.
        if not current.parent:
            raise MarketlakeError(
                f"run {current.run_id} was built from nothing earlier; there is no version "
                "before it (see `marketlake status` and use --to RUN_ID)"
            )
        target = registry.get(current.parent)
    else:
        target = registry.get(to)
    if missing_partitions(store, [target])[target.run_id]:
        raise MarketlakeError(
            f"version {target.run_id} is no longer kept (MARKETLAKE_KEEP_VERSIONS); "
            "pick a newer one from `marketlake status`"
        )
    damaged = published_damage(store, target)
    if damaged is not None:
        raise MarketlakeError(
            f"version {target.run_id} cannot be rolled back to: {damaged}. Pick another one "
            "from `marketlake status`"
        )
    started = now()
    # The switch: one conditional write from the `current` read above, damaged or not; the
    # catalog follows it.
    _commit(store, registry.current, target.run_id)
    warnings = [] if warnings is None else warnings
    after_publish(warnings, "the catalog", engine.publish, TABLE, target.partitions)
    record = RunRecord(
        new_run_id(started),
        started,
        now(),
        "rolled_back",
        version=target.run_id,
        mode="rollback",
        message=f"daily_prices switched from run {registry.current} to {target.run_id}"
        + ("" if current else " (the registry's current version was damaged)"),
    )
    after_publish(warnings, "the run record", record_run, store, engine, record, warnings)
    after_publish(warnings, "the views", create_views, engine)
    return target


def follow_registry_read_only(store: ObjectStore, engine: DuckDBEngine) -> Version | None:
    """For a reader on a read-only catalog: daily_prices is what the registry publishes,
    even if a kill stopped the catalog from following it (a session view then shadows the
    catalog's, and the views over daily_prices read it). A reader never gets a number from
    a file that is not what the build published: a damaged one is refused (DamagedFile)."""
    current = published_version(store, load_registry(store, TABLE))
    if current is not None:
        damaged = published_damage(store, current)
        if damaged is not None:
            raise damaged
        engine.follow(TABLE, current.partitions)
    elif engine.has_relation(TABLE):
        raise MarketlakeError(
            f"the catalog has {TABLE} but {registry_key(TABLE)} publishes no version; "
            "run `marketlake build` to make them agree"
        )
    return current
