"""Build daily_prices by write-audit-publish: a new version per run, checked, then switched to."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import secrets
from typing import Callable

from marketlake import sqlfiles
from marketlake.build.runlog import (
    DQ_RESULTS_PREFIX,
    PIPELINE_RUNS_PREFIX,
    CheckResult,
    RunRecord,
    write_checks,
    write_run,
)
from marketlake.config import Settings
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.errors import BuildBlocked, MarketlakeError
from marketlake.ingest.raw import RAW_PREFIX
from marketlake.storage import LocalStore

TABLE = "daily_prices"
RAW_TABLE = "raw_daily_prices"
STAGING_TABLE = "staging_daily_prices"
CURATED_PREFIX = f"curated/{TABLE}"
SAMPLE_ROWS = 5


@dataclasses.dataclass
class BuildResult:
    run_id: str
    status: str  # published | skipped
    rows_written: int
    checks: list[CheckResult]
    version: str | None
    message: str = ""


class BuildObserver:
    """Hooks for progress display; the default does nothing."""

    def step(self, name: str) -> None:
        pass


def new_run_id(now: dt.datetime | None = None) -> str:
    moment = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    # Sortable by time; the suffix keeps two runs in one millisecond apart.
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{secrets.token_hex(2)}"


def input_fingerprint(store: LocalStore) -> str:
    """Raw objects (key, size, version) plus the SQL: equal means a rebuild changes nothing."""
    digest = hashlib.sha256(sqlfiles.fingerprint().encode())
    for info in store.list_objects(RAW_PREFIX):
        digest.update(f"{info.key}\0{info.size}\0{info.version}\n".encode())
    return digest.hexdigest()


def run_checks(engine: DuckDBEngine) -> list[CheckResult]:
    results = []
    for check in sqlfiles.checks():
        failing = engine.fetch_df(check.sql)
        sample = json.loads(failing.head(SAMPLE_ROWS).to_json(orient="records", date_format="iso"))
        results.append(
            CheckResult(
                check.name,
                check.severity,
                "fail" if len(failing) else "pass",
                len(failing),
                sample,
                check.description,
            )
        )
    return results


def run_build(
    settings: Settings,
    store: LocalStore,
    engine: DuckDBEngine,
    force: bool = False,
    observer: BuildObserver | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> BuildResult:
    observer = observer or BuildObserver()
    started = now()
    run_id = new_run_id(started)
    if not store.list_objects(RAW_PREFIX):
        raise MarketlakeError(
            f"no raw data under {store.root}/{RAW_PREFIX}; run `marketlake ingest` first"
        )
    fingerprint = input_fingerprint(store)
    current = engine.current_version(TABLE)
    if current and current["fingerprint"] == fingerprint and not force:
        message = f"raw data and SQL unchanged since run {current['run_id']}; nothing to build"
        record = RunRecord(
            run_id,
            started,
            now(),
            "skipped",
            version=current["run_id"],
            fingerprint=fingerprint,
            message=message,
        )
        _record(store, engine, record)
        return BuildResult(run_id, "skipped", 0, [], current["run_id"], message)

    location = f"{CURATED_PREFIX}/version={run_id}"
    checks: list[CheckResult] = []
    rows = 0
    try:
        observer.step("write")
        engine.register_csv_table(RAW_TABLE, RAW_PREFIX.rstrip("/"))
        select = sqlfiles.compose(
            sqlfiles.load("staging/daily_prices.sql"),
            {"bars": sqlfiles.load("staging/bars.sql")},
        )
        rows = engine.ctas(select, location, ["year"])
        if rows == 0:
            raise MarketlakeError("the build produced no rows: the raw zone holds no usable bars")

        observer.step("audit")
        engine.attach_location(STAGING_TABLE, location)
        checks = run_checks(engine)
        write_checks(store, run_id, checks)
        failed = [c for c in checks if c.blocks]
        if failed:
            summary = ", ".join(f"{c.check_name} ({c.failing_rows} rows)" for c in failed)
            kept = f"run {current['run_id']}" if current else "nothing"
            raise BuildBlocked(
                f"build blocked by {summary}; the published data stays as it was ({kept}). "
                f"See `marketlake status` or the dq_results table for samples"
            )

        observer.step("publish")
        engine.publish(TABLE, location, run_id, fingerprint)
    except BaseException as exc:
        # A version that was not published is never left half-written in the lake.
        store.delete_prefix(location + "/")
        status = "blocked" if isinstance(exc, BuildBlocked) else "failed"
        record = RunRecord(
            run_id,
            started,
            now(),
            status,
            rows,
            *_counts(checks),
            fingerprint=fingerprint,
            message=str(exc) or type(exc).__name__,
        )
        _record(store, engine, record)
        raise

    _prune_versions(settings, store, engine)
    record = RunRecord(
        run_id,
        started,
        now(),
        "published",
        rows,
        *_counts(checks),
        version=run_id,
        fingerprint=fingerprint,
    )
    _record(store, engine, record)
    return BuildResult(run_id, "published", rows, checks, run_id)


def _counts(checks: list[CheckResult]) -> tuple:
    failed = sum(1 for c in checks if c.status == "fail")
    return len(checks) - failed, failed


def _record(store: LocalStore, engine: DuckDBEngine, record: RunRecord) -> None:
    write_run(store, record)
    engine.register_parquet_table("pipeline_runs", PIPELINE_RUNS_PREFIX)
    if store.list_objects(DQ_RESULTS_PREFIX + "/"):
        engine.register_parquet_table("dq_results", DQ_RESULTS_PREFIX)


def _prune_versions(settings: Settings, store: LocalStore, engine: DuckDBEngine) -> None:
    """Keep the newest published versions; drop older ones and any a crash left behind."""
    published = engine.versions(TABLE)
    keep = {v["location"] for v in published[: settings.keep_versions]}
    folder = store.root / CURATED_PREFIX
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        location = f"{CURATED_PREFIX}/{child.name}"
        if child.is_dir() and child.name.startswith("version=") and location not in keep:
            store.delete_prefix(location + "/")
