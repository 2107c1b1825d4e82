"""AthenaEngine against moto (Athena, Glue, S3), botocore's Stubber and FakeAthena.

moto records Athena query executions (statement, workgroup, database) and answers results
from a queue filled through its documented API (POST /moto-api/static/athena/query-results,
see moto.athena.models.AthenaBackend.get_query_results); it never runs SQL and always
answers SUCCEEDED, so failures, polling and pagination are answered by Stubber or by
athena_fake.FakeAthena. Glue is moto's: the partition swap is checked on the catalog itself.
"""

from __future__ import annotations

import datetime as dt
import inspect
import io
import time

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests
import sqlglot
from athena_fake import FakeAthena, Recorder
from botocore.stub import Stubber
from moto import mock_aws
from sqlglot import exp

from marketlake.columns import DAILY_PRICES
from marketlake.engines.athena import AthenaEngine, _commented
from marketlake.engines.base import Engine
from marketlake.errors import MarketlakeError, QueryError
from marketlake.lake import audit as runlog
from marketlake.storage import S3Store

REGION = "us-east-1"
BUCKET = "marketlake-engine-test"
DATABASE = "marketlake"
WORKGROUP = "marketlake-wg"
RUN_A = "20240703T220000000Z-ab12"
RUN_B = "20240704T220000000Z-cd34"
TAG_A = "20240703t220000000z_ab12"
CTAS_COLUMNS = [
    {"Name": "symbol", "Type": "string"},
    {"Name": "trade_date", "Type": "date"},
    {"Name": "close", "Type": "double"},
    {"Name": "volume", "Type": "bigint"},
]


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)


class Aws:
    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.glue = boto3.client("glue", region_name=REGION)
        self.athena = boto3.client("athena", region_name=REGION)
        self.s3.create_bucket(Bucket=BUCKET)
        self.glue.create_database(DatabaseInput={"Name": DATABASE})
        self.athena.create_work_group(
            Name=WORKGROUP,
            Configuration={
                "ResultConfiguration": {"OutputLocation": f"s3://{BUCKET}/athena-results/"}
            },
        )
        self.store = S3Store(BUCKET, client=self.s3)
        # Athena's CTAS creates its table in Glue; moto's does not, so this hook does it
        # (columns CTAS_COLUMNS, partition keys from partitioned_by), like the real service.
        self.ctas_columns = list(CTAS_COLUMNS)
        self.recorded_athena = Recorder(
            self.athena, before={"start_query_execution": self._catalog_ctas}
        )

    def _catalog_ctas(self, QueryString: str, **_) -> None:
        tree = sqlglot.parse_one(QueryString, read="athena")
        if not (isinstance(tree, exp.Create) and tree.args.get("kind") == "TABLE"):
            return
        props = ctas_properties(tree)
        self.glue.create_table(
            DatabaseName=DATABASE,
            TableInput={
                "Name": tree.this.name,
                "TableType": "EXTERNAL_TABLE",
                "StorageDescriptor": {
                    "Columns": self.ctas_columns,
                    "Location": props["external_location"],
                },
                "PartitionKeys": [
                    {"Name": p, "Type": "bigint"} for p in props.get("partitioned_by", [])
                ],
            },
        )

    def engine(self, run_id: str = RUN_A, **kwargs) -> AthenaEngine:
        options = {
            "database": DATABASE,
            "workgroup": WORKGROUP,
            "lake_uri": f"s3://{BUCKET}",
            "run_id": run_id,
            "athena": self.recorded_athena,
            "glue": self.glue,
            "s3_store": self.store,
            "poll_seconds": 0.0,
        }
        options.update(kwargs)
        return AthenaEngine(**options)

    def tables(self) -> set[str]:
        pages = self.glue.get_paginator("get_tables").paginate(DatabaseName=DATABASE)
        return {t["Name"] for page in pages for t in page["TableList"]}

    def partitions(self, table: str) -> dict[str, str]:
        pages = self.glue.get_paginator("get_partitions").paginate(
            DatabaseName=DATABASE, TableName=table
        )
        return {
            p["Values"][0]: p["StorageDescriptor"]["Location"]
            for page in pages
            for p in page["Partitions"]
        }

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture
def aws():
    with mock_aws():
        yield Aws()


def queue_results(*results: tuple[list, list]) -> None:
    """moto's documented way to answer the next queries: each started query takes the next
    (column_info, rows) from the queue."""
    body = {
        "region": REGION,
        "results": [{"column_info": columns, "rows": rows} for columns, rows in results],
    }
    answer = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results", json=body
    )
    assert answer.status_code == 201


def row(*values) -> dict:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}


def column(name: str, kind: str) -> dict:
    return {"Name": name, "Label": name, "Type": kind}


def count_result(n: int) -> tuple[list, list]:
    return [column("n", "bigint")], [row("n"), row(str(n))]


NO_RESULT: tuple[list, list] = ([], [])


def ctas_properties(tree: exp.Create) -> dict:
    props = {}
    for prop in tree.args["properties"].expressions:
        if isinstance(prop, exp.FileFormatProperty):
            props["format"] = prop.this.name
        elif isinstance(prop, exp.PartitionedByProperty):
            props["partitioned_by"] = [e.name for e in prop.this.expressions]
        else:
            props[prop.name.lower()] = prop.args["value"].name
    return props


def tables_read(sql: str) -> set[str]:
    tree = sqlglot.parse_one(sql, read="athena")
    query = tree.expression if isinstance(tree, exp.Create) else tree
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    return {t.name for t in query.find_all(exp.Table)} - ctes


# -- execute -------------------------------------------------------------------------------


def test_execute_sends_the_statement_with_workgroup_and_database(aws):
    engine = aws.engine(athena=aws.athena)
    first = engine.execute("SELECT 1 AS one")
    second = engine.execute("SELECT symbol FROM raw_daily_prices")
    assert engine.statements == ["SELECT 1 AS one", "SELECT symbol FROM raw_daily_prices"]
    for query_id, sql in ((first, "SELECT 1 AS one"), (second, engine.statements[1])):
        seen = aws.athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        assert seen["Query"] == sql
        assert seen["WorkGroup"] == WORKGROUP
        assert seen["QueryExecutionContext"] == {
            "Database": DATABASE,
            "Catalog": "AwsDataCatalog",
        }
    in_workgroup = aws.athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
    assert {first, second} <= set(in_workgroup)


def stubbed_athena():
    client = boto3.client("athena", region_name=REGION)
    return client, Stubber(client)


def expect_start(stub: Stubber, sql: str, query_id: str = "q-1") -> None:
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": query_id},
        {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": DATABASE, "Catalog": "AwsDataCatalog"},
            "WorkGroup": WORKGROUP,
        },
    )


def answer_state(stub: Stubber, status: dict, query_id: str = "q-1") -> None:
    stub.add_response(
        "get_query_execution",
        {"QueryExecution": {"QueryExecutionId": query_id, "Status": status}},
        {"QueryExecutionId": query_id},
    )


REASON = (
    "COLUMN_NOT_FOUND: line 1:8: Column 'hihg' cannot be resolved or requester is not "
    "authorized to access requested resources"
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"State": "FAILED", "StateChangeReason": REASON}, REASON),
        (
            {
                "State": "FAILED",
                "AthenaError": {"ErrorCategory": 2, "ErrorType": 1006, "ErrorMessage": REASON},
            },
            REASON,
        ),
        ({"State": "CANCELLED", "StateChangeReason": "Query cancelled by user"}, "cancelled"),
    ],
)
def test_a_failed_query_raises_with_athenas_reason(aws, status, expected):
    client, stub = stubbed_athena()
    expect_start(stub, "SELECT hihg FROM daily_prices")
    answer_state(stub, status)
    engine = aws.engine(athena=client)
    with stub, pytest.raises(QueryError) as info:
        engine.execute("SELECT hihg FROM daily_prices")
    stub.assert_no_pending_responses()
    assert expected in str(info.value)
    assert "q-1" in str(info.value)
    assert status["State"].lower() in str(info.value)


def protocol_methods(protocol: type) -> dict:
    return {
        name: member
        for name, member in vars(protocol).items()
        if callable(member) and not name.startswith("_")
    }


def test_athena_engine_is_an_engine():
    """Structurally: every method the build asks of an Engine, with the same parameters
    (names, kinds, defaults), so a parameter typed Engine takes an AthenaEngine."""
    wanted = protocol_methods(Engine)
    assert wanted, "the Engine protocol declares no methods"
    for name, method in wanted.items():
        own = getattr(AthenaEngine, name, None)
        assert callable(own), f"AthenaEngine lacks {name}"
        expected, actual = inspect.signature(method), inspect.signature(own)
        assert [(p.name, p.kind, p.default) for p in actual.parameters.values()] == [
            (p.name, p.kind, p.default) for p in expected.parameters.values()
        ], f"AthenaEngine.{name}{actual} does not match Engine.{name}{expected}"


def test_execute_polls_until_a_final_state(aws):
    client, stub = stubbed_athena()
    expect_start(stub, "SELECT 1")
    answer_state(stub, {"State": "QUEUED"})
    answer_state(stub, {"State": "RUNNING"})
    answer_state(stub, {"State": "SUCCEEDED"})
    naps: list[float] = []
    engine = aws.engine(athena=client, poll_seconds=0.25, sleep=naps.append)
    with stub:
        assert engine.execute("SELECT 1") == "q-1"
    stub.assert_no_pending_responses()
    assert naps == [0.25, 0.25]


def test_a_query_past_the_timeout_is_stopped():
    athena = FakeAthena(glue=None, s3=None, pending_polls=10**9)  # QUEUED/RUNNING forever
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        time.sleep(0.01)

    engine = AthenaEngine(
        DATABASE,
        WORKGROUP,
        f"s3://{BUCKET}",
        RUN_A,
        athena=athena,
        glue=object(),
        poll_seconds=0.5,
        timeout_seconds=0.2,
        sleep=nap,
    )
    with pytest.raises(QueryError, match=r"ran past .* stopped") as info:
        engine.execute("SELECT 1")
    assert athena.stopped == athena.order  # the one query, stopped
    assert athena.order[0] in str(info.value)
    assert naps and set(naps) == {0.5}


# -- fetch_df ------------------------------------------------------------------------------

TYPED_COLUMNS = [
    column("symbol", "varchar"),
    column("volume", "bigint"),
    column("close", "double"),
    column("is_up", "boolean"),
    column("trade_date", "date"),
    column("n", "integer"),
]


def test_fetch_df_types_athenas_text_and_drops_the_header(aws):
    queue_results(
        (
            TYPED_COLUMNS,
            [
                row("symbol", "volume", "close", "is_up", "trade_date", "n"),
                row("NVDA", "123456789", "118.5", "true", "2024-07-03", "1"),
                row("AMD", None, None, None, "2024-07-02", None),
                row("INTC", "0", "1.0E-5", "false", "2024-07-01", "3"),
            ],
        )
    )
    engine = aws.engine(athena=aws.athena)
    frame = engine.fetch_df("SELECT * FROM t")
    assert list(frame.columns) == ["symbol", "volume", "close", "is_up", "trade_date", "n"]
    assert len(frame) == 3  # the header row is not data
    assert frame["symbol"].tolist() == ["NVDA", "AMD", "INTC"]
    assert str(frame["volume"].dtype) == "Int64"
    assert frame["volume"].iloc[0] == 123456789 and pd.isna(frame["volume"].iloc[1])
    assert frame["close"].dtype == "float64"
    assert frame["close"].iloc[0] == 118.5 and frame["close"].iloc[2] == 1e-5
    assert pd.isna(frame["close"].iloc[1])
    assert str(frame["is_up"].dtype) == "boolean"
    assert frame["is_up"].tolist()[0::2] == [True, False]
    assert pd.isna(frame["is_up"].iloc[1])
    assert frame["trade_date"].tolist() == [
        dt.date(2024, 7, 3),
        dt.date(2024, 7, 2),
        dt.date(2024, 7, 1),
    ]
    assert str(frame["n"].dtype) == "Int64"


def test_fetch_df_of_no_rows_keeps_the_columns(aws):
    queue_results(([column("n", "bigint"), column("d", "date")], [row("n", "d")]))
    frame = aws.engine(athena=aws.athena).fetch_df("SELECT n, d FROM t WHERE 1 = 0")
    assert list(frame.columns) == ["n", "d"]
    assert len(frame) == 0


def test_fetch_df_reads_a_null_date_next_to_a_date(aws):
    queue_results(
        (
            [column("symbol", "varchar"), column("trade_date", "date")],
            [row("symbol", "trade_date"), row("NVDA", "2024-07-03"), row("AMD", None)],
        )
    )
    frame = aws.engine(athena=aws.athena).fetch_df("SELECT symbol, trade_date FROM bars")
    assert frame["trade_date"].iloc[0] == dt.date(2024, 7, 3)
    assert pd.isna(frame["trade_date"].iloc[1])


def test_fetch_df_reads_athenas_nan_and_infinity(aws):
    queue_results(
        (
            [column("x", "double")],
            [row("x"), row("NaN"), row("Infinity"), row("-Infinity")],
        )
    )
    frame = aws.engine(athena=aws.athena).fetch_df("SELECT x FROM t")
    values = frame["x"].tolist()
    assert values[0] != values[0] and values[1:] == [float("inf"), float("-inf")]


def test_fetch_df_keeps_large_bigints_exact_next_to_a_null(aws):
    big = 2**53 + 1
    queue_results(([column("v", "bigint")], [row("v"), row(str(big)), row(None)]))
    frame = aws.engine(athena=aws.athena).fetch_df("SELECT v FROM t")
    assert int(frame["v"].iloc[0]) == big


def test_fetch_df_reads_every_page(aws):
    client, stub = stubbed_athena()
    expect_start(stub, "SELECT symbol, close FROM t")
    answer_state(stub, {"State": "SUCCEEDED"})
    columns = [column("symbol", "varchar"), column("close", "double")]
    stub.add_response(
        "get_query_results",
        {
            "ResultSet": {
                "Rows": [row("symbol", "close"), row("A", "1.5"), row("B", "2.5")],
                "ResultSetMetadata": {"ColumnInfo": columns},
            },
            "NextToken": "page-2",
        },
        {"QueryExecutionId": "q-1"},
    )
    stub.add_response(
        "get_query_results",
        {
            "ResultSet": {
                # Only the first page starts with the header.
                "Rows": [row("C", "3.5"), row("D", None)],
                "ResultSetMetadata": {"ColumnInfo": columns},
            }
        },
        {"QueryExecutionId": "q-1", "NextToken": "page-2"},
    )
    engine = aws.engine(athena=client)
    with stub:
        frame = engine.fetch_df("SELECT symbol, close FROM t")
    stub.assert_no_pending_responses()
    assert frame["symbol"].tolist() == ["A", "B", "C", "D"]
    assert frame["close"].tolist()[:3] == [1.5, 2.5, 3.5]
    assert pd.isna(frame["close"].iloc[3])


# -- materialize and ctas ------------------------------------------------------------------


def test_materialize_and_ctas_send_parquet_ctas_and_bind_the_logical_names(aws):
    queue_results(
        NO_RESULT,
        count_result(3),  # materialize("bars")
        NO_RESULT,
        count_result(3),  # ctas(...)
        ([column("symbol", "varchar")], [row("symbol"), row("NVDA")]),  # fetch_df
    )
    engine = aws.engine()
    n = engine.materialize("bars", "SELECT symbol, trade_date FROM raw_daily_prices")
    assert n == 3
    written = engine.ctas(
        "SELECT b.*, year(b.trade_date) AS year FROM bars AS b",
        "curated/daily_prices/version=" + RUN_A,
        ["year"],
    )
    assert written == 3
    engine.fetch_df("SELECT * FROM bars")

    sent = engine.statements
    assert len(sent) == 5
    scratch = sqlglot.parse_one(sent[0], read="athena")
    assert isinstance(scratch, exp.Create) and scratch.args["kind"] == "TABLE"
    assert scratch.this.name == f"tmp_{TAG_A}_bars"
    props = ctas_properties(scratch)
    assert props["format"].upper() == "PARQUET"
    assert props["external_location"] == f"s3://{BUCKET}/tmp/athena/{TAG_A}/bars/"
    assert "partitioned_by" not in props
    assert tables_read(sent[0]) == {"raw_daily_prices"}
    assert tables_read(sent[1]) == {f"tmp_{TAG_A}_bars"}  # the count

    version = sqlglot.parse_one(sent[2], read="athena")
    assert version.this.name == f"tmp_{TAG_A}_version"
    props = ctas_properties(version)
    assert props["format"].upper() == "PARQUET"
    assert props["external_location"] == (f"s3://{BUCKET}/curated/daily_prices/version={RUN_A}/")
    assert props["partitioned_by"] == ["year"]
    assert tables_read(sent[2]) == {f"tmp_{TAG_A}_bars"}  # bars, bound to its table
    assert tables_read(sent[3]) == {f"tmp_{TAG_A}_version"}

    select = sqlglot.parse_one(sent[4], read="athena")
    (table,) = list(select.find_all(exp.Table))
    assert table.name == f"tmp_{TAG_A}_bars"
    assert table.alias == "bars"  # `bars.x` still resolves after binding
    # moto saw the same statements, all in the workgroup
    seen = aws.athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
    assert len(seen) == 5


def test_ctas_reads_the_written_columns_from_the_ctas_table(aws):
    aws.ctas_columns = [*CTAS_COLUMNS, {"Name": "sma_5", "Type": "double"}]
    queue_results(NO_RESULT, count_result(7))
    engine = aws.engine()
    engine.ctas("SELECT * FROM good_bars", f"curated/daily_prices/version={RUN_A}", ["year"])
    assert engine.columns == aws.ctas_columns


def test_materializing_a_name_twice_replaces_it(aws):
    fake = FakeAthena(aws.glue, aws.s3)
    engine = aws.engine(athena=fake)
    assert engine.materialize("picked", "SELECT 1 AS x") == 1
    assert engine.materialize("picked", "SELECT 2 AS x UNION ALL SELECT 3") == 2


# -- publish: one view switch over the version's own table ---------------------------------


def version_partitions(run_id: str, years) -> dict[str, str]:
    return {str(y): f"curated/daily_prices/version={run_id}/year={y}" for y in years}


def write_version(aws, run_id: str, years) -> AthenaEngine:
    queue_results(NO_RESULT, count_result(10))
    engine = aws.engine(run_id)
    engine.ctas("SELECT * FROM good_bars", f"curated/daily_prices/version={run_id}", ["year"])
    return engine


def version_table(run_id: str) -> str:
    return "daily_prices_v_" + run_id.lower().replace("-", "_")


def publish_recorded(engine: AthenaEngine, partitions: dict, **before) -> tuple:
    """Publish with the Glue and Athena calls recorded: (glue calls, statements sent)."""
    glue = Recorder(engine.glue, before=before)
    engine.glue, sent = glue, len(engine.statements)
    engine.publish("daily_prices", partitions)
    return glue, engine.statements[sent:]


def test_publish_is_one_view_switch_over_the_versions_own_table(aws):
    engine = write_version(aws, RUN_A, [2021, 2022, 2023])
    glue, sent = publish_recorded(engine, version_partitions(RUN_A, [2021, 2022, 2023]))

    name = version_table(RUN_A)
    assert sent == [f"CREATE OR REPLACE VIEW daily_prices AS SELECT * FROM {name}"]
    table = aws.glue.get_table(DatabaseName=DATABASE, Name=name)["Table"]
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [("year", "int")]
    # The CTAS table's columns, each declared one with its unit as Comment (columns.py).
    assert table["StorageDescriptor"]["Columns"] == _commented(CTAS_COLUMNS, DAILY_PRICES)
    assert table["StorageDescriptor"]["Location"] == (
        f"s3://{BUCKET}/curated/daily_prices/version={RUN_A}/"
    )
    assert "ParquetHiveSerDe" in (table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"])
    assert aws.partitions(name) == {
        str(y): f"s3://{BUCKET}/curated/daily_prices/version={RUN_A}/year={y}/"
        for y in (2021, 2022, 2023)
    }
    # Glue was only asked to build the new table: nothing a reader of daily_prices sees.
    touched = {
        kwargs.get("TableName") or kwargs.get("TableInput", {}).get("Name")
        for name_, kwargs in glue.calls
        if name_ != "get_table"
    }
    assert touched == {name}
    assert not glue.named("batch_update_partition") and not glue.named("batch_delete_partition")


def test_a_second_publish_leaves_the_first_versions_table_as_it_was(aws):
    write_version(aws, RUN_A, [2021, 2022, 2023]).publish(
        "daily_prices", version_partitions(RUN_A, [2021, 2022, 2023])
    )
    before = aws.partitions(version_table(RUN_A))
    engine = write_version(aws, RUN_B, [2023, 2024])
    wanted = {
        **version_partitions(RUN_A, [2022]),  # kept as it is
        **version_partitions(RUN_B, [2023, 2024]),  # 2023 rebuilt, 2024 new; 2021 gone
    }
    _, sent = publish_recorded(engine, wanted)

    assert sent == [f"CREATE OR REPLACE VIEW daily_prices AS SELECT * FROM {version_table(RUN_B)}"]
    assert aws.partitions(version_table(RUN_B)) == {
        "2022": f"s3://{BUCKET}/curated/daily_prices/version={RUN_A}/year=2022/",
        "2023": f"s3://{BUCKET}/curated/daily_prices/version={RUN_B}/year=2023/",
        "2024": f"s3://{BUCKET}/curated/daily_prices/version={RUN_B}/year=2024/",
    }
    assert aws.partitions(version_table(RUN_A)) == before  # what a rollback switches back to


def test_a_rollback_switches_the_view_back_to_the_kept_table(aws):
    first = version_partitions(RUN_A, [2023])
    write_version(aws, RUN_A, [2023]).publish("daily_prices", first)
    write_version(aws, RUN_B, [2023]).publish("daily_prices", version_partitions(RUN_B, [2023]))
    glue, sent = publish_recorded(aws.engine(RUN_B), first)
    assert sent == [f"CREATE OR REPLACE VIEW daily_prices AS SELECT * FROM {version_table(RUN_A)}"]
    assert not glue.named("create_table") and not glue.named("batch_create_partition")


def test_a_daily_prices_table_from_before_is_replaced_by_the_view(aws):
    aws.glue.create_table(
        DatabaseName=DATABASE,
        TableInput={"Name": "daily_prices", "StorageDescriptor": {"Columns": CTAS_COLUMNS}},
    )
    engine = write_version(aws, RUN_A, [2024])
    glue, sent = publish_recorded(engine, version_partitions(RUN_A, [2024]))
    assert [k["Name"] for k in glue.named("delete_table")] == ["daily_prices"]
    assert sent == [f"CREATE OR REPLACE VIEW daily_prices AS SELECT * FROM {version_table(RUN_A)}"]


def test_publish_stays_within_glues_batch_limits(aws):
    def within(**kwargs) -> None:
        size = len(kwargs["PartitionInputList"])
        assert 0 < size <= 100, f"batch_create_partition with {size} entries"

    years = range(1900, 2030)  # 130 partitions
    engine = write_version(aws, RUN_A, years)
    glue, _ = publish_recorded(
        engine, version_partitions(RUN_A, years), batch_create_partition=within
    )
    assert len(aws.partitions(version_table(RUN_A))) == 130
    assert len(glue.named("batch_create_partition")) == 2


def test_publish_takes_new_columns_from_the_ctas_table(aws):
    write_version(aws, RUN_A, [2024]).publish("daily_prices", version_partitions(RUN_A, [2024]))
    aws.ctas_columns = [*CTAS_COLUMNS, {"Name": "sma_200", "Type": "double"}]
    write_version(aws, RUN_B, [2024]).publish("daily_prices", version_partitions(RUN_B, [2024]))
    table = aws.glue.get_table(DatabaseName=DATABASE, Name=version_table(RUN_B))["Table"]
    assert table["StorageDescriptor"]["Columns"] == _commented(aws.ctas_columns, DAILY_PRICES)
    assert "Comment" not in table["StorageDescriptor"]["Columns"][-1]  # sma_200: undeclared


def test_publish_switches_nothing_when_glue_rejects_part_of_a_batch(aws):
    def meanwhile(**kwargs) -> None:  # someone adds a partition between create and batch
        aws.glue.create_partition(
            DatabaseName=DATABASE,
            TableName=kwargs["TableName"],
            PartitionInput={"Values": ["2024"], "StorageDescriptor": {"Columns": CTAS_COLUMNS}},
        )

    engine = write_version(aws, RUN_A, [2023, 2024])
    with pytest.raises(MarketlakeError, match="Glue refused 1 partition"):
        publish_recorded(
            engine, version_partitions(RUN_A, [2023, 2024]), batch_create_partition=meanwhile
        )
    assert not [sql for sql in engine.statements if "VIEW" in sql]


def test_pruning_drops_the_tables_of_versions_no_longer_kept(aws):
    write_version(aws, RUN_A, [2024]).publish("daily_prices", version_partitions(RUN_A, [2024]))
    engine = write_version(aws, RUN_B, [2024])
    engine.publish("daily_prices", version_partitions(RUN_B, [2024]))
    engine.forget_versions("daily_prices", [version_partitions(RUN_B, [2024])])
    names = {t["Name"] for t in aws.glue.get_tables(DatabaseName=DATABASE)["TableList"]}
    assert version_table(RUN_B) in names and version_table(RUN_A) not in names


def test_publish_without_a_written_version_needs_a_published_schema(aws):
    with pytest.raises(MarketlakeError, match="no curated schema"):
        aws.engine().publish("daily_prices", version_partitions(RUN_A, [2024]))


# -- raw, reference tables and close -------------------------------------------------------


def test_register_raw_asks_for_make_deploy_when_the_table_is_missing(aws):
    engine = aws.engine()
    with pytest.raises(MarketlakeError, match="make deploy") as info:
        engine.register_raw("raw_daily_prices", "raw/daily_prices")
    assert f"{DATABASE}.raw_daily_prices" in str(info.value)
    aws.glue.create_table(
        DatabaseName=DATABASE,
        TableInput={"Name": "raw_daily_prices", "StorageDescriptor": {"Columns": []}},
    )
    engine.register_raw("raw_daily_prices", "raw/daily_prices")  # now it is there


def test_register_frame_writes_parquet_and_a_glue_table(aws):
    engine = aws.engine()
    sessions = pd.DataFrame({"session": pd.to_datetime(["2024-07-01", "2024-07-02"])})
    engine.register_frame("xnys_sessions", sessions)
    table = aws.glue.get_table(DatabaseName=DATABASE, Name="xnys_sessions")["Table"]
    assert table["StorageDescriptor"]["Columns"] == [{"Name": "session", "Type": "date"}]
    assert table["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/reference/xnys_sessions/"
    assert table.get("PartitionKeys", []) == []
    assert aws.keys("reference/xnys_sessions/") == ["reference/xnys_sessions/data.parquet"]
    body = aws.store.get_bytes("reference/xnys_sessions/data.parquet")
    stored = pq.read_table(io.BytesIO(body))
    assert str(stored.schema.field("session").type) == "date32[day]"
    assert stored.column("session").to_pylist() == [dt.date(2024, 7, 1), dt.date(2024, 7, 2)]

    # A later run replaces both (UpdateTable, not a second CreateTable).
    engine.register_frame("xnys_sessions", sessions.head(1))
    body = aws.store.get_bytes("reference/xnys_sessions/data.parquet")
    assert pq.read_table(io.BytesIO(body)).num_rows == 1


def test_close_drops_scratch_tables_and_data_but_keeps_the_version(aws):
    queue_results(NO_RESULT, count_result(2), NO_RESULT, count_result(2))
    engine = aws.engine()
    engine.materialize("bars", "SELECT * FROM raw_daily_prices")
    version = f"curated/daily_prices/version={RUN_A}"
    engine.ctas("SELECT * FROM bars", version, ["year"])
    engine.attach("staging_daily_prices", version_partitions(RUN_A, [2024]))
    # What Athena would have written at the CTAS locations, and another run's scratch.
    for key in (
        f"tmp/athena/{TAG_A}/bars/part-0",
        f"{version}/year=2024/part-0",
        "tmp/athena/otherrun/bars/part-0",
    ):
        aws.store.put_bytes(key, b"PAR1")
    scratch = {f"tmp_{TAG_A}_bars", f"tmp_{TAG_A}_version", f"tmp_{TAG_A}_staging_daily_prices"}
    assert scratch <= aws.tables()

    with engine:
        pass  # __exit__ closes
    assert not {t for t in aws.tables() if t.startswith("tmp_")}
    assert aws.keys("tmp/athena/") == ["tmp/athena/otherrun/bars/part-0"]
    assert aws.keys(version + "/") == [f"{version}/year=2024/part-0"]
    engine.close()  # a second close has nothing left to do


def test_register_audit_creates_each_table_once(aws):
    engine = aws.engine()
    glue = Recorder(aws.glue)
    engine.glue = glue
    for _ in range(2):
        engine.register_audit(
            "pipeline_runs", "audit/pipeline_runs", runlog.PIPELINE_RUNS_SCHEMA, has_data=False
        )
    assert len(glue.named("create_table")) == 1
    table = aws.glue.get_table(DatabaseName=DATABASE, Name="pipeline_runs")["Table"]
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert columns["started_at"] == "timestamp"
    assert columns["rows_written"] == "bigint"
    assert columns["checks_passed"] == "int"
    assert table["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/audit/pipeline_runs/"
