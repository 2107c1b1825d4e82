"""The audit zone: pipeline_runs, dq_results, quarantined_rows and ingest_runs, one Parquet
object per run, written by the build and the ingest alike; ingest_quarantine, one object per
batch of bars the ingest or an import quarantined."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import secrets
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from marketlake.storage import ObjectStore

if TYPE_CHECKING:
    # Only a type: sqlfiles imports sqlglot, which the ingest Lambda's zip does not carry,
    # and the ingest writes its audit tables through this module.
    from marketlake.sqlfiles import Severity

PIPELINE_RUNS_PREFIX = "audit/pipeline_runs"
DQ_RESULTS_PREFIX = "audit/dq_results"
QUARANTINED_ROWS_PREFIX = "audit/quarantined_rows"
INGEST_RUNS_PREFIX = "audit/ingest_runs"
INGEST_QUARANTINE_PREFIX = "audit/ingest_quarantine"

PIPELINE_RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("started_at", pa.timestamp("ms")),  # Athena reads Parquet timestamps at ms at most
        ("finished_at", pa.timestamp("ms")),
        ("status", pa.string()),
        ("mode", pa.string()),
        ("rows_written", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("checks_passed", pa.int32()),
        ("checks_failed", pa.int32()),
        ("checks_warned", pa.int32()),
        ("version", pa.string()),
        ("message", pa.string()),
    ]
)
DQ_RESULTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("check_name", pa.string()),
        ("severity", pa.string()),
        ("status", pa.string()),
        ("failing_rows", pa.int64()),
        ("sample", pa.string()),  # JSON: up to 5 failing rows
        ("description", pa.string()),
    ]
)


CheckStatus = Literal["pass", "fail"]
RunStatus = Literal["published", "blocked", "failed", "skipped", "rolled_back"]
# "" for a run that stopped before it chose (a failed or skipped one); "none" when nothing
# was built.
RunMode = Literal["full", "incremental", "rollback", "none", ""]


@dataclasses.dataclass
class CheckResult:
    check_name: str
    severity: Severity
    status: CheckStatus
    failing_rows: int
    sample: list[dict]
    description: str = ""

    @property
    def blocks(self) -> bool:
        return self.status == "fail" and self.severity == "blocking"


def check_counts(checks: list[CheckResult]) -> tuple[int, int, int]:
    """(passed, failed, warned): a failed row check excluded rows; only blocking ones stop."""
    warned = sum(1 for c in checks if c.status == "fail" and c.severity == "warning")
    failed = sum(1 for c in checks if c.status == "fail" and c.severity != "warning")
    return len(checks) - failed - warned, failed, warned


@dataclasses.dataclass
class RunRecord:
    run_id: str
    started_at: dt.datetime
    finished_at: dt.datetime
    status: RunStatus
    rows_written: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    checks_warned: int = 0
    version: str | None = None
    mode: RunMode = ""
    rows_quarantined: int = 0
    message: str = ""


def new_run_id(now: dt.datetime | None = None) -> str:
    moment = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    # Sortable by time; the suffix keeps two runs in one millisecond apart.
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{secrets.token_hex(2)}"


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def write_run(store: ObjectStore, record: RunRecord) -> None:
    row = dataclasses.asdict(record)
    row["started_at"] = _naive_utc(record.started_at)
    row["finished_at"] = _naive_utc(record.finished_at)
    table = pa.Table.from_pylist([row], schema=PIPELINE_RUNS_SCHEMA)
    store.put_bytes(f"{PIPELINE_RUNS_PREFIX}/{record.run_id}.parquet", _parquet_bytes(table))


def write_checks(store: ObjectStore, run_id: str, results: list[CheckResult]) -> None:
    rows = [
        {
            "run_id": run_id,
            "check_name": r.check_name,
            "severity": r.severity,
            "status": r.status,
            "failing_rows": r.failing_rows,
            "sample": json.dumps(r.sample, default=str),
            "description": r.description,
        }
        for r in results
    ]
    table = pa.Table.from_pylist(rows, schema=DQ_RESULTS_SCHEMA)
    store.put_bytes(f"{DQ_RESULTS_PREFIX}/{run_id}.parquet", _parquet_bytes(table))


QUARANTINED_ROWS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("check_name", pa.string()),
        ("symbol", pa.string()),
        ("trade_date", pa.date32()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.int64()),
        # A raw row the CSV reader could not parse: where it is and why.
        ("raw_object", pa.string()),
        ("raw_line", pa.int64()),
        ("reason", pa.string()),
    ]
)


def write_quarantined(store: ObjectStore, run_id: str, frame) -> None:
    """Bars the row checks excluded, one row per (bar, failed check)."""
    rows = []
    for record in frame.to_dict("records"):
        row = {name: record.get(name) for name in QUARANTINED_ROWS_SCHEMA.names}
        row["run_id"] = run_id
        for name in (
            "open",
            "high",
            "low",
            "close",
            "trade_date",
            "symbol",
            "raw_object",
            "reason",
        ):
            if row[name] is not None and row[name] != row[name]:  # NaN / NaT -> NULL
                row[name] = None
        if row["trade_date"] is not None and hasattr(row["trade_date"], "date"):
            row["trade_date"] = row["trade_date"].date()
        for name in ("volume", "raw_line"):
            if row[name] is not None and row[name] == row[name]:
                row[name] = int(row[name])
            else:
                row[name] = None
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=QUARANTINED_ROWS_SCHEMA)
    store.put_bytes(f"{QUARANTINED_ROWS_PREFIX}/{run_id}.parquet", _parquet_bytes(table))


INGEST_RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("started_at", pa.timestamp("ms")),
        ("finished_at", pa.timestamp("ms")),
        ("provider", pa.string()),
        ("session", pa.date32()),  # the last closed session the run stored up to
        ("requests_used", pa.int32()),  # API requests this run made (retries included)
        ("quota_date", pa.date32()),  # the US/Eastern day the quota below belongs to
        ("quota_used", pa.int32()),  # requests used that day after this run
        ("calls_per_day", pa.int32()),  # the daily cap (0: none)
        ("new_bars", pa.int64()),
        ("fetched", pa.int32()),
        ("up_to_date", pa.int32()),
        ("deferred", pa.int32()),
        ("invalid", pa.int32()),
        ("failed", pa.int32()),
        ("quarantined", pa.int32()),
    ]
)


def write_ingest_run(store: ObjectStore, row: dict) -> None:
    row = dict(row)
    for name in ("started_at", "finished_at"):
        row[name] = _naive_utc(row[name])
    table = pa.Table.from_pylist([row], schema=INGEST_RUNS_SCHEMA)
    store.put_bytes(f"{INGEST_RUNS_PREFIX}/{row['run_id']}.parquet", _parquet_bytes(table))


INGEST_QUARANTINE_SCHEMA = pa.schema(
    [
        ("quarantined_at", pa.timestamp("ms")),
        ("stage", pa.string()),  # "ingest" (a provider's answer) or "import" (a CSV file)
        ("source", pa.string()),  # the provider, or "import"
        ("symbol", pa.string()),
        ("trade_date", pa.date32()),  # NULL when the date could not be read
        # As received: a value that could not be parsed is often why the bar is here.
        ("open", pa.string()),
        ("high", pa.string()),
        ("low", pa.string()),
        ("close", pa.string()),
        ("volume", pa.string()),
        ("reason", pa.string()),
        ("quarantine_key", pa.string()),  # the quarantine/ object the bars are kept in
    ]
)


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):  # NaN -> NULL
        return None
    return str(value)


def write_ingest_quarantine(
    store: ObjectStore,
    rows: list[dict],
    stage: str,
    source: str,
    quarantine_key: str,
    moment: dt.datetime,
) -> str:
    """One object for the bars one ingest or import step quarantined (each a dict with
    symbol, trade_date as a date or None, the bar's values as received, reason), so the
    pipeline-health dashboard lists them beside the build's; returns its key."""
    at = _naive_utc(moment)
    records = [
        {
            "quarantined_at": at,
            "stage": stage,
            "source": source,
            "symbol": _text(row.get("symbol")),
            "trade_date": row.get("trade_date"),
            **{name: _text(row.get(name)) for name in ("open", "high", "low", "close", "volume")},
            "reason": _text(row.get("reason")),
            "quarantine_key": quarantine_key,
        }
        for row in rows
    ]
    table = pa.Table.from_pylist(records, schema=INGEST_QUARANTINE_SCHEMA)
    key = f"{INGEST_QUARANTINE_PREFIX}/{new_run_id(moment)}.parquet"
    store.put_bytes(key, _parquet_bytes(table))
    return key


def set_aside(store: ObjectStore, key: str) -> str:
    """Move an audit object that cannot be read to quarantine/KEY (e.g.
    quarantine/audit/pipeline_runs/RUN.parquet): left in place, it fails every read of its
    table, and so `marketlake status` and the build's views, run after run. Moved, not
    deleted: it may be restored from a backup or inspected. Returns where it went."""
    target = f"quarantine/{key}"
    store.put_bytes(target, store.get_bytes(key))
    store.delete_prefix(key)
    return target


# Every audit table: its prefix in the lake and its schema (Glue or DuckDB create them
# from this, whether or not a run has written a file yet).
AUDIT_TABLES = {
    "pipeline_runs": (PIPELINE_RUNS_PREFIX, PIPELINE_RUNS_SCHEMA),
    "dq_results": (DQ_RESULTS_PREFIX, DQ_RESULTS_SCHEMA),
    "quarantined_rows": (QUARANTINED_ROWS_PREFIX, QUARANTINED_ROWS_SCHEMA),
    "ingest_runs": (INGEST_RUNS_PREFIX, INGEST_RUNS_SCHEMA),
    "ingest_quarantine": (INGEST_QUARANTINE_PREFIX, INGEST_QUARANTINE_SCHEMA),
}
