"""`marketlake --home s3://bucket query` through awswrangler, on moto and FakeAthena.

awswrangler starts the query in the descriptor's workgroup, waits for it, and reads the result
CSV FakeAthena writes to the workgroup's output location (athena_results), as Athena does. The
fixtures are test_cli_remote's: a deployed lake on moto whose Athena is FakeAthena, reached
by the CLI through lakes.client and (awswrangler) lakes.session."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from athena_session import RESULTS_BUCKET
from botocore.exceptions import ClientError
from test_cli_remote import (
    DESCRIPTOR,
    QUERY_WORKGROUP,
    built,
    cli,
    deploy,
    one_error_line,
)
from test_cli_remote import environment as environment  # autouse: credentials, a tmp cwd
from test_cli_remote import lake as lake
from test_glue_job import DATABASE, FIRST_NOW, REGION

from marketlake import lakes
from marketlake.config import Settings
from marketlake.engines.confined import athena_read
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.lake import raw
from marketlake.lake.state import record_landed
from marketlake.storage import LocalStore
from marketlake.wap.pipeline import run_build

PRICES = (
    "SELECT symbol, trade_date, close, volume, sma_50 FROM daily_prices "
    "WHERE trade_date >= DATE '2024-01-10' ORDER BY symbol, trade_date"
)
LITERALS = (
    "SELECT CAST(NULL AS varchar) AS nothing, DATE '2024-01-31' AS day, 1.5e0 AS half, "
    "0.1e0 AS tenth, 7 AS seven, 9007199254740993 AS big, 'a \"quoted\", text' AS words, "
    "true AS yes, TIMESTAMP '2024-01-31 09:30:00' AS at"
)
NOTHING = "SELECT symbol, trade_date FROM daily_prices WHERE symbol = 'ZZZ'"


def local_twin(lake, home):
    """The S3 lake's raw objects, landed in a local lake and built there on DuckDB at the same
    time: the lake a query without --home s3:// reads."""
    store = LocalStore(home)
    for key in lake.keys(raw.RAW_PREFIX):
        data = lake.store.get_bytes(key)
        store.put_bytes(key, data)
        dates = pd.read_csv(io.BytesIO(data), dtype=str)["trade_date"]
        record_landed(store, key, data, dates)
    with DuckDBEngine(home) as engine:
        run_build(Settings.from_env({}), store, engine, now=lambda: FIRST_NOW, run_id=lake.run_id)
    return home


@pytest.fixture
def twins(lake, tmp_path):
    built(lake)
    return lake, str(local_twin(lake, tmp_path / "local"))


@pytest.mark.parametrize("sql", [PRICES, LITERALS, NOTHING], ids=["prices", "literals", "none"])
@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_query_on_s3_prints_what_the_local_lake_prints(twins, sql, fmt):
    lake, home = twins
    on_s3 = cli("query", sql, "--format", fmt)
    local = cli("query", sql, "--format", fmt, home=home)
    assert on_s3.exit_code == 0, on_s3.output
    assert local.exit_code == 0, local.output
    assert on_s3.stdout == local.stdout
    assert lake.athena.statements[-1] == athena_read(sql)  # what ran on Athena: no CTAS


def test_the_printed_values_keep_nulls_dates_floats_ints_and_strings(twins):
    lake, _ = twins
    [row] = json.loads(cli("query", LITERALS, "-f", "json").stdout)
    assert row == {
        "nothing": None,
        "day": "2024-01-31",
        "half": 1.5,
        "tenth": 0.1,
        "seven": 7,
        "big": 9007199254740993,  # past 2**53: read as an integer, not through a float
        "words": 'a "quoted", text',
        "yes": True,
        "at": "2024-01-31 09:30:00",
    }
    prices = json.loads(cli("query", PRICES, "-f", "json").stdout)
    assert any(r["sma_50"] is None for r in prices) and any(r["sma_50"] for r in prices)
    assert len(prices) > lake.athena.page_size  # more rows than one GetQueryResults page


def test_the_query_runs_in_the_descriptors_workgroup_and_reads_its_output_location(twins):
    lake, _ = twins
    lake.athena.order.clear()
    before = set(lake.keys(""))
    result = cli("query", PRICES, "-f", "csv")
    assert result.exit_code == 0, result.output
    assert lake.athena.contexts() == [(DATABASE, QUERY_WORKGROUP)]  # one statement
    [execution] = [lake.athena.executions[q] for q in lake.athena.order]
    assert execution["OutputLocation"].startswith(lake.results)
    assert execution["OutputLocation"].endswith(".csv")
    # The result stays where Athena wrote it (deleting it would need s3:DeleteObject) and
    # the query wrote nothing into the lake.
    key = execution["OutputLocation"][len(f"s3://{RESULTS_BUCKET}/") :]
    assert lake.s3.head_object(Bucket=RESULTS_BUCKET, Key=key)
    assert set(lake.keys("")) == before
    assert ("session", REGION) in lake.regions  # the descriptor's region
    assert {session.region_name for session in lake.sessions} == {REGION}


def test_describe_lists_the_columns_athena_describes(twins):
    lake, _ = twins
    result = cli("query", "DESCRIBE daily_prices", "-f", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    names = [r["Column Name"] for r in rows]
    assert names[:2] == ["symbol", "trade_date"] and "sma_50" in names
    assert {"Column Name", "Type", "Partition", "Comment"} == set(rows[0])
    assert lake.athena.contexts()[-1] == (f"`{DATABASE}`", QUERY_WORKGROUP)


def test_an_empty_string_and_the_text_nan_read_back_as_null(twins):
    """A known difference from the local lake: awswrangler reads Athena's CSV with
    na_values=["", "NaN"], so an empty string and the string 'NaN' arrive as NULL."""
    [row] = json.loads(cli("query", "SELECT '' AS empty, 'NaN' AS text", "-f", "json").stdout)
    assert row == {"empty": None, "text": None}


# -- what fails is one line ------------------------------------------------------------------


def test_a_failed_query_is_one_line_naming_the_workgroup(lake):
    built(lake)
    line = one_error_line(cli("query", "SELECT * FROM no_such_table"))
    assert f"Athena query failed in workgroup {QUERY_WORKGROUP}: TABLE_NOT_FOUND" in line
    assert f"tables of database {DATABASE}" in line


def test_a_cancelled_query_is_one_line_saying_why(lake, monkeypatch):
    built(lake)
    start = lake.athena.start_query_execution

    def cancelled(**kwargs):
        started = start(**kwargs)
        execution = lake.athena.executions[started["QueryExecutionId"]]
        execution.update(State="CANCELLED", StateChangeReason="Bytes scanned limit was exceeded")
        return started

    monkeypatch.setattr(lake.athena, "start_query_execution", cancelled)
    line = one_error_line(cli("query", PRICES))
    assert f"Athena query cancelled in workgroup {QUERY_WORKGROUP}" in line
    assert "Bytes scanned limit was exceeded" in line and "athena_bytes_scanned_cutoff" in line


@pytest.mark.parametrize("operation", ["get_work_group", "start_query_execution"])
def test_athena_refusing_access_is_one_line_with_the_remedy(lake, monkeypatch, operation):
    built(lake)
    name = "".join(part.title() for part in operation.split("_"))

    def denied(**_):
        error = {"Code": "AccessDeniedException", "Message": f"not authorized: athena:{name}"}
        raise ClientError({"Error": error}, name)

    monkeypatch.setattr(lake.athena, operation, denied)
    line = one_error_line(cli("query", PRICES))
    assert f"Athena workgroup {QUERY_WORKGROUP}: {name} refused (AccessDeniedException" in line
    assert "grant athena:GetWorkGroup" in line and "s3:GetObject on its output location" in line


def test_a_workgroup_that_is_not_there_is_one_line(lake):
    built(lake)
    deploy(lake, dict(DESCRIPTOR, athena_workgroup="marketlake-gone"))
    line = one_error_line(cli("query", PRICES))
    assert "Athena workgroup marketlake-gone: GetWorkGroup refused (InvalidRequestException" in line
    assert "make deploy" in line


def test_a_workgroup_without_an_output_location_creates_no_bucket(lake):
    built(lake)
    lake.athena.create_work_group(
        Name="marketlake-bare", Configuration={"EnforceWorkGroupConfiguration": False}
    )
    deploy(lake, dict(DESCRIPTOR, athena_workgroup="marketlake-bare"))
    buckets = lake.s3.list_buckets()["Buckets"]
    line = one_error_line(cli("query", PRICES))
    assert "Athena workgroup marketlake-bare has no query result location" in line
    assert lake.s3.list_buckets()["Buckets"] == buckets  # not aws-athena-query-results-...
    assert not [c for c in lake.athena.contexts() if c[1] == "marketlake-bare"]


# -- what is refused before anything is reached ------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE daily_prices",
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO pipeline_runs SELECT * FROM pipeline_runs",
        "SELECT 1; DROP VIEW daily_prices",
        "UNLOAD (SELECT 1) TO 's3://elsewhere/' WITH (format = 'PARQUET')",
    ],
)
def test_a_statement_that_is_not_a_read_is_refused_before_any_aws_call(lake, monkeypatch, sql):
    deploy(lake)
    calls: list = []
    monkeypatch.setattr(lakes, "client", lambda *args: calls.append(("client", args)))
    monkeypatch.setattr(lakes, "session", lambda *args: calls.append(("session", args)))
    line = one_error_line(cli("query", sql))
    assert "read-only" in line or "one SQL statement" in line
    assert calls == []  # neither the descriptor nor Athena was asked anything
    assert lake.athena.statements == []
    assert lake.keys("") == ["state/deployment.json"]


# -- SHOW, files and JSON on the S3 path ------------------------------------------------------


def test_show_tables_and_columns_read_the_glue_catalog_in_the_local_columns(twins):
    lake, home = twins
    before = len(lake.athena.statements)
    tables = json.loads(cli("query", "SHOW TABLES", "-f", "json").stdout)
    assert {"daily_prices", "pipeline_runs"} <= {row["table_name"] for row in tables}
    local = json.loads(cli("query", "SHOW TABLES", "-f", "json", home=home).stdout)
    assert set(tables[0]) == set(local[0]) == {"table_name"}
    columns = json.loads(cli("query", "SHOW COLUMNS IN daily_prices", "-f", "json").stdout)
    types = {row["column_name"]: row["data_type"] for row in columns}
    assert types["symbol"] == "string" and types["trade_date"] == "date"
    local = json.loads(cli("query", "SHOW COLUMNS IN daily_prices", "-f", "json", home=home).stdout)
    assert [r["column_name"] for r in columns] == [r["column_name"] for r in local]
    assert len(lake.athena.statements) == before  # Glue answered: no Athena query ran


def test_show_columns_of_an_unknown_table_is_one_line(twins):
    line = one_error_line(cli("query", f"SHOW COLUMNS FROM {DATABASE}.nope"))
    assert f"no table nope in Glue database {DATABASE}" in line


def test_parquet_from_athena_keeps_dates_doubles_and_strings(twins, tmp_path):
    target = tmp_path / "prices.parquet"
    result = cli("query", PRICES, "--format", "parquet", "--out", str(target))
    assert result.exit_code == 0, result.output
    table = pq.read_table(target)
    assert table.schema.field("symbol").type == pa.string()
    assert table.schema.field("trade_date").type == pa.date32()
    assert table.schema.field("close").type == pa.float64()
    assert table.num_rows == len(json.loads(cli("query", PRICES, "-f", "json").stdout))


def test_infinity_from_athena_is_valid_json(twins):
    result = cli("query", "SELECT 1e0 / 0 AS up, -1e0 / 0 AS down", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"up": None, "down": None}]
