"""AthenaEngine: the same build on Amazon Athena, with the Glue Data Catalog as the catalog.

The shared SQL is Athena's dialect already; this engine only renames logical relations
(bars, staging_daily_prices, ...) to the run's physical tables. Intermediate relations are
CTAS tables under a scratch prefix, dropped at close(). Publishing is one statement: each
version is its own Glue table (daily_prices_v_RUNID, partitioned by year), and daily_prices
is a view over it, switched by CREATE OR REPLACE VIEW.

Everything here stays importable on Python 3.9: the Glue Python shell job runs it.
"""

# Not awswrangler: this runs in the Glue job (Python 3.9, awswrangler 3.14 at most), whose
# wheels stay without it, and its wait has no deadline (execute). The CLI's `query` on an S3
# lake does use it (lakes.RemoteLake.query), where it replaces the waiting and paging here.

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import time
from collections.abc import Sequence
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from marketlake import sqlfiles
from marketlake.columns import declared
from marketlake.errors import MarketlakeError, QueryError

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
GLUE_PARTITION_BATCH = 100  # the most partitions one BatchCreatePartition call takes
_ARROW_TO_GLUE = {
    pa.string(): "string",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.date32(): "date",
    pa.timestamp("ms"): "timestamp",
}
PARQUET_FORMAT = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    },
}


def _safe_name(text: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


class AthenaEngine:
    def __init__(
        self,
        database: str,
        workgroup: str,
        lake_uri: str,
        run_id: str,
        athena=None,
        glue=None,
        s3_store=None,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 1800.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if athena is None or glue is None:
            import boto3

            athena = athena or boto3.client("athena")
            glue = glue or boto3.client("glue")
        self.athena = athena
        self.glue = glue
        self.store = s3_store
        self.database = database
        self.workgroup = workgroup
        self.lake_uri = lake_uri.rstrip("/")
        self.tag = _safe_name(run_id)
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.sleep = sleep
        self.names: dict = {}  # logical relation -> physical Glue table
        self.scratch: list = []  # (table, location key) to drop at close()
        self.statements: list = []  # every statement sent, in order (for logs and tests)
        self.columns: list | None = None  # Glue columns of the curated table

    # -- queries -------------------------------------------------------------------------

    def uri(self, key: str) -> str:
        return f"{self.lake_uri}/{key.strip('/')}/"

    def execute(self, sql: str) -> str:
        """Run one statement; wait for it; raise QueryError with Athena's reason if it fails."""
        self.statements.append(sql)
        started = self.athena.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": self.database, "Catalog": "AwsDataCatalog"},
            WorkGroup=self.workgroup,
        )
        query_id = started["QueryExecutionId"]
        # Our own wait: wr.athena.wait_query has no deadline, so it never stops a stuck query.
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            status = self.athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"][
                "Status"
            ]
            state = status["State"]
            if state in TERMINAL:
                break
            if time.monotonic() > deadline:
                self.athena.stop_query_execution(QueryExecutionId=query_id)
                raise QueryError(
                    f"Athena query {query_id} ran past {self.timeout_seconds:.0f} s; stopped"
                )
            self.sleep(self.poll_seconds)
        if state != "SUCCEEDED":
            reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get(
                "ErrorMessage", "no reason given"
            )
            raise QueryError(f"Athena query {query_id} {state.lower()}: {reason}")
        return query_id

    def bind(self, sql: str) -> str:
        return sqlfiles.bind(sql, self.names) if self.names else sql

    def fetch_df(self, sql: str) -> pd.DataFrame:
        query_id = self.execute(self.bind(sql))
        paginator = self.athena.get_paginator("get_query_results")
        columns: list[dict] | None = None
        rows: list[list[str | None]] = []
        for page in paginator.paginate(QueryExecutionId=query_id):
            result = page["ResultSet"]
            if columns is None:
                columns = result["ResultSetMetadata"]["ColumnInfo"]
                data = result["Rows"][1:]  # the first row of a SELECT is its header
            else:
                data = result["Rows"]
            rows.extend([cell.get("VarCharValue") for cell in row["Data"]] for row in data)
        columns = columns or []
        frame = pd.DataFrame(rows, columns=[c["Name"] for c in columns])
        for column in columns:
            frame[column["Name"]] = _convert(frame[column["Name"]], column["Type"].lower())
        return frame

    def has_relation(self, name: str) -> bool:
        """A Glue table or view of that name (status asks before reading an audit table)."""
        return self._table(name) is not None

    # -- relations -----------------------------------------------------------------------

    def register_raw(self, name: str, prefix: str, since: str | None = None) -> None:
        """The raw table comes from Terraform (`make deploy`); it must exist before a build.
        Athena reads raw through the table's partitions while the build plans from the S3
        listing, so every ingest_date folder the table lacks is added here (no crawler is
        on the daily path): otherwise the build would mark those bars read without reading
        them. `since` needs nothing here: Athena prunes by the table's partitions, listing
        no object of the others."""
        table = self._table(name)
        if not table:
            raise MarketlakeError(
                f"Glue table {self.database}.{name} is missing; `make deploy` creates it "
                "(terraform/glue.tf aws_glue_catalog_table.raw_daily_prices): run it, then "
                "the build"
            )
        known = {p["Values"][0] for p in self._partitions(name)}
        folders = [
            f.split("=", 1)[1]
            for f in self.store.list_prefixes(prefix.rstrip("/") + "/")
            if f.startswith("ingest_date=")
        ]
        missing = [day for day in folders if day not in known]
        descriptor = table["StorageDescriptor"]
        self._create_partitions(
            name,
            [
                {
                    "Values": [day],
                    "StorageDescriptor": dict(
                        descriptor, Location=self.uri(f"{prefix}/ingest_date={day}")
                    ),
                }
                for day in missing
            ],
            "add raw partitions",
        )

    def raw_rejects(self) -> pd.DataFrame:
        """OpenCSVSerDe reads every row (extra fields dropped, missing ones NULL): the row
        checks judge what it read, and nothing is rejected here."""
        return pd.DataFrame({"raw_object": [], "raw_line": [], "reason": []})

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """A reference table (e.g. NYSE sessions): Parquet under reference/NAME/ + a Glue table."""
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.cast(
            pa.schema(
                [
                    pa.field(f.name, pa.date32() if pa.types.is_timestamp(f.type) else f.type)
                    for f in table.schema
                ]
            )
        )
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="snappy")
        self.store.put_bytes(f"reference/{name}/data.parquet", sink.getvalue())
        columns = _glue_columns(table.schema)
        self._put_table(name, columns, self.uri(f"reference/{name}"), [], by_year=False)

    def materialize(self, name: str, select_sql: str) -> int:
        physical = f"tmp_{self.tag}_{_safe_name(name)}"
        location = f"tmp/athena/{self.tag}/{_safe_name(name)}"
        self._drop_table(physical)
        # CTAS refuses a location that holds data (HIVE_PATH_ALREADY_EXISTS).
        self.store.delete_prefix(location + "/")
        self.execute(
            f"CREATE TABLE {physical} WITH (format = 'PARQUET', write_compression = 'SNAPPY', "
            f"external_location = '{self.uri(location)}') AS {self.bind(select_sql)}"
        )
        self.scratch.append((physical, location))
        self.names[name] = physical
        return self._count(physical)

    def derive(self, name: str, select_sql: str) -> int:
        """On Athena a derived relation is a scratch table too: a view could not outlive
        the scratch tables it names, and Athena bills each read of it again."""
        return self.materialize(name, select_sql)

    def alias(self, name: str, target: str) -> None:
        """Another name for a scratch table: no CTAS, so no copy to pay for."""
        self.names[name] = self.names.get(target, target)

    def ctas(self, select_sql: str, location: str, partitioned_by: Sequence[str]) -> int:
        """Write a version: Parquet at `location`, partitioned (Athena writes at most 100
        partitions a statement, which years never reach)."""
        physical = f"tmp_{self.tag}_version"
        partitions = ", ".join(f"'{p}'" for p in partitioned_by)
        self._drop_table(physical)
        self.execute(
            f"CREATE TABLE {physical} WITH (format = 'PARQUET', write_compression = 'SNAPPY', "
            f"external_location = '{self.uri(location)}', partitioned_by = ARRAY[{partitions}]) "
            f"AS {self.bind(select_sql)}"
        )
        self.scratch.append((physical, None))  # the data is the version: keep it
        described = self._table(physical)
        if described:
            self.columns = described["StorageDescriptor"]["Columns"]
        return self._count(physical)

    def attach(self, name: str, partitions: dict) -> None:
        """A run-scoped Glue table over partitions (year -> location), e.g. the new version."""
        physical = f"tmp_{self.tag}_{_safe_name(name)}"
        self._put_table(physical, self._curated_columns(), None, list(partitions.items()))
        self.scratch.append((physical, None))
        self.names[name] = physical

    def publish(self, table: str, partitions: dict) -> None:
        """Switch `table` to a version (year -> location key) in one statement readers can't
        see half of: each version is its own Glue table, TABLE_v_RUNID, partitioned by year,
        and `table` is a view over it, replaced by one CREATE OR REPLACE VIEW. (Pointing one
        table's partitions at a new version takes several Glue calls: a reader in between
        would see a mix of versions.) A view that is a bare SELECT * keeps every filter on
        year, trade_date or symbol reaching the version table's partitions and Parquet."""
        published = self._table(table)
        if not partitions:
            if published:
                self._drop_table(table)  # unpublished: the view goes, versions stay
            return
        name = self.version_table(table, partitions)
        self._put_version_table(table, name, partitions)
        if published and published.get("TableType") != "VIRTUAL_VIEW":
            # A daily_prices table from before versions were tables: once, the name is
            # freed for the view (readers miss it for the one statement below).
            self._drop_table(table)
        self.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {name}")

    @staticmethod
    def version_run(partitions: dict) -> str:
        """The run whose version these partitions make: the newest version= folder they
        name (a version reuses older versions' years, never newer ones)."""
        runs = [
            loc.split("version=", 1)[1].split("/", 1)[0]
            for loc in partitions.values()
            if "version=" in loc
        ]
        if not runs:
            raise MarketlakeError("no version=RUN_ID folder among the partitions to publish")
        return max(runs)

    @classmethod
    def version_table(cls, table: str, partitions: dict) -> str:
        """TABLE_v_RUNID: the Glue table of one version."""
        return f"{table}_v_{_safe_name(cls.version_run(partitions))}"

    def _put_version_table(self, table: str, name: str, partitions: dict) -> None:
        wanted = {str(y): self.uri(loc) for y, loc in partitions.items()}
        if self._table(name) is not None:
            have = {
                p["Values"][0]: p["StorageDescriptor"]["Location"] for p in self._partitions(name)
            }
            if have == wanted:
                return  # e.g. a rollback to a kept version: its table, with its own columns
            self._drop_table(name)  # half-made by a publish that failed: made again
        columns = _commented(self._curated_columns(), declared(table))
        location = self.uri(f"curated/{table}/version={self.version_run(partitions)}")
        self._put_table(name, columns, location, sorted(partitions.items()))

    def forget_versions(self, table: str, kept: list) -> None:
        """Drop the version tables of versions no longer kept (kept: their partitions)."""
        keep = {self.version_table(table, partitions) for partitions in kept if partitions}
        prefix = f"{table}_v_"
        paginator = self.glue.get_paginator("get_tables")
        for page in paginator.paginate(DatabaseName=self.database, Expression=f"{prefix}.*"):
            for found in page["TableList"]:
                if found["Name"].startswith(prefix) and found["Name"] not in keep:
                    self._drop_table(found["Name"])

    def create_or_replace_view(self, name: str, select_sql: str) -> None:
        self.execute(f"CREATE OR REPLACE VIEW {name} AS {self.bind(select_sql)}")

    def register_audit(
        self, name: str, prefix: str, schema, has_data: bool = True
    ) -> dict[str, str]:
        """A Glue table over the audit prefix (Athena reads an empty prefix as no rows). It
        reads no object (that would cost a query per table and run): it reports none
        unreadable."""
        if not self._table(name):
            self._put_table(name, _glue_columns(schema), self.uri(prefix), [], by_year=False)
        return {}

    def close(self) -> None:
        """Drop the run's scratch tables and their data; versions stay."""
        for table, location in reversed(self.scratch):
            self._drop_table(table)
            if location and self.store is not None:
                self.store.delete_prefix(location + "/")
        self.scratch = []

    def __enter__(self) -> AthenaEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- Glue ------------------------------------------------------------------------------

    def _table(self, name: str) -> dict | None:
        try:
            return self.glue.get_table(DatabaseName=self.database, Name=name)["Table"]
        except self.glue.exceptions.EntityNotFoundException:
            return None

    def _drop_table(self, name: str) -> None:
        with contextlib.suppress(self.glue.exceptions.EntityNotFoundException):
            self.glue.delete_table(DatabaseName=self.database, Name=name)

    def _partitions(self, table: str) -> list:
        found = []
        paginator = self.glue.get_paginator("get_partitions")
        for page in paginator.paginate(DatabaseName=self.database, TableName=table):
            found.extend(page["Partitions"])
        return found

    def _curated_columns(self) -> list:
        if self.columns is None:
            published = self._table("daily_prices")
            if published is None:
                raise MarketlakeError("no curated schema yet: write a version before attaching")
            columns = published["StorageDescriptor"]["Columns"]
            if published.get("TableType") == "VIRTUAL_VIEW":
                # The view's columns are the version table's, its partition key last.
                columns = [c for c in columns if c["Name"] != "year"]
            self.columns = columns
        return self.columns

    def _put_table(
        self, name: str, columns: list, location, partitions: list, by_year: bool = True
    ) -> None:
        descriptor = dict(PARQUET_FORMAT, Columns=columns)
        if location:
            descriptor["Location"] = location
        table_input = {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
            "StorageDescriptor": descriptor,
            "PartitionKeys": [{"Name": "year", "Type": "int"}] if by_year else [],
        }
        if self._table(name):
            self.glue.update_table(DatabaseName=self.database, TableInput=table_input)
        else:
            self.glue.create_table(DatabaseName=self.database, TableInput=table_input)
        self._create_partitions(
            name,
            [self._partition_input(y, self.uri(loc), columns) for y, loc in partitions],
            f"attach {name}",
        )

    def _create_partitions(self, table: str, inputs: list, what: str) -> None:
        """Add partitions in Glue-sized batches. Not wr.catalog.add_*_partitions: they pass
        over AlreadyExists errors and build their own SerDe where the crawler's is copied."""
        for start in range(0, len(inputs), GLUE_PARTITION_BATCH):
            self._check_batch(
                self.glue.batch_create_partition(
                    DatabaseName=self.database,
                    TableName=table,
                    PartitionInputList=inputs[start : start + GLUE_PARTITION_BATCH],
                ),
                what,
            )

    @staticmethod
    def _check_batch(answer: dict, what: str) -> None:
        """Glue's batch calls answer HTTP 200 with per-entry errors: never ignore them."""
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0].get("ErrorDetail", {})
            raise MarketlakeError(
                f"Glue refused {len(errors)} partition change(s) during {what}: "
                f"{first.get('ErrorCode', '')} {first.get('ErrorMessage', '')}".rstrip()
            )

    @staticmethod
    def _partition_input(year: str, location: str, columns: list) -> dict:
        return {
            "Values": [str(year)],
            "StorageDescriptor": dict(PARQUET_FORMAT, Columns=columns, Location=location),
        }

    def _count(self, physical: str) -> int:
        frame = self.fetch_df(f"SELECT count(*) AS n FROM {physical}")
        return int(frame["n"].iloc[0]) if len(frame) else 0


def _glue_columns(schema: pa.Schema) -> list:
    return [{"Name": f.name, "Type": _ARROW_TO_GLUE.get(f.type, "string")} for f in schema]


def _commented(columns: list, declaration: dict) -> list:
    """Glue columns with each declared column's unit and definition as its Comment, which
    Athena shows (columns.py); an undeclared column keeps what it had."""
    return [
        dict(c, Comment=declaration[c["Name"]].comment()) if c["Name"] in declaration else c
        for c in columns
    ]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _convert(values: pd.Series, athena_type: str) -> pd.Series:
    """Athena's result strings to typed values; a NULL arrives as a missing VarCharValue."""
    if athena_type == "boolean":
        return values.map({"true": True, "false": False}).astype("boolean")
    if athena_type in ("tinyint", "smallint", "integer", "bigint"):
        # Through int(), not float: a bigint above 2**53 keeps every digit.
        exact = [None if _missing(v) else int(v) for v in values]
        return pd.array(exact, dtype="Int64")
    if athena_type in ("float", "double", "real"):
        # float() reads Athena's 'NaN' and 'Infinity' too.
        return pd.Series(
            [float("nan") if _missing(v) else float(v) for v in values],
            index=values.index,
            dtype="float64",
        )
    if athena_type == "date":
        return values.map(lambda v: None if _missing(v) else dt.date.fromisoformat(v))
    if athena_type.startswith("timestamp"):
        return pd.to_datetime(values)
    return values
