"""`marketlake --home s3://bucket` on moto's S3 and Glue, with FakeAthena for Athena.

In-process through typer's CliRunner, not a subprocess: Athena is athena_fake.FakeAthena, a
Python object that runs the SQL on DuckDB over moto; moto's own Athena (all a subprocess
could reach through ThreadedMotoServer) records queries but never runs them."""

from __future__ import annotations

import json
import os

import boto3
import pytest
from athena_session import AthenaSession, query_workgroup
from moto import mock_aws
from test_glue_job import BUCKET, DATABASE, FIRST_BARS, FIRST_INGEST, FIRST_NOW, REGION, Lake
from test_glue_job import ingested as ingested_at
from typer.testing import CliRunner

from marketlake import lakes
from marketlake.cli import app
from marketlake.lake.state import IngestState, SymbolState, save_state
from marketlake.lakes import DESCRIPTOR_KEY

QUERY_WORKGROUP = "marketlake"  # the enforcing workgroup (terraform/athena.tf), not the build's
DESCRIPTOR = {
    "format": 1,
    "region": REGION,
    "glue_database": DATABASE,
    "athena_workgroup": QUERY_WORKGROUP,
    "glue_job": "marketlake-wap",
    "glue_workflow": "marketlake-build",
    "raw_crawler": "marketlake-raw-crawler",
}


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MARKETLAKE_HOME", raising=False)
    monkeypatch.chdir(tmp_path)  # where a mistaken local lake would appear


@pytest.fixture
def lake(monkeypatch):
    with mock_aws():
        made = Lake()
        regions: list = []

        def client(service, region):
            regions.append((service, region))
            if service == "athena":
                return made.athena
            return boto3.client(service, region_name=region or REGION)

        def session(region):  # awswrangler's way to Athena (query)
            regions.append(("session", region))
            made.sessions.append(AthenaSession(made.athena, region))
            return made.sessions[-1]

        monkeypatch.setattr(lakes, "client", client)
        monkeypatch.setattr(lakes, "session", session)
        made.regions, made.sessions = regions, []
        made.results = query_workgroup(made.athena, made.s3, QUERY_WORKGROUP)
        yield made


def deploy(lake: Lake, descriptor: dict = DESCRIPTOR) -> None:
    lake.s3.put_object(Bucket=BUCKET, Key=DESCRIPTOR_KEY, Body=json.dumps(descriptor).encode())


def built(lake: Lake) -> Lake:
    deploy(lake)
    lake.land(FIRST_INGEST, FIRST_BARS, ingested_at(FIRST_INGEST))
    result, _ = lake.build(FIRST_NOW, run_id="20240201T230000Z")
    lake.run_id = result.run_id
    state = IngestState(quota_date="2024-02-01", quota_used=2, deferred=["CCC"])
    for symbol in ("AAA", "BBB"):
        state.symbols[symbol] = SymbolState("2024-01-31", "synthetic", "2024-02-01T22:15:00")
    save_state(lake.store, state)  # as the Lambda's ingest leaves it
    return lake


def cli(*args: str, home: str = f"s3://{BUCKET}"):
    return CliRunner().invoke(app, ["--home", home, *args])


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# -- status and query on a built lake ------------------------------------------------------


def test_status_reads_runs_versions_checks_and_watermarks_from_s3_and_athena(lake):
    built(lake)
    before = len(lake.athena.statements)
    result = cli("status")
    assert result.exit_code == 0, result.output
    assert f"lake: s3://{BUCKET}/" in result.stdout
    assert lake.run_id in result.stdout
    assert "yes" in result.stdout  # the current version
    assert "checks of run" in result.stdout
    assert "ingest watermarks" in result.stdout
    assert "AAA" in result.stdout and "2024-01-31" in result.stdout
    assert "used on 2024-02-01 (US/Eastern): 2; 1 symbol(s) deferred" in result.stdout
    sent = lake.athena.contexts()[before:]
    assert sent and set(sent) == {(DATABASE, QUERY_WORKGROUP)}
    assert len(sent) == 2  # pipeline_runs and dq_results: a few small queries
    assert ("athena", REGION) in lake.regions  # the descriptor's region


def test_query_runs_in_the_workgroup_and_prints_each_format(lake):
    built(lake)
    sql = "SELECT symbol, count(*) AS n FROM daily_prices GROUP BY symbol ORDER BY symbol"
    as_csv = cli("query", sql, "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    lines = as_csv.stdout.splitlines()
    assert lines[0] == "symbol,n"
    assert [line.split(",")[0] for line in lines[1:]] == ["AAA", "BBB"]
    count = int(lines[1].split(",")[1])
    assert count > 0
    as_json = cli("query", sql, "-f", "json")
    assert json.loads(as_json.stdout)[0] == {"symbol": "AAA", "n": count}
    table = cli("query", sql)
    assert "AAA" in table.stdout and "2 row(s)" in table.stdout
    assert lake.athena.contexts()[-1] == (DATABASE, QUERY_WORKGROUP)


def test_query_prints_nulls_as_empty_and_null(lake):
    built(lake)
    sql = "SELECT symbol, sma_50 FROM daily_prices ORDER BY trade_date, symbol LIMIT 1"
    as_json = json.loads(cli("query", sql, "-f", "json").stdout)
    assert as_json == [{"symbol": "AAA", "sma_50": None}]  # the window is not full yet


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE daily_prices",
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO pipeline_runs SELECT * FROM pipeline_runs",
        "SELECT 1; DROP VIEW daily_prices",
    ],
)
def test_query_refuses_what_is_not_a_read_before_athena_sees_it(lake, sql):
    built(lake)
    before = list(lake.athena.statements)
    line = one_error_line(cli("query", sql))
    assert "read-only" in line or "one SQL statement" in line
    assert lake.athena.statements == before


# -- what has no lake to read --------------------------------------------------------------


def test_a_bucket_without_the_descriptor_is_not_a_deployed_lake(lake):
    for command in (["status"], ["query", "SELECT 1"]):
        line = one_error_line(cli(*command))
        assert f"s3://{BUCKET}/ is not a deployed marketlake lake" in line
        assert "make deploy" in line and "bucket name" in line


def test_a_deployed_bucket_with_nothing_in_it_has_no_lake_yet(lake):
    deploy(lake)
    line = one_error_line(cli("status"))
    assert f"no lake yet at s3://{BUCKET}/" in line
    assert not lake.athena.statements


def test_a_bucket_that_does_not_exist_is_named_with_the_remedy(lake):
    line = one_error_line(cli("status", home="s3://no-such-marketlake-bucket"))
    assert "s3://no-such-marketlake-bucket/" in line
    assert "NoSuchBucket" in line and "check LAKE_BUCKET (or --home)" in line


def test_no_credentials_is_one_line_with_the_remedy(monkeypatch):
    # Outside moto, which supplies credentials of its own; botocore refuses to sign before
    # any request, and the endpoint is a closed local port should one ever go out.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    line = one_error_line(cli("status"))
    assert f"s3://{BUCKET}/" in line and "no valid AWS credentials" in line


def test_a_descriptor_of_a_newer_format_is_refused(lake):
    deploy(lake, dict(DESCRIPTOR, format=2))
    line = one_error_line(cli("status"))
    assert DESCRIPTOR_KEY in line and "format 2" in line


# -- what is refused before anything is touched -----------------------------------------------


@pytest.mark.parametrize("command", [["run"], ["dashboards"]])
def test_what_runs_only_on_a_local_lake_is_refused_in_one_line(lake, tmp_path, command):
    deploy(lake)
    line = one_error_line(cli(*command))
    assert f"`marketlake {command[0]}` runs on a local lake, not on s3://{BUCKET}/" in line
    assert ("ingest" in line) if command == ["run"] else ("Grafana" in line)
    assert list(tmp_path.iterdir()) == []  # no s3:/ folder
    assert lake.keys("") == [DESCRIPTOR_KEY]  # nothing written to the bucket either


def test_marketlake_home_from_the_environment_is_refused_the_same_way(lake, tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETLAKE_HOME", f"s3://{BUCKET}")
    result = CliRunner().invoke(app, ["run"])
    assert "runs on a local lake" in one_error_line(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "home", ["gs://bucket", "http://example.com/lake", "file:///tmp/lake", "abfs://c@a/x"]
)
@pytest.mark.parametrize("command", [["status"], ["import", "bars.csv"], ["run"]])
def test_other_url_schemes_are_refused_never_a_folder(tmp_path, home, command):
    line = one_error_line(cli(*command, home=home))
    scheme = home.split("://")[0]
    assert f"{scheme}:// lakes are not supported" in line
    assert "MARKETLAKE_HOME" in line and "s3://bucket[/prefix]" in line
    assert list(tmp_path.iterdir()) == []
