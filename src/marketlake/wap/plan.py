"""plan: what a build must read and recompute (see pipeline.py)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pandas as pd

from marketlake import sqlfiles
from marketlake.errors import MarketlakeError
from marketlake.lake import actions
from marketlake.lake.raw import RAW_PREFIX
from marketlake.lake.state import (
    load_state,
)
from marketlake.storage import ObjectStore
from marketlake.wap.build import Plan
from marketlake.wap.restate import applied_actions, changed, restated_symbols
from marketlake.wap.versions import (
    Registry,
)

if TYPE_CHECKING:  # the Glue job never imports DuckDB
    pass


def plan(
    store: ObjectStore,
    registry: Registry,
    full: bool,
    corporate: dict[str, pd.DataFrame] | None = None,
    force: bool = False,
) -> Plan | None:
    """What this run must read and recompute, or None when nothing changed since the current
    version (with `force`, a full build then). `corporate`: the splits, dividends and earnings
    in the lake (actions.build_frames), read here when not given."""
    dates = sorted(
        name.split("=", 1)[1]
        for name in store.list_prefixes(RAW_PREFIX)
        if name.startswith("ingest_date=")
    )
    if not dates:
        raise MarketlakeError(
            f"no raw data under {RAW_PREFIX} in the lake; run `marketlake ingest` first"
        )
    newest = dates[-1]
    seen = {o.key: o.version for o in store.list_objects(f"{RAW_PREFIX}ingest_date={newest}/")}
    corporate = actions.build_frames(store) if corporate is None else corporate
    applied = applied_actions(corporate)
    state = load_state(store)
    purged = sorted(state.purged)

    def full_build(reason: str) -> Plan:
        return Plan("full", reason, None, newest, seen, actions=applied, purged=purged)

    current = registry.current_version()
    if full:
        return full_build("--full")
    if current is None:
        return full_build("first build")
    if current.sql_fingerprint != sqlfiles.fingerprint():
        return full_build("the SQL changed")
    if purged != (current.purged or []):
        # A purged symbol leaves every year it is in; a restored one comes back from raw
        # partitions older builds read already: either way every year is rebuilt.
        return full_build(_purge_reason(purged, current.purged or []))
    if state.rebuild_needed:
        return full_build("raw data landed in an earlier ingest_date than the last build read")
    if current.raw_through is None:
        return full_build("the current version does not say what it read")
    if current.actions is None:
        return full_build("the current version does not say which splits and dividends it applied")
    restated = restated_symbols(current.actions, corporate)
    new_raw = newest != current.raw_through or seen != current.raw_seen
    if not new_raw and not restated:
        # Nothing changed: the raw zone is as the current version read it.
        return full_build("--force") if force else None
    raw_from = current.raw_through
    if not new_raw:
        # Only splits, dividends or earnings changed: no raw partition to read (none is this
        # new).
        raw_from = (dt.date.fromisoformat(newest) + dt.timedelta(days=1)).isoformat()
    elif newest != current.raw_through:
        last_read = {
            o.key: o.version
            for o in store.list_objects(f"{RAW_PREFIX}ingest_date={current.raw_through}/")
        }
        if last_read == current.raw_seen:
            # Nothing landed in the last partition read since: start after it. After a history
            # import that partition holds every bar, and reading it again to find no new row
            # would cost as much as the full build did.
            raw_from = next((d for d in dates if d > current.raw_through), raw_from)
    reasons = ["new raw data"] if new_raw else []
    kinds = changed(current.actions, applied)
    for kind in ("splits or dividends", "earnings"):
        names = sorted(s for s in restated if kind in kinds.get(s, []))
        if names:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            reasons.append(f"{kind} changed for {', '.join(names[:5])}{more}")
    return Plan(
        "incremental",
        "; ".join(reasons),
        raw_from,
        newest,
        seen,
        current.ingested_through,
        actions=applied,
        restated=restated,
        purged=purged,
    )


def _purge_reason(purged: list[str], before: list[str]) -> str:
    gone = [s for s in purged if s not in before]
    back = [s for s in before if s not in purged]
    reasons = [f"purged {', '.join(gone)}"] if gone else []
    reasons += [f"{', '.join(back)} no longer purged"] if back else []
    return "; ".join(reasons)
