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

import dataclasses
import datetime as dt
import json
import math
from typing import TYPE_CHECKING, Callable, Literal

import pandas as pd
import pyarrow as pa
from sqlglot import exp

from marketlake import sqlfiles
from marketlake.config import Settings
from marketlake.errors import BuildBlocked, DamagedFile, MarketlakeError
from marketlake.faults import crash_point
from marketlake.lake import actions
from marketlake.lake.audit import (
    AUDIT_TABLES,
    CheckResult,
    CheckStatus,
    RunRecord,
    RunStatus,
    check_counts,
    new_run_id,
    write_checks,
    write_quarantined,
    write_run,
)
from marketlake.lake.raw import RAW_PREFIX, format_timestamp
from marketlake.lake.state import (
    LANDED_PREFIX,
    clear_rebuild_needed,
    load_landed,
    load_state,
    read_state_bytes,
)
from marketlake.sessions import last_closed_session, sessions_between
from marketlake.storage import ObjectStore
from marketlake.wap.restate import applied_actions, restated_symbols
from marketlake.wap.versions import (
    Registry,
    Version,
    load_registry,
    registry_key,
    update_registry,
)

if TYPE_CHECKING:  # the Glue job never imports DuckDB
    from marketlake.engines.base import Engine, Partitions
    from marketlake.engines.duckdb import DuckDBEngine

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
    # Symbols recomputed because their splits or dividends changed -> first date recomputed.
    restated: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Plan:
    mode: Literal["full", "incremental"]
    reason: str
    raw_from: str | None  # first ingest_date partition to read; None reads all
    raw_through: str
    raw_seen: dict[str, str]
    ingested_after: str | None = None  # only rows ingested after this were not read
    # The splits and dividends this run applies, as the version records them (restate.py).
    actions: dict[str, dict] = dataclasses.field(default_factory=dict)
    # Symbols whose splits or dividends changed -> first date whose numbers change.
    restated: dict[str, dt.date] = dataclasses.field(default_factory=dict)


class BuildObserver:
    """Hooks for progress display; the default does nothing."""

    def step(self, name: str) -> None:
        pass


def plan(
    store: ObjectStore,
    registry: Registry,
    full: bool,
    corporate: dict[str, pd.DataFrame] | None = None,
    force: bool = False,
) -> Plan | None:
    """What this run must read and recompute, or None when nothing changed since the current
    version (with `force`, a full build then). `corporate`: the splits and dividends in the
    lake (actions.build_frames), read here when not given."""
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

    def full_build(reason: str) -> Plan:
        return Plan("full", reason, None, newest, seen, actions=applied)

    current = registry.current_version()
    if full:
        return full_build("--full")
    if current is None:
        return full_build("first build")
    if current.sql_fingerprint != sqlfiles.fingerprint():
        return full_build("the SQL changed")
    if load_state(store).rebuild_needed:
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
        # Only splits or dividends changed: no raw partition to read (none is this new).
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
    if restated:
        names = sorted(restated)
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        reasons.append(f"splits or dividends changed for {', '.join(names[:5])}{more}")
    return Plan(
        "incremental",
        "; ".join(reasons),
        raw_from,
        newest,
        seen,
        current.ingested_through,
        actions=applied,
        restated=restated,
    )


def nyse_sessions_frame(now: dt.datetime) -> pd.DataFrame:
    last = last_closed_session(now)
    # Python dates: DuckDB and Parquet both take them as DATE.
    return pd.DataFrame({"session": sessions_between(dt.date(2000, 1, 1), last)}, dtype=object)


def reconcile_raw(store: ObjectStore, engine: Engine, raw_from: str | None) -> None:
    """Block when a raw object this run reads holds fewer rows than ingest or import landed
    in it (state/raw_landed/): its bars would silently vanish from the published table."""
    landed = {}
    for info in store.list_objects(LANDED_PREFIX):
        day = info.key[len(LANDED_PREFIX) :].split("=", 1)[-1].rsplit(".", 1)[0]
        if raw_from is None or day >= raw_from:
            landed.update(load_landed(store, info.key))
    if not landed:
        return
    counts = engine.fetch_df(
        sqlfiles.bind(sqlfiles.load("wap/raw_counts.sql"), {}, {"raw_from": raw_from})
    )
    read = {
        f"{RAW_PREFIX}ingest_date={day}/{symbol}.csv": int(n)
        for day, symbol, n in counts[["ingest_date", "symbol", "n"]].itertuples(index=False)
    }
    # A row the CSV reader could not parse is not lost: the build keeps it in
    # quarantined_rows, where it counts toward the bad-row gate.
    for key in engine.raw_rejects()["raw_object"]:
        read[key] = read.get(key, 0) + 1
    short = [
        (key, record["rows"], read.get(key, 0))
        for key, record in sorted(landed.items())
        if read.get(key, 0) < int(record.get("rows") or 0)
    ]
    if short:
        key, recorded, found = short[0]
        symbols = sorted({k.rsplit("/", 1)[-1].rsplit(".", 1)[0] for k, _, _ in short})
        more = f" (and {len(short) - 1} more raw object(s))" if len(short) > 1 else ""
        raise BuildBlocked(
            f"raw object {key} holds {found} of the {recorded} rows landed in it "
            f"({recorded - found} missing){more}; nothing was published. Restore it from S3 "
            f"versioning (or a backup), or run `marketlake ingest --refetch {','.join(symbols)}`,"
            " then build again"
        )


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
    current = registry.current_version()
    # The registry is the truth: a catalog a kill left behind (or ahead) follows it first.
    # Best effort: a build publishes anew at its end, and readers follow the registry.
    _after_publish([], "the catalog", engine.publish, TABLE, current.partitions if current else {})
    # Splits and dividends: small, read whole from the raw zone on every build.
    corporate = actions.build_frames(store)
    build_plan = plan(store, registry, full, corporate, force)
    if build_plan is None:
        assert current is not None, "plan() finds nothing to build only after a version"
        return skip(store, engine, run_id, started, now, current)

    build = Build(
        settings, store, engine, run_id, started, build_plan, current, state_seen, corporate
    )
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
            abandon(build, exc, now)
        raise
    crash_point("committed")
    # Published. What follows only tidies up: a failure is a warning, not a failed build
    # (a reported failure means nothing was published).
    follow(build)
    prune(build, registry)
    return record(build, now)


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

    @property
    def location(self) -> str:
        return f"{CURATED_PREFIX}/version={self.run_id}"

    @property
    def built_on(self) -> Version:
        """The current version an incremental build builds on."""
        assert self.current is not None, "an incremental build needs a published version"
        return self.current


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
        "no new raw data, splits or dividends and no SQL change since run "
        f"{current.run_id}; nothing to build"
    )
    run = RunRecord(run_id, started, now(), "skipped", version=current.run_id, message=message)
    engine.register_raw(RAW_TABLE, RAW_PREFIX.rstrip("/"))
    engine.register_frame("xnys_sessions", nyse_sessions_frame(started))
    _record(store, engine, run)
    _create_views(engine)
    return BuildResult(run_id, "skipped", "none", 0, [], current.run_id, message=message)


# -- write ------------------------------------------------------------------------------------


def write(build: Build) -> None:
    """Read the new bars, gather the bars the rebuilt rows need, exclude (and quarantine) the
    bars the row checks reject, and write the new version's partitions."""
    read_new_bars(build)
    gather_bars(build)
    exclude_rejected_bars(build)
    write_version(build)


def read_new_bars(build: Build) -> None:
    """new_bars: the raw rows not read before, typed and deduplicated (sql/staging/bars.sql)."""
    engine, build_plan = build.engine, build.plan
    engine.register_raw(RAW_TABLE, RAW_PREFIX.rstrip("/"), since=build_plan.raw_from)
    reconcile_raw(build.store, engine, build_plan.raw_from)
    engine.register_frame("xnys_sessions", nyse_sessions_frame(build.started))
    bars_sql = sqlfiles.load("staging/bars.sql")
    if build_plan.raw_from is not None:
        unread = sqlfiles.bind(
            sqlfiles.load("wap/unread_raw.sql"),
            {},
            {"raw_from": build_plan.raw_from, "ingested_after": build_plan.ingested_after or None},
        )
        bars_sql = sqlfiles.bind(bars_sql, {RAW_TABLE: unread})
    build.counts["new"] = engine.materialize("new_bars", bars_sql)
    build.unparsed = engine.raw_rejects()  # rows of that scan the CSV reader could not read
    newest = engine.fetch_df("SELECT max(ingested_at) AS t FROM new_bars")["t"]
    build.ingested_through = None if newest.isna().all() else format_timestamp(newest.iloc[0])


def gather_bars(build: Build) -> None:
    """bars: in a full build the new bars; in an incremental one, the new bars and, of each
    symbol with new bars or changed splits or dividends, the published bars from its first
    recomputed row on and as many before it as its windows reach. Other symbols are only
    copied (see _splice)."""
    engine = build.engine
    for name, frame in build.corporate.items():
        engine.register_frame(name, frame)
    if build.plan.mode != "incremental":
        build.bars = engine.derive("bars", sqlfiles.load("wap/new_bars.sql"))
        return
    build.restated = _restated_firsts(build)
    build.first_year = first_year = _first_rebuilt_year(build)
    # The metrics SQL as written: binding its input changes no window. rsi_14 continues from
    # the published averages, so its 500-row sums need no history (the SQL's header).
    reach = sqlfiles.longest_lookback(sqlfiles.load(METRICS_SQL), seeded=RSI_SEEDED_WINDOWS)
    years_back = math.ceil(reach / MIN_SESSIONS_PER_YEAR)
    published = build.built_on.partitions
    lookback = {y: loc for y, loc in published.items() if int(y) >= first_year - years_back}
    engine.attach("previous_daily_prices", lookback)
    firsts = sqlfiles.load("wap/first_new_bars.sql")
    if build.restated:
        firsts = sqlfiles.bind(sqlfiles.load("wap/first_rebuilt_rows.sql"), {"new_firsts": firsts})
    engine.materialize("firsts", firsts)
    lookback_bars = sqlfiles.load("wap/lookback_bars.sql")
    bars_sql = sqlfiles.bind(lookback_bars, {}, {"lookback_rows": reach + 1})
    build.bars = engine.materialize("bars", bars_sql)
    older = {y: loc for y, loc in published.items() if y not in lookback}
    if older and _back_after_a_gap(engine, older):
        # A symbol whose last published bar is older than the years read (back after a long
        # gap) needs that bar for its windows and rsi_14's seed: read every year instead.
        every_year = (
            "SELECT * FROM previous_daily_prices UNION ALL SELECT * FROM older_daily_prices"
        )
        bars_sql = sqlfiles.bind(
            lookback_bars, {"previous_daily_prices": every_year}, {"lookback_rows": reach + 1}
        )
        build.bars = engine.materialize("bars", bars_sql)


# The window columns of sql/staging/daily_prices.sql that an incremental build seeds from the
# published rsi_avg_gain_14 / rsi_avg_loss_14 rather than from history.
RSI_SEEDED_WINDOWS = ("x_gain_even", "x_gain_odd", "x_loss_even", "x_loss_odd")


def _back_after_a_gap(engine: Engine, older: dict[str, str]) -> bool:
    """Whether a symbol to rebuild has no published bar before its first new one in the
    lookback's years but has one in an older year. Older years are read only when some
    symbol has none (a new ticker, or one back after a gap): most days read none."""
    without = engine.fetch_df(sqlfiles.load("wap/without_history.sql"))
    if without.empty:
        return False
    engine.attach("older_daily_prices", older)
    return not engine.fetch_df(sqlfiles.load("wap/back_after_a_gap.sql")).empty


def _restated_firsts(build: Build) -> dict[str, dt.date]:
    """restated_firsts: of each symbol whose splits or dividends changed, the first published
    row the change reaches (restate.py says from which date)."""
    restated, engine = build.plan.restated, build.engine
    history = {
        y: loc
        for y, loc in build.built_on.partitions.items()
        if restated and int(y) >= min(restated.values()).year
    }
    if not history:
        return {}
    engine.attach("published_history", history)
    frame = pd.DataFrame(
        {
            "symbol": pd.Series(list(restated), dtype=pd.ArrowDtype(pa.string())),
            "restate_from": pd.Series(
                pd.to_datetime(list(restated.values())), dtype="datetime64[ns]"
            ),
        }
    )
    engine.register_frame("restated_symbols", frame)
    engine.materialize("restated_firsts", sqlfiles.load("wap/restated_firsts.sql"))
    found = engine.fetch_df("SELECT symbol, first_new FROM restated_firsts")
    return {
        str(symbol): pd.Timestamp(day).date()
        for symbol, day in zip(found["symbol"], found["first_new"])
    }


def _first_rebuilt_year(build: Build) -> int:
    years = build.engine.fetch_df(
        "SELECT min(year(trade_date)) AS first_year FROM new_bars WHERE trade_date IS NOT NULL"
    )["first_year"]
    firsts = [] if years.isna().all() else [int(years.iloc[0])]
    firsts += [day.year for day in build.restated.values()]
    if not firsts:
        # No new bar has a readable date (or only splits and dividends changed, and no
        # published row): rebuild the newest year, so the bad rows are counted against the
        # threshold, the published rows carried over, and the actions applied recorded.
        return max(int(y) for y in build.built_on.partitions)
    return min(firsts)


def exclude_rejected_bars(build: Build) -> None:
    """good_bars: the bars every row check passes. The others, and the raw rows the CSV
    reader could not read, are quarantined and counted against the bad-row gate."""
    engine, counts, unparsed = build.engine, build.counts, build.unparsed
    assert unparsed is not None, "read_new_bars runs first"
    row_checks = sqlfiles.checks("rows")
    build.row_results, failing = run_checks(engine, row_checks)
    build.row_results.append(_unparsed_check(unparsed))
    failing["raw_rows_readable"] = unparsed
    keys = sqlfiles.load("wap/rejected_keys.sql")
    rejected = " UNION ".join(sqlfiles.bind(keys, {"failing_bars": c.sql}) for c in row_checks)
    if engine.materialize("rejected_keys", rejected) == 0:
        # Every bar passed (a bar without a key fails keys_not_null): no anti-join over
        # every bar (~5% of a full build on DuckDB), and no copy of them on Athena.
        engine.alias("good_bars", "bars")
        good = build.bars
    else:
        good = engine.derive("good_bars", sqlfiles.load("wap/good_bars.sql"))
    # Unreadable raw rows are new rows that were left out: they count toward the gate.
    counts["new"] += len(unparsed)
    counts["bad"] = build.bars - good + len(unparsed)
    _quarantine(build.store, build.run_id, failing)


def write_version(build: Build) -> None:
    """The metrics (sql/staging/daily_prices.sql) over good_bars, written as a new version
    of the rebuilt years, partitioned by year."""
    metrics = _metrics_sql()
    if build.first_year is not None:
        metrics = _splice(metrics, build.first_year)
    build.counts["rows"] = build.engine.ctas(metrics, build.location, ["year"])
    crash_point("written")
    if build.counts["rows"] == 0:
        raise MarketlakeError("the build produced no rows: the raw zone holds no usable bars")
    build.written = {
        name.split("=", 1)[1]: f"{build.location}/{name}"
        for name in build.store.list_prefixes(build.location + "/")
        if name.startswith("year=")
    }


METRICS_SQL = "staging/daily_prices.sql"


def _metrics_sql() -> str:
    return sqlfiles.bind(sqlfiles.load(METRICS_SQL), {"bars": "good_bars"})


def _splice(metrics_sql: str, first_year: int) -> str:
    """The rebuilt years of an incremental run (sql/wap/splice.sql): a symbol's rows before
    its first new bar are copied from the published version (their windows saw no new data),
    and only rows from that bar on are recomputed."""
    columns = sqlfiles.output_columns(metrics_sql)
    published = exp.select(*columns).from_("previous_daily_prices").sql(dialect="athena")
    return sqlfiles.bind(
        sqlfiles.load("wap/splice.sql"),
        {"recomputed": metrics_sql, "published": published},
        {"first_year": int(first_year)},
    )


# -- audit ------------------------------------------------------------------------------------


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
    table_results = _table_checks(engine, rebuilt_before, build.first_year is None, current)
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


# -- publish ----------------------------------------------------------------------------------


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
    )
    # The publish: one conditional write, refused if another build or a rollback
    # switched the table since this run read the registry (its version builds on that).
    return _commit(build.store, current.run_id if current else None, build.run_id, version)


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
    _record(build.store, build.engine, run)


# -- after the publish: follow, prune, record -------------------------------------------------


def follow(build: Build) -> None:
    """The catalog follows the registry; a full build clears the ingest state's
    rebuild_needed (unless an ingest wrote the state since the build read it)."""
    _after_publish(build.warnings, "the catalog", build.engine.publish, TABLE, build.partitions)
    crash_point("catalog")
    if build.plan.mode == "full":
        _after_publish(
            build.warnings, "the ingest state", clear_rebuild_needed, build.store, build.state_seen
        )


def prune(build: Build, registry: Registry) -> None:
    _after_publish(
        build.warnings,
        "pruning old versions",
        _prune,
        build.settings,
        build.store,
        build.engine,
        registry,
    )
    crash_point("pruned")


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
    _after_publish(build.warnings, "the run record", _record, build.store, build.engine, run)
    crash_point("recorded")
    _after_publish(build.warnings, "the views", _create_views, build.engine)
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
    started = now()
    # The switch: one conditional write; the catalog follows it.
    _commit(store, current.run_id, target.run_id)
    warnings = [] if warnings is None else warnings
    _after_publish(warnings, "the catalog", engine.publish, TABLE, target.partitions)
    record = RunRecord(
        new_run_id(started),
        started,
        now(),
        "rolled_back",
        version=target.run_id,
        mode="rollback",
        message=f"daily_prices switched from run {current.run_id} to {target.run_id}",
    )
    _after_publish(warnings, "the run record", _record, store, engine, record)
    _after_publish(warnings, "the views", _create_views, engine)
    return target


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


def _after_publish(warnings: list[str], what: str, step: Callable[..., object], *args) -> None:
    try:
        step(*args)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        warnings.append(
            f"published, but {what} failed ({type(exc).__name__}: {first}); "
            "the next `marketlake build` repairs it"
        )


def follow_registry_read_only(store: ObjectStore, engine: DuckDBEngine) -> Version | None:
    """For a reader on a read-only catalog: daily_prices is what the registry publishes,
    even if a kill stopped the catalog from following it (a session view then shadows the
    catalog's, and the views over daily_prices read it)."""
    current = load_registry(store, TABLE).current_version()
    if current is not None:
        engine.follow(TABLE, current.partitions)
    elif engine.has_relation(TABLE):
        raise MarketlakeError(
            f"the catalog has {TABLE} but {registry_key(TABLE)} publishes no version; "
            "run `marketlake build` to make them agree"
        )
    return current


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


def _unparsed_check(unparsed: pd.DataFrame) -> CheckResult:
    sample = unparsed.head(SAMPLE_ROWS).to_dict("records")
    return CheckResult(
        "raw_rows_readable",
        "row",
        "fail" if len(unparsed) else "pass",
        len(unparsed),
        [{k: (int(v) if k == "raw_line" else v) for k, v in r.items()} for r in sample],
        "every raw CSV row can be read: quotes closed, 9 fields, UTF-8",
    )


def _table_checks(
    engine: Engine, rebuilt_before: Partitions, full: bool, current: Version | None
) -> list[CheckResult]:
    """The table checks of the staging version, against the published rows it rebuilds."""
    empty = "SELECT * FROM staging_daily_prices WHERE 1 = 0"
    try:
        if rebuilt_before:
            engine.attach("published_daily_prices", rebuilt_before)
        else:
            engine.materialize("published_daily_prices", empty)
        return run_checks(engine, sqlfiles.checks("table"))[0]
    except DamagedFile as exc:
        if current is None or not (full and rebuilt_before):
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
        return [*run_checks(engine, sqlfiles.checks("table"))[0], unreadable]


def _quarantine(store: ObjectStore, run_id: str, failing: dict[str, pd.DataFrame]) -> None:
    frames = [frame.assign(check_name=name) for name, frame in failing.items() if len(frame)]
    if frames:
        write_quarantined(store, run_id, pd.concat(frames, ignore_index=True))


def _record(store: ObjectStore, engine: Engine, record: RunRecord) -> None:
    write_run(store, record)
    for name, (prefix, schema) in AUDIT_TABLES.items():
        engine.register_audit(name, prefix, schema, has_data=bool(store.list_objects(prefix + "/")))


def _create_views(engine: Engine) -> None:
    views = sqlfiles.sql_root() / "views"
    for path in sorted(views.glob("*.sql")) if views.is_dir() else []:
        engine.create_or_replace_view(path.stem, path.read_text(encoding="utf-8"))


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
