"""The audit zone: pipeline_runs and dq_results, one Parquet object per run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

from marketlake.storage import ObjectStore

PIPELINE_RUNS_PREFIX = "audit/pipeline_runs"
DQ_RESULTS_PREFIX = "audit/dq_results"

PIPELINE_RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("started_at", pa.timestamp("ms")),  # Athena reads Parquet timestamps at ms at most
        ("finished_at", pa.timestamp("ms")),
        ("status", pa.string()),
        ("rows_written", pa.int64()),
        ("checks_passed", pa.int32()),
        ("checks_failed", pa.int32()),
        ("version", pa.string()),
        ("fingerprint", pa.string()),
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


@dataclasses.dataclass
class CheckResult:
    check_name: str
    severity: str
    status: str  # "pass" or "fail"
    failing_rows: int
    sample: list[dict]
    description: str = ""

    @property
    def blocks(self) -> bool:
        return self.status == "fail" and self.severity == "blocking"


@dataclasses.dataclass
class RunRecord:
    run_id: str
    started_at: dt.datetime
    finished_at: dt.datetime
    status: str  # published | blocked | failed | skipped
    rows_written: int = 0
    checks_passed: int = 0
    checks_failed: int = 0
    version: str | None = None
    fingerprint: str | None = None
    message: str = ""


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
