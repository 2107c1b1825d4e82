"""The Glue job: write -> audit -> publish on Athena, end to end over moto and FakeAthena.

S3, Glue, SNS and SQS are moto's. Athena is athena_fake.FakeAthena: it runs each statement on
DuckDB against what Glue and S3 hold, and writes CTAS output back to them, as Athena does.
The raw table comes from athena_fake.crawl_raw, the stand-in for the Glue crawler.
Also here: the job's argument parsing, and Python 3.9 compatibility of everything the Glue
entry point imports.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlglot
from athena_fake import FakeAthena, crawl_raw
from moto import mock_aws
from sqlglot import exp

from marketlake import sqlfiles
from marketlake.aws import glue_job as job
from marketlake.config import Settings, default
from marketlake.engines.athena import AthenaEngine
from marketlake.errors import BuildBlocked, ConfigError, QueryError
from marketlake.ingest.landing import quarantine_rejected
from marketlake.ingest.report import IngestReport
from marketlake.lake import raw
from marketlake.lake.state import record_landed
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.storage import S3Store
from marketlake.wap.pipeline import run_build
from marketlake.wap.publish import table_checks as table_checks_of

REGION = "us-east-1"
BUCKET = "marketlake-glue-job-test"
DATABASE = "marketlake"
WORKGROUP = "marketlake-wg"
SYMBOLS = ("AAA", "BBB")
FIRST_INGEST = dt.date(2024, 2, 1)
FIRST_BARS = (dt.date(2023, 11, 1), dt.date(2024, 1, 31))
SECOND_INGEST = dt.date(2024, 2, 8)
SECOND_BARS = (dt.date(2024, 2, 1), dt.date(2024, 2, 7))
UTC = dt.timezone.utc
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    # Not on Glue: the job must take its argparse branch (a None entry makes import fail).
    monkeypatch.setitem(sys.modules, "awsglue", None)
    monkeypatch.setitem(sys.modules, "awsglue.utils", None)


class Lake:
    """A bucket, a Glue database, an alerts topic read through an SQS queue, FakeAthena."""

    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.glue = boto3.client("glue", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.s3.create_bucket(Bucket=BUCKET)
        self.glue.create_database(DatabaseInput={"Name": DATABASE})
        self.topic = self.sns.create_topic(Name="marketlake-alerts")["TopicArn"]
        self.queue = self.sqs.create_queue(QueueName="marketlake-alerts")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn)
        self.store = S3Store(BUCKET, client=self.s3)
        self.athena = FakeAthena(self.glue, self.s3, page_size=10)  # pages in every fetch

    # -- the raw zone --------------------------------------------------------------------

    def land(
        self,
        ingest_date: dt.date,
        bars: tuple,
        ingested_at: str,
        bad_every: int = 0,
        crawl: bool = True,
    ) -> int:
        """Raw CSV as ingest writes it (every `bad_every`-th bar with high and low swapped,
        an impossible bar), then the crawler's pass. Returns the number of bars landed."""
        provider = SyntheticProvider(seed=7)
        landed = 0
        for symbol in SYMBOLS:
            frame = raw.bars_to_frame(
                symbol, provider.fetch_daily(symbol, *bars), "synthetic", ingested_at
            )
            if bad_every:
                bad = frame.index % bad_every == 0
                frame.loc[bad, ["high", "low"]] = frame.loc[bad, ["low", "high"]].to_numpy()
            key, data = raw.raw_key(ingest_date, symbol), raw.frame_to_csv(frame)
            self.store.put_bytes(key, data)
            record_landed(self.store, key, data, frame["trade_date"])  # as ingest does
            landed += len(frame)
        if crawl:
            crawl_raw(self.glue, self.s3, BUCKET, DATABASE)
        return landed

    # -- running --------------------------------------------------------------------------

    def engine(self, run_id: str = "scratch") -> AthenaEngine:
        return AthenaEngine(
            DATABASE,
            WORKGROUP,
            f"s3://{BUCKET}",
            run_id,
            athena=self.athena,
            glue=self.glue,
            s3_store=self.store,
            poll_seconds=0.0,
            sleep=lambda seconds: None,
        )

    def build(self, now: dt.datetime, run_id: str = "scratch"):
        engine = self.engine(run_id)
        with engine:
            result = run_build(Settings.from_env({}), self.store, engine, now=lambda: now)
        return result, engine

    def argv(self, *extra: str) -> list[str]:
        return [
            "wap_job.py",
            "--JOB_ID",
            "j_0123",
            "--JOB_RUN_ID",
            "jr_0123",
            "--job-bookmark-option",
            "job-bookmark-disable",
            "--lake_bucket",
            BUCKET,
            "--glue_database",
            DATABASE,
            "--athena_workgroup",
            WORKGROUP,
            "--alerts_topic_arn",
            self.topic,
            *extra,
        ]

    def run_job(self, *extra: str) -> dict:
        return job.run(
            self.argv(*extra), athena=self.athena, glue=self.glue, s3=self.s3, sns=self.sns
        )

    # -- looking ------------------------------------------------------------------------

    def keys(self, prefix: str) -> list[str]:
        return [info.key for info in self.store.list_objects(prefix)]

    def tables(self) -> set[str]:
        pages = self.glue.get_paginator("get_tables").paginate(DatabaseName=DATABASE)
        return {t["Name"] for page in pages for t in page["TableList"]}

    def version_table(self, view: str = "daily_prices") -> str:
        """The table the view daily_prices selects from, read from its Glue entry."""
        entry = self.glue.get_table(DatabaseName=DATABASE, Name=view)["Table"]
        assert entry["TableType"] == "VIRTUAL_VIEW"
        text = entry["ViewOriginalText"]
        body = json.loads(base64.b64decode(text[len("/* Presto View: ") : -len(" */")]))
        select = sqlglot.parse_one(body["originalSql"], read="athena")
        assert select.sql("athena") == f"SELECT * FROM {select.find(exp.Table).name}"
        return select.find(exp.Table).name

    def partitions(self, table: str = "daily_prices") -> dict[str, str]:
        """Partitions of a table, or of the version table under the daily_prices view."""
        if table == "daily_prices":
            table = self.version_table()
        pages = self.glue.get_paginator("get_partitions").paginate(
            DatabaseName=DATABASE, TableName=table
        )
        return {
            p["Values"][0]: p["StorageDescriptor"]["Location"]
            for page in pages
            for p in page["Partitions"]
        }

    def published_snapshot(self) -> tuple:
        """The Glue table, its partitions and the curated objects (key, ETag), as readers
        and a byte-for-byte comparison see them."""
        view = self.glue.get_table(DatabaseName=DATABASE, Name="daily_prices")["Table"]
        version = self.version_table()
        table = self.glue.get_table(DatabaseName=DATABASE, Name=version)["Table"]
        pages = self.glue.get_paginator("get_partitions").paginate(
            DatabaseName=DATABASE, TableName=version
        )
        partitions = sorted(
            (p["Values"], p["StorageDescriptor"]) for page in pages for p in page["Partitions"]
        )
        objects = [(o.key, o.version) for o in self.store.list_objects("curated/")]
        return (
            view["ViewOriginalText"],
            table["StorageDescriptor"],
            table["PartitionKeys"],
            partitions,
            objects,
        )

    def audit(self, name: str) -> pd.DataFrame:
        frames = [
            pq.read_table(io.BytesIO(self.store.get_bytes(key))).to_pandas()
            for key in self.keys(f"audit/{name}/")
        ]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def alerts(self) -> list[dict]:
        answer = self.sqs.receive_message(
            QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]

    def read(self, sql: str) -> pd.DataFrame:
        """What a reader sees through Athena now."""
        return self.engine("reader").fetch_df(sql)


@pytest.fixture
def lake():
    with mock_aws():
        yield Lake()


FIRST_NOW = dt.datetime(2024, 2, 1, 23, 0, tzinfo=UTC)
SECOND_NOW = dt.datetime(2024, 2, 8, 23, 0, tzinfo=UTC)


def ingested(day: dt.date) -> str:
    return f"{day.isoformat()} 22:15:00.000"


def statement_kind(sql: str) -> str:
    tree = sqlglot.parse_one(sql, read="athena")
    if isinstance(tree, exp.Create) and tree.args.get("kind") == "TABLE" and tree.expression:
        return "ctas"
    if isinstance(tree, exp.Create) and tree.args.get("kind") == "VIEW":
        return "view"
    if isinstance(tree, exp.Query):
        return "select"
    return type(tree).__name__


def ctas_location(sql: str) -> tuple[str, list[str]]:
    tree = sqlglot.parse_one(sql, read="athena")
    location, partitioned_by = "", []
    for prop in tree.args["properties"].expressions:
        if isinstance(prop, exp.PartitionedByProperty):
            partitioned_by = [e.name for e in prop.this.expressions]
        elif prop.name.lower() == "external_location":
            location = prop.args["value"].name
    return location, partitioned_by


# -- the flow -------------------------------------------------------------------------------


def test_a_first_build_publishes_daily_prices_through_glue(lake):
    landed = lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST))
    result, engine = lake.build(FIRST_NOW)
    sent = list(lake.athena.statements)
    run = result.run_id

    assert (result.status, result.mode, result.years) == ("published", "full", [2023, 2024])
    assert result.rows_written == landed
    version = f"curated/daily_prices/version={run}"
    assert lake.partitions() == {
        "2023": f"s3://{BUCKET}/{version}/year=2023/",
        "2024": f"s3://{BUCKET}/{version}/year=2024/",
    }
    # daily_prices is a view over the version's own table, partitioned by year.
    assert lake.version_table() == f"daily_prices_v_{run.lower().replace('-', '_')}"
    table = lake.glue.get_table(DatabaseName=DATABASE, Name=lake.version_table())["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["year"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/{version}/"
    columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    assert columns[:7] == ["symbol", "trade_date", "open", "high", "low", "close", "volume"]
    assert "year" not in columns and "rsi_14" in columns
    for year in ("2023", "2024"):
        assert lake.keys(f"{version}/year={year}/")

    # Readers see the new version through the Glue table, whole.
    seen = lake.read(
        "SELECT count(*) AS n, count(DISTINCT symbol) AS symbols, min(trade_date) AS first, "
        "max(trade_date) AS last FROM daily_prices"
    )
    assert seen.loc[0, "n"] == landed
    assert seen.loc[0, "symbols"] == len(SYMBOLS)
    assert seen.loc[0, "first"] == dt.date(2023, 11, 1)
    assert seen.loc[0, "last"] == dt.date(2024, 1, 31)

    runs = lake.audit("pipeline_runs")
    assert runs[["run_id", "status", "rows_written"]].values.tolist() == [
        [run, "published", landed]
    ]
    checks = lake.audit("dq_results")
    assert set(checks["run_id"]) == {run}
    expected = {c.name for c in sqlfiles.checks("rows") + sqlfiles.checks("table")}
    # raw_rows_readable: rows the CSV reader rejects (none on Athena, whose SerDe reads all).
    assert expected | {"bad_row_share", "raw_rows_readable"} == set(checks["check_name"])
    assert {"daily_prices", "pipeline_runs", "dq_results", "raw_daily_prices"} <= lake.tables()
    assert not [t for t in lake.tables() if t.startswith("tmp_")]
    assert lake.keys("tmp/") == []

    # -- the statements Athena received ----------------------------------------------------
    assert engine.statements == sent
    assert set(lake.athena.contexts()) == {(DATABASE, WORKGROUP)}
    kinds = [statement_kind(sql) for sql in sent]
    assert set(kinds) <= {"ctas", "select", "view"}  # no DROP/ALTER/INSERT/MSCK
    ctases = [sql for sql, kind in zip(sent, kinds) if kind == "ctas"]
    versions = [sql for sql in ctases if ctas_location(sql)[1]]
    assert len(versions) == 1
    assert ctas_location(versions[0]) == (f"s3://{BUCKET}/{version}/", ["year"])
    for sql in ctases:
        if sql is not versions[0]:
            assert ctas_location(sql)[0].startswith(f"s3://{BUCKET}/tmp/athena/scratch/")
    # No bar was rejected: good_bars is another name for bars, not a copy of every bar.
    scratch = {ctas_location(sql)[0].rstrip("/").rsplit("/", 1)[1] for sql in ctases}
    assert "bars" in scratch and "good_bars" not in scratch
    at_version = sent.index(versions[0])

    def position(check) -> int:
        bound = engine.bind(check.sql)
        assert sent.count(bound) == 1, f"check {check.name} sent {sent.count(bound)} times"
        return sent.index(bound)

    row_checks = [position(c) for c in sqlfiles.checks("rows")]
    # The table checks as the build binds them (no symbol purged: purged_symbols is empty).
    table_checks = [position(c) for c in table_checks_of([])]
    assert max(row_checks) < at_version < min(table_checks)
    # After the audit: the publish, one CREATE OR REPLACE VIEW daily_prices, then the views.
    views = sorted(p.stem for p in (sqlfiles.sql_root() / "views").glob("*.sql"))
    after = sent[max(table_checks) + 1 :]
    assert (
        after[0] == f"CREATE OR REPLACE VIEW daily_prices AS SELECT * FROM {lake.version_table()}"
    )
    assert [statement_kind(sql) for sql in after[1:]] == ["view"] * len(views)
    assert [sqlglot.parse_one(sql, read="athena").this.name for sql in after[1:]] == views
    assert set(lake.athena.views) == {"daily_prices", *views}


def test_an_incremental_build_swaps_only_the_year_it_rebuilt(lake):
    first_rows = lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST))
    first, _ = lake.build(FIRST_NOW)
    new_rows = lake.land(SECOND_INGEST, SECOND_BARS, ingested(SECOND_INGEST))
    second, _ = lake.build(SECOND_NOW)

    assert (second.status, second.mode, second.years) == ("published", "incremental", [2024])
    assert second.new_rows == new_rows
    assert lake.partitions() == {
        "2023": f"s3://{BUCKET}/curated/daily_prices/version={first.run_id}/year=2023/",
        "2024": f"s3://{BUCKET}/curated/daily_prices/version={second.run_id}/year=2024/",
    }
    seen = lake.read(
        "SELECT count(*) AS n, count(DISTINCT concat(symbol, CAST(trade_date AS varchar))) "
        "AS distinct_bars, max(trade_date) AS last FROM daily_prices"
    )
    assert seen.loc[0, "n"] == first_rows + new_rows == seen.loc[0, "distinct_bars"]
    assert seen.loc[0, "last"] == dt.date(2024, 2, 7)
    # The first version's files stay for rollback; only the Glue pointer moved.
    assert lake.keys(f"curated/daily_prices/version={first.run_id}/year=2024/")
    assert lake.audit("pipeline_runs")["status"].tolist() == ["published", "published"]


def test_bars_not_yet_crawled_are_not_lost(lake):
    first_rows = lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST))
    lake.build(FIRST_NOW)
    new_rows = lake.land(SECOND_INGEST, SECOND_BARS, ingested(SECOND_INGEST), crawl=False)
    lake.build(SECOND_NOW)  # ran before the crawler added ingest_date=2024-02-08
    crawl_raw(lake.glue, lake.s3, BUCKET, DATABASE)
    lake.build(SECOND_NOW + dt.timedelta(hours=1))
    seen = lake.read("SELECT count(*) AS n FROM daily_prices")
    assert seen.loc[0, "n"] == first_rows + new_rows


def test_a_raw_object_that_lost_rows_on_s3_blocks_the_build_naming_it(lake):
    first_rows = lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST))
    lake.build(FIRST_NOW)
    lake.land(SECOND_INGEST, SECOND_BARS, ingested(SECOND_INGEST))
    key = raw.raw_key(SECOND_INGEST, "AAA")
    lines = lake.store.get_bytes(key).split(b"\r\n")
    lake.store.put_bytes(key, b"\r\n".join(lines[:2]) + b"\r\n")  # the header and one row
    # On S3 the check is the listing's ETag against the one recorded at the landing's PUT.
    recorded = rf"its {len(lines) - 2} rows were recorded with etag:"
    with pytest.raises(
        BuildBlocked, match=rf"raw object {key} changed since it landed \({recorded}"
    ):
        lake.build(SECOND_NOW)
    assert lake.read("SELECT count(*) AS n FROM daily_prices").loc[0, "n"] == first_rows
    assert lake.audit("pipeline_runs")["status"].tolist() == ["published", "blocked"]


def test_athenas_quarantine_log_reads_the_ingests_quarantines_beside_the_builds(lake):
    """Bars the ingest quarantined on S3 (audit/ingest_quarantine, written as the Lambda
    writes it) and bars the build's row checks kept out, in one view through Athena."""
    lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST), bad_every=50)  # 2%: publishes
    moment = dt.datetime(2024, 2, 1, 22, 15, tzinfo=UTC)
    report = IngestReport("alphavantage", moment, dt.date(2024, 1, 31), FIRST_INGEST)
    rejected = pd.DataFrame(
        [
            {
                "trade_date": "2024-01-30",
                "open": "1",
                "high": "2",
                "low": "1",
                "close": "1",
                "volume": "-5",
                "reason": "volume is negative",
            }
        ]
    )
    key = quarantine_rejected(lake.store, report, "AAA", rejected, "alphavantage", moment)
    assert lake.keys("audit/ingest_quarantine/")

    lake.run_job()
    assert "ingest_quarantine" in lake.tables()
    log = lake.read(
        "SELECT stage, source, symbol, trade_date, volume, reason, quarantine_key, "
        "quarantined_at FROM quarantine_log ORDER BY stage, symbol, trade_date"
    )
    ingest = log[log["stage"] == "ingest"].to_dict("records")
    assert ingest == [
        {
            "stage": "ingest",
            "source": "alphavantage",
            "symbol": "AAA",
            "trade_date": dt.date(2024, 1, 30),
            "volume": "-5",
            "reason": "volume is negative",
            "quarantine_key": key,
            "quarantined_at": pd.Timestamp("2024-02-01 22:15:00"),
        }
    ]
    builds = log[log["stage"] == "build"]
    assert len(builds) and set(builds["symbol"]) == set(SYMBOLS)
    assert builds["reason"].str.contains("high_is_highest").any()


def test_a_blocked_first_build_publishes_nothing_and_alerts(lake):
    lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST), bad_every=5)  # 20% impossible
    with pytest.raises(BuildBlocked, match="bad_row_share") as info:
        lake.run_job()

    assert "daily_prices" not in lake.tables()
    assert lake.keys("curated/") == []
    runs = lake.audit("pipeline_runs")
    assert runs["status"].tolist() == ["blocked"]
    assert "bad_row_share" in runs.loc[0, "message"]
    checks = lake.audit("dq_results")
    failed = set(checks.loc[checks["status"] == "fail", "check_name"])
    assert {"bad_row_share", "high_is_highest", "low_is_lowest"} <= failed
    assert lake.keys("audit/quarantined_rows/")
    assert not [t for t in lake.tables() if t.startswith("tmp_")]
    assert lake.keys("tmp/") == []
    assert "view" not in {statement_kind(sql) for sql in lake.athena.statements}

    (alert,) = lake.alerts()
    assert alert["Subject"] == "marketlake: daily_prices build blocked"
    assert alert["Message"] == str(info.value)


def test_a_blocked_later_build_leaves_the_published_table_as_it_was(lake, monkeypatch):
    # Through job.main, as Glue runs it: 0 when it publishes, 1 when the audit blocks.
    real_run = job.run
    monkeypatch.setattr(
        job,
        "run",
        lambda argv: real_run(argv, athena=lake.athena, glue=lake.glue, s3=lake.s3, sns=lake.sns),
    )
    lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST))
    assert job.main(lake.argv()) == 0
    assert set(lake.partitions()) == {"2023", "2024"}
    assert lake.alerts() == []
    before = lake.published_snapshot()
    registry = lake.store.get_bytes("state/versions/daily_prices.json")

    lake.land(SECOND_INGEST, SECOND_BARS, ingested(SECOND_INGEST), bad_every=2)
    assert job.main(lake.argv()) == 1

    assert lake.published_snapshot() == before  # Glue pointer and every curated byte
    assert lake.store.get_bytes("state/versions/daily_prices.json") == registry
    runs = lake.audit("pipeline_runs").sort_values("started_at")
    assert runs["status"].tolist() == ["published", "blocked"]
    assert "bad_row_share" in runs["message"].iloc[1]
    blocked = runs["run_id"].iloc[1]
    assert lake.keys(f"curated/daily_prices/version={blocked}/") == []
    (alert,) = lake.alerts()
    assert "bad_row_share" in alert["Message"]


FAILURES = {
    # A table check on the written version: the version's objects exist when it fails.
    "table check": (
        "as copies",
        "HIVE_CURSOR_ERROR: Failed to read Parquet file: s3://x/part-0 "
        "(Service: Amazon S3; Status Code: 503; Error Code: SlowDown)",
    ),
    # The version's CTAS itself.
    "version ctas": (
        "partitioned_by",
        "HIVE_TOO_MANY_OPEN_PARTITIONS: Exceeded limit of 100 open writers for partitions",
    ),
}


@pytest.mark.parametrize("where", sorted(FAILURES))
def test_a_failed_query_stops_the_job_with_athenas_message(lake, where):
    marker, reason = FAILURES[where]
    lake.athena.fail = lambda sql: reason if marker in sql.lower() else None
    lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST))
    with pytest.raises(QueryError) as info:
        lake.run_job()
    assert reason in str(info.value)

    assert "daily_prices" not in lake.tables()
    assert lake.keys("curated/") == []  # the version prefix is gone
    executions = [lake.athena.executions[q] for q in lake.athena.order]
    failed = [e for e in executions if e["State"] == "FAILED"]
    assert len(failed) == 1 and failed[0] is executions[-1]  # nothing ran after it
    if where == "table check":
        version = next(e for e in executions if "partitioned_by" in e["Query"].lower())
        assert version["State"] == "SUCCEEDED"  # written, then removed
    runs = lake.audit("pipeline_runs")
    assert runs["status"].tolist() == ["failed"]
    assert reason in runs.loc[0, "message"]
    assert not [t for t in lake.tables() if t.startswith("tmp_")]
    assert lake.keys("tmp/") == []


# -- arguments ------------------------------------------------------------------------------

REQUIRED_ARGS = [
    "--lake_bucket",
    "lake-bucket",
    "--glue_database",
    "marketlake",
    "--athena_workgroup",
    "wg",
]


def test_parse_args_needs_the_required_arguments(capsys):
    for missing in ("--lake_bucket", "--glue_database", "--athena_workgroup"):
        argv = list(REQUIRED_ARGS)
        at = argv.index(missing)
        del argv[at : at + 2]
        with pytest.raises(SystemExit) as info:
            job.parse_args(["wap_job.py", *argv])
        assert info.value.code == 2
        assert missing in capsys.readouterr().err


def test_parse_args_defaults_and_ignores_glues_own_arguments():
    args = job.parse_args(
        [
            "wap_job.py",
            "--JOB_ID",
            "x",
            "--job-bookmark-option",
            "y",
            *REQUIRED_ARGS,
            "--keep_versions",
            "9",
            "--TempDir",
            "s3://tmp/",
        ]
    )
    assert args == {
        "lake_bucket": "lake-bucket",
        "glue_database": "marketlake",
        "athena_workgroup": "wg",
        "lake_prefix": "",
        "alerts_topic_arn": "",
        "full_build": "false",
        "max_bad_row_pct": "",  # absent: Settings' own default (below)
        "keep_versions": "9",
    }


def test_an_absent_build_setting_is_settings_own_default():
    """The job repeats no default of config.py: an argument left out (or empty) is the
    default Settings declares, one given is that value, checked as the environment is."""
    absent = job.build_settings(job.parse_args(["wap_job.py", *REQUIRED_ARGS]))
    assert absent.max_bad_row_pct == default("max_bad_row_pct")
    assert absent.keep_versions == default("keep_versions")
    given = job.build_settings(
        job.parse_args(
            ["wap_job.py", *REQUIRED_ARGS, "--max_bad_row_pct", "2.5", "--keep_versions", "9"]
        )
    )
    assert (given.max_bad_row_pct, given.keep_versions) == (2.5, 9)
    bad = job.parse_args(["wap_job.py", *REQUIRED_ARGS, "--keep_versions", "0"])
    with pytest.raises(ConfigError, match="MARKETLAKE_KEEP_VERSIONS=0 must be between 1 and 1000"):
        job.build_settings(bad)


def test_parse_args_asks_get_resolved_options_only_for_present_names(monkeypatch):
    asked: list[list[str]] = []

    def get_resolved_options(args, options):
        # Like Glue's: every name asked for must be in argv, else the job stops.
        asked.append(list(options))
        for name in options:
            assert f"--{name}" in args, f"getResolvedOptions asked for absent --{name}"
        return {name: args[args.index(f"--{name}") + 1] for name in options}

    utils = types.ModuleType("awsglue.utils")
    utils.getResolvedOptions = get_resolved_options
    package = types.ModuleType("awsglue")
    package.utils = utils
    monkeypatch.setitem(sys.modules, "awsglue", package)
    monkeypatch.setitem(sys.modules, "awsglue.utils", utils)

    argv = ["wap_job.py", "--JOB_ID", "x", *REQUIRED_ARGS, "--full_build", "true"]
    args = job.parse_args(argv)
    assert asked == [["lake_bucket", "glue_database", "athena_workgroup", "full_build"]]
    assert args["full_build"] == "true"
    assert args["lake_bucket"] == "lake-bucket"
    assert args["max_bad_row_pct"] == ""  # absent: Settings' default, not asked for
    assert set(args) == set(job.REQUIRED) | set(job.OPTIONAL)


# -- Python 3.9 ------------------------------------------------------------------------------

ENTRY = REPO / "glue" / "wap_job.py"
SRC = REPO / "src"


def _module_files(name: str) -> list[Path]:
    """The files importing `name` runs: each package's __init__.py and the module itself."""
    parts = name.split(".")
    found = []
    for i in range(1, len(parts) + 1):
        base = SRC.joinpath(*parts[:i])
        if (base / "__init__.py").is_file():
            found.append(base / "__init__.py")
        elif base.with_suffix(".py").is_file():
            found.append(base.with_suffix(".py"))
            break  # what follows is a name inside the module
        else:
            break
    return found


def import_closure(entry: Path) -> list[Path]:
    """entry and every marketlake module it imports, directly or not, at any depth
    (imports inside functions included: they run on Glue too)."""
    todo, seen = [entry], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        # The package a relative import starts from (for a package's __init__, itself).
        package = list(path.relative_to(SRC).parts[:-1]) if SRC in path.parents else []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = package[: len(package) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                if name.split(".")[0] == "marketlake":
                    todo.extend(_module_files(name))
    return sorted(seen)


def python39() -> str:
    candidates = [
        os.environ.get("MARKETLAKE_PYTHON39", ""),
        "/root/.pyenv/versions/3.9.18/bin/python",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("no Python 3.9 interpreter (set MARKETLAKE_PYTHON39): 3.9 check not run")


def test_the_import_closure_follows_the_imports():
    closure = {p.relative_to(REPO).as_posix() for p in import_closure(ENTRY)}
    for needed in (
        "glue/wap_job.py",
        "src/marketlake/__init__.py",
        "src/marketlake/wap/__init__.py",
        "src/marketlake/aws/__init__.py",
        "src/marketlake/aws/glue_job.py",
        "src/marketlake/wap/pipeline.py",
        "src/marketlake/lake/audit.py",
        "src/marketlake/engines/athena.py",
        "src/marketlake/storage/__init__.py",
        "src/marketlake/storage/s3.py",
        "src/marketlake/sqlfiles.py",
    ):
        assert needed in closure
    assert not any(p.startswith("src/marketlake/cli/") for p in closure)  # not on Glue's path


def test_the_glue_job_and_its_imports_compile_on_python_39(tmp_path):
    files = [str(p) for p in import_closure(ENTRY)]
    script = (
        "import py_compile, sys\n"
        "for i, path in enumerate(sys.argv[2:]):\n"
        "    py_compile.compile(path, cfile=f'{sys.argv[1]}/{i}.pyc', doraise=True)\n"
    )
    done = subprocess.run(
        [python39(), "-c", script, str(tmp_path), *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_path.glob("*.pyc"))) == len(files)


STUB_IMPORT = """
import importlib, importlib.abc, importlib.machinery, sys, types
from unittest import mock

STUBBED = set(sys.argv[2].split(","))

class Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = mock.MagicMock(name=f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value

class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in STUBBED:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None
    def create_module(self, spec):
        module = Stub(spec.name)
        module.__path__ = []
        return module
    def exec_module(self, module):
        pass

sys.meta_path.insert(0, Finder())
sys.path.insert(0, sys.argv[1])
for name in sys.argv[3:]:
    importlib.import_module(name)
print("imported", len(sys.argv) - 3)
"""


def test_the_glue_job_and_its_imports_load_on_python_39():
    """Compiling is not enough: annotations without `from __future__ import annotations`,
    `X | None` outside annotations or dataclass(slots=...) fail only when a module runs.
    Third-party packages (not installed for 3.9 here) are stubbed."""
    closure = import_closure(ENTRY)
    modules = [
        ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for p in closure
        if SRC in p.parents
    ]
    third_party = set()
    for path in closure:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                third_party |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                third_party.add(node.module.split(".")[0])
    third_party -= set(sys.stdlib_module_names) | {"marketlake", "__future__"}
    assert {"pandas", "pyarrow", "sqlglot"} <= third_party
    done = subprocess.run(
        [python39(), "-c", STUB_IMPORT, str(SRC), ",".join(sorted(third_party)), *modules],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"imported {len(modules)}"


# -- Grafana's filters reach the version table through the view -----------------------------


def _panels_over_daily_prices() -> list[tuple[str, str]]:
    """(panel title, rawSQL) of every dashboard panel reading daily_prices or price_history."""
    found = []
    for path in sorted(Path(sqlfiles.sql_root().parent / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                sql = target.get("rawSQL", "")
                if re.search(r"\bFROM (daily_prices|price_history)\b", sql):
                    found.append((panel["title"], sql))
    return found


def _scan_filters(plan: str, table: str) -> str:
    """The Filters of the scan of `table` in DuckDB's EXPLAIN text."""
    blocks = plan.split("╭─")
    scans = [b for b in blocks if re.search(rf"Table: (\w+\.)*{table}\b", b)]
    assert len(scans) == 1, f"no single scan of {table} in:\n{plan}"
    assert "Filters:" in scans[0], scans[0]
    return scans[0].split("Filters:", 1)[1]


def test_grafanas_filters_reach_the_version_table_through_the_view(lake):
    """Athena (Trino) inlines a view into the query that reads it; a SELECT * view keeps
    every predicate on year, trade_date and symbol on the version table's scan, where the
    year partitions are pruned and Parquet row groups skipped. The fake plans the same
    inlined query on DuckDB: its EXPLAIN shows the filters on the version table's scan."""
    from marketlake.dashboards.grafana import TimeRange, Variable, expand

    lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST))
    lake.build(FIRST_NOW)
    version = lake.version_table()
    window = TimeRange.days(dt.date(2024, 1, 2), dt.date(2024, 1, 31))
    symbol = {"symbol": Variable("symbol", ["AAA"], is_list=True)}
    panels = _panels_over_daily_prices()
    assert len(panels) >= 4
    for title, raw_sql in panels:
        sql = expand(raw_sql, symbol, window)
        filters = _scan_filters(lake.athena.explain(sql, DATABASE), version)
        assert "trade_date" in filters and "symbol" in filters, (title, filters)
        assert lake.read(sql).shape[0] > 0, title  # and the panel's query runs on Athena
    year = lake.athena.explain(
        "SELECT symbol, close FROM daily_prices WHERE year = 2024 AND symbol IN ('AAA')", DATABASE
    )
    assert "year" in _scan_filters(year, version)
