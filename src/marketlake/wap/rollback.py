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
    Version,
    load_registry,
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
    current = registry.current_version()
    if current is None:
        raise MarketlakeError("nothing is published yet; run `marketlake build` first")
    if to is None:
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
    missing = [loc for loc in target.partitions.values() if not store.list_objects(loc + "/")]
    if missing:
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
    # The switch: one conditional write; the catalog follows it.
    _commit(store, current.run_id, target.run_id)
    warnings = [] if warnings is None else warnings
    after_publish(warnings, "the catalog", engine.publish, TABLE, target.partitions)
    record = RunRecord(
        new_run_id(started),
        started,
        now(),
        "rolled_back",
        version=target.run_id,
        mode="rollback",
        message=f"daily_prices switched from run {current.run_id} to {target.run_id}",
    )
    after_publish(warnings, "the run record", record_run, store, engine, record)
    after_publish(warnings, "the views", create_views, engine)
    return target


def follow_registry_read_only(store: ObjectStore, engine: DuckDBEngine) -> Version | None:
    """For a reader on a read-only catalog: daily_prices is what the registry publishes,
    even if a kill stopped the catalog from following it (a session view then shadows the
    catalog's, and the views over daily_prices read it). A reader never gets a number from
    a file that is not what the build published: a damaged one is refused (DamagedFile)."""
    current = load_registry(store, TABLE).current_version()
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
