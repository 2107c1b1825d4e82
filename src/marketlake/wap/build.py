"""What one run of the build is made of (Build, Plan, BuildResult), and the helpers its steps
share: the table's names, the check runner, the run record and the views. pipeline.py runs
the steps; plan.py, write.py and publish.py hold them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import TYPE_CHECKING, Callable, Literal

import pandas as pd
from sqlglot import exp

from marketlake import sqlfiles
from marketlake.config import Settings
from marketlake.errors import BuildBlocked, DamagedFile
from marketlake.lake import integrity
from marketlake.lake.audit import (
    AUDIT_TABLES,
    CheckResult,
    CheckStatus,
    RunRecord,
    set_aside,
    write_run,
)
from marketlake.sessions import last_closed_session, sessions_between
from marketlake.storage import ObjectStore
from marketlake.wap.versions import (
    Version,
)

if TYPE_CHECKING:  # the Glue job never imports DuckDB
    from marketlake.engines.base import Engine, Partitions


TABLE = "daily_prices"


RAW_TABLE = "raw_daily_prices"


CURATED_PREFIX = f"curated/{TABLE}"


SAMPLE_ROWS = 5


# Fewest NYSE sessions in a calendar year (2001 had 248): how many published years to read
# so that the windows' lookback rows are in them.
MIN_SESSIONS_PER_YEAR = 248


@dataclasses.dataclass
class BuildResult:
    run_id: str
    status: Literal["published", "skipped"]
    mode: Literal["full", "incremental", "none"]
    rows_written: int
    checks: list[CheckResult]
    version: str | None
    new_rows: int = 0
    rows_quarantined: int = 0
    years: list[int] = dataclasses.field(default_factory=list)
    message: str = ""
    # What went wrong after the publish (the catalog, the run record, pruning): the version
    # is published all the same, and the next command that opens the lake repairs the rest.
    warnings: list[str] = dataclasses.field(default_factory=list)
    # Symbols recomputed because their actions or earnings changed -> first date recomputed.
    restated: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Plan:
    mode: Literal["full", "incremental"]
    reason: str
    raw_from: str | None  # first ingest_date partition to read; None reads all
    raw_through: str
    raw_seen: dict[str, str]
    ingested_after: str | None = None  # only rows ingested after this were not read
    # The actions and earnings this run applies, as the version records them (restate.py).
    actions: dict[str, dict] = dataclasses.field(default_factory=dict)
    # Symbols whose actions or earnings changed -> first date whose numbers change.
    restated: dict[str, dt.date] = dataclasses.field(default_factory=dict)
    # Symbols purged from the table (`marketlake tickers remove --purge`): their raw rows
    # are left out, and no_lost_history accepts their absence.
    purged: list[str] = dataclasses.field(default_factory=list)


class BuildObserver:
    """Hooks for progress display; the default does nothing."""

    def step(self, name: str) -> None:
        pass


@dataclasses.dataclass
class Build:
    """One run of the build, as its steps fill it in."""

    settings: Settings
    store: ObjectStore
    engine: Engine
    run_id: str
    started: dt.datetime
    plan: Plan
    current: Version | None
    state_seen: bytes | None  # the ingest state as it was before the raw zone was listed
    corporate: dict[str, pd.DataFrame]  # the splits and dividends it applies (build_frames)
    # Of each symbol recomputed for its splits or dividends, its first recomputed row's date.
    restated: dict[str, dt.date] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"rows": 0, "new": 0, "bad": 0}
    )
    unparsed: pd.DataFrame | None = None  # raw rows the CSV reader could not read
    ingested_through: str | None = None
    # The first year rewritten; None in a full build, which rewrites every year.
    first_year: int | None = None
    bars: int = 0  # bars the row checks judge: the new ones and, if incremental, lookback
    row_results: list[CheckResult] = dataclasses.field(default_factory=list)
    checks: list[CheckResult] = dataclasses.field(default_factory=list)
    written: Partitions = dataclasses.field(default_factory=dict)  # this version's years
    partitions: Partitions = dataclasses.field(default_factory=dict)  # what it publishes
    warnings: list[str] = dataclasses.field(default_factory=list)
    verified: set[str] = dataclasses.field(default_factory=set)  # published locations checked
    # The registry's `current` when it names a damaged version (current is None then): a
    # --full build publishes over it, so its commit expects that id.
    replaces: str | None = None

    @property
    def location(self) -> str:
        return f"{CURATED_PREFIX}/version={self.run_id}"

    @property
    def built_on(self) -> Version:
        """The current version an incremental build builds on."""
        assert self.current is not None, "an incremental build needs a published version"
        return self.current


def nyse_sessions_frame(now: dt.datetime) -> pd.DataFrame:
    last = last_closed_session(now)
    # Python dates: DuckDB and Parquet both take them as DATE.
    return pd.DataFrame({"session": sessions_between(dt.date(2000, 1, 1), last)}, dtype=object)


def purged_sql(symbols: list[str]) -> str:
    """The purged symbols as a relation of one column, `symbol` (none: no row)."""
    if not symbols:
        return "SELECT CAST(NULL AS VARCHAR) AS symbol WHERE 1 = 0"
    rows = " UNION ALL ".join(f"SELECT {exp.Literal.string(s).sql()} AS symbol" for s in symbols)
    return f"SELECT symbol FROM ({rows})"


def run_checks(
    engine: Engine, checks: list[sqlfiles.Check]
) -> tuple[list[CheckResult], dict[str, pd.DataFrame]]:
    """Each check's result, and the failing rows of each (for row checks' quarantine)."""
    results: list[CheckResult] = []
    failing_rows: dict[str, pd.DataFrame] = {}
    for check in checks:
        failing = engine.fetch_df(check.sql)
        failing_rows[check.name] = failing
        sample = json.loads(failing.head(SAMPLE_ROWS).to_json(orient="records", date_format="iso"))
        status: CheckStatus = "fail" if len(failing) else "pass"
        results.append(
            CheckResult(check.name, check.severity, status, len(failing), sample, check.description)
        )
    return results, failing_rows


def after_publish(warnings: list[str], what: str, step: Callable[..., object], *args) -> None:
    try:
        step(*args)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        warnings.append(
            f"published, but {what} failed ({type(exc).__name__}: {first}); "
            "the next `marketlake build` repairs it"
        )


def record_run(
    store: ObjectStore, engine: Engine, record: RunRecord, warnings: list[str] | None = None
) -> None:
    """Write the run record and make every audit table readable. An audit object the engine
    cannot read is set aside to quarantine/ (a warning names it), so it fails no later
    read: `marketlake status` leaves such a file out until a build moves it."""
    write_run(store, record)
    for name, (prefix, schema) in AUDIT_TABLES.items():
        has_data = bool(store.list_objects(prefix + "/"))
        unreadable = engine.register_audit(name, prefix, schema, has_data=has_data)
        if not unreadable:
            continue
        for key, why in unreadable.items():
            moved = set_aside(store, key)
            if warnings is not None:
                warnings.append(
                    f"{key} cannot be read ({why}); moved to {moved}, out of {name}, which "
                    "reads the other runs' files: restore it from a backup if you need it, "
                    "else delete it"
                )
        has_data = bool(store.list_objects(prefix + "/"))
        engine.register_audit(name, prefix, schema, has_data=has_data)


def create_views(engine: Engine) -> None:
    views = sqlfiles.sql_root() / "views"
    for path in sorted(views.glob("*.sql")) if views.is_dir() else []:
        engine.create_or_replace_view(path.stem, path.read_text(encoding="utf-8"))


def attach_published(build: Build, name: str, partitions: Partitions) -> None:
    """Make published partitions readable as `name`, once their files are checked against
    the digests the current version recorded. A damaged file blocks an incremental build (it
    would be copied into the new version); a full build reads published files only to
    compare, and catches the DamagedFile (publish._table_checks)."""
    todo = {y: loc for y, loc in partitions.items() if loc not in build.verified}
    recorded = build.current.files if build.current is not None else None
    damages = integrity.verify_files(build.store, recorded, todo)
    if damages:
        line = integrity.summary(damages, "published file")
        if build.plan.mode == "incremental":
            raise BuildBlocked(f"published file {line}; nothing was published")
        raise DamagedFile(f"published file {line}")
    build.verified.update(todo.values())
    build.engine.attach(name, partitions)
