"""A test double of Athena's query API that really runs the SQL, for the WAP flow tests.

moto's Athena records queries but never runs them. FakeAthena answers the same calls
(start_query_execution, get_query_execution, stop_query_execution, the get_query_results
paginator) and runs each statement on an in-process DuckDB, the way Athena would against
the Glue catalog and S3 that moto provides:

* every table a statement reads is looked up in (moto) Glue and read from (moto) S3 at
  the locations Glue names: a partitioned table through its Glue partitions only, CSV
  tables by column position with every value as text (OpenCSVSerDe), Parquet tables by
  column name and checked against the Glue types;
* CTAS (`CREATE TABLE t WITH (format, external_location, partitioned_by) AS SELECT`) writes
  Parquet objects to S3 at external_location (key=value/ folders when partitioned) and
  creates the Glue table and its partitions, as Athena does, and fails as Athena does when
  the table exists, when the location already holds objects, when the partition columns
  are not the last ones, or past 100 partitions;
* SELECT answers in GetQueryResults' shape: a header row, VarCharValue text, ColumnInfo;
  in a workgroup with an output location it also writes the result file there, as Athena
  does (athena_results: what awswrangler reads); DESCRIBE describes a Glue table;
* CREATE OR REPLACE VIEW creates a DuckDB view and, as Athena does, a Glue table of type
  VIRTUAL_VIEW (the SQL in ViewOriginalText's "Presto View" JSON, the columns in the
  StorageDescriptor); it fails, as Trino does, when a table that is not a view has the name.
  A Glue view this instance did not create is read from its ViewOriginalText. Like Athena, a
  view is inlined into the query that reads it (DuckDB plans it the same way: the filters
  of the outer query reach the scan of the table under it, see `explain`).

Anything else is answered FAILED. `fail(sql)` may return a reason to fail a statement
with, the way Athena reports errors (State FAILED + StateChangeReason).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import itertools
import json
import uuid
from typing import Callable

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlglot
import sqlglot.errors
from athena_results import Workgroups, column_info, describe_result
from sqlglot import exp

from marketlake.engines.duckdb import transpile
from marketlake.errors import MarketlakeError
from marketlake.lake import raw

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
MAX_PARTITIONS = 100  # Athena: at most 100 partitions written by one CTAS/INSERT

_HIVE_TO_ARROW = {
    "string": pa.string(),
    "varchar": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "tinyint": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("ms"),
}


class AthenaFailure(Exception):
    """A statement Athena would answer FAILED; the message is its StateChangeReason."""


def hive_type(arrow_type: pa.DataType) -> str:
    """The Glue column type Athena's CTAS writes for a result column."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    names = {
        pa.int64(): "bigint",
        pa.int32(): "int",
        pa.int16(): "smallint",
        pa.int8(): "tinyint",
        pa.float64(): "double",
        pa.float32(): "float",
        pa.bool_(): "boolean",
        pa.date32(): "date",
    }
    if arrow_type not in names:
        raise AthenaFailure(f"NOT_SUPPORTED: the fake cannot store a column of type {arrow_type}")
    return names[arrow_type]


def athena_type(arrow_type: pa.DataType) -> str:
    """The ColumnInfo type name GetQueryResults reports for a result column."""
    found = hive_type(arrow_type)
    return {"string": "varchar", "int": "integer", "float": "real"}.get(found, found.split("(")[0])


def athena_text(value) -> str:
    """A value as GetQueryResults' VarCharValue text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, (dt.date, decimal.Decimal)):
        return str(value)
    return str(value)


def split_uri(uri: str) -> tuple[str, str]:
    assert uri.startswith("s3://"), uri
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


class FakeAthena(Workgroups):
    """Athena's query API (the calls AthenaEngine and awswrangler make) over DuckDB, moto Glue
    and moto S3."""

    def __init__(
        self,
        glue,
        s3,
        page_size: int = 1000,
        fail: Callable[[str], str | None] | None = None,
        pending_polls: int = 0,
    ) -> None:
        self.glue = glue
        self.s3 = s3
        self.page_size = page_size  # Athena: at most 1000 rows a page, the header included
        self.fail = fail
        self.pending_polls = pending_polls  # QUEUED/RUNNING answers before the final state
        self.con = duckdb.connect()
        self.executions: dict[str, dict] = {}
        self.order: list[str] = []  # execution ids in the order they were started
        self.stopped: list[str] = []
        self.views: dict[str, str] = {}
        self.workgroups: dict[str, dict] = {}
        self._loaded: dict[str, str] = {}  # DuckDB relation -> "table" | "view"
        # What each loaded table was read from, and parsed objects by ETag: a table is read
        # again only when Glue or S3 changed under it (the fake's only concession to speed).
        self._read_from: dict[str, tuple] = {}
        self._parsed: dict[tuple, pa.Table] = {}

    # -- the API ---------------------------------------------------------------------------

    def start_query_execution(
        self,
        *,
        QueryString: str,
        QueryExecutionContext: dict | None = None,
        WorkGroup=None,
        ResultConfiguration: dict | None = None,
        **_,
    ) -> dict:
        query_id = str(uuid.uuid4())
        context = dict(QueryExecutionContext or {})
        location = self.output_location(WorkGroup or "primary", ResultConfiguration)
        execution = {
            "QueryExecutionId": query_id,
            "Query": QueryString,
            "QueryExecutionContext": context,
            "WorkGroup": WorkGroup or "primary",
            "polls": 0,
            "submitted": dt.datetime.now(dt.timezone.utc),
            "rows": [],
            "columns": [],
        }
        self.executions[query_id] = execution
        self.order.append(query_id)
        try:
            reason = self.fail(QueryString) if self.fail else None
            if reason:
                raise AthenaFailure(reason)
            # Athena takes a quoted name too (awswrangler's describe_table sends `db`).
            database = context.get("Database", "default").strip("`")
            execution["columns"], execution["rows"], suffix = self._run(QueryString, database)
            execution["State"] = "SUCCEEDED"
            if location:
                self.write_result(execution, location, suffix)
        except AthenaFailure as exc:
            execution.update(State="FAILED", StateChangeReason=str(exc))
        except (duckdb.Error, MarketlakeError) as exc:  # MarketlakeError: transpile's
            execution.update(State="FAILED", StateChangeReason=str(exc).splitlines()[0])
        return {"QueryExecutionId": query_id}

    def get_query_execution(self, *, QueryExecutionId: str) -> dict:
        execution = self.executions[QueryExecutionId]
        execution["polls"] += 1
        state = execution.get("State", "SUCCEEDED")
        if execution["polls"] <= self.pending_polls and state != "CANCELLED":
            state = "QUEUED" if execution["polls"] == 1 else "RUNNING"
        status = {"State": state, "SubmissionDateTime": execution["submitted"]}
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            status["CompletionDateTime"] = execution["submitted"]
        if state == "CANCELLED" and execution.get("StateChangeReason"):
            status["StateChangeReason"] = execution["StateChangeReason"]
        if state == "FAILED":
            status["StateChangeReason"] = execution["StateChangeReason"]
            status["AthenaError"] = {
                "ErrorCategory": 2,
                "ErrorType": 1300,
                "Retryable": False,
                "ErrorMessage": execution["StateChangeReason"],
            }
        answer = {
            "QueryExecutionId": QueryExecutionId,
            "Query": execution["Query"],
            "QueryExecutionContext": execution["QueryExecutionContext"],
            "WorkGroup": execution["WorkGroup"],
            "Status": status,
        }
        if "OutputLocation" in execution:
            answer["ResultConfiguration"] = {"OutputLocation": execution["OutputLocation"]}
        return {"QueryExecution": answer}

    def stop_query_execution(self, *, QueryExecutionId: str) -> dict:
        self.stopped.append(QueryExecutionId)
        self.executions[QueryExecutionId]["State"] = "CANCELLED"
        return {}

    def get_paginator(self, operation: str):
        assert operation == "get_query_results", operation
        return _ResultsPaginator(self)

    # -- what tests look at ----------------------------------------------------------------

    @property
    def statements(self) -> list[str]:
        return [self.executions[q]["Query"] for q in self.order]

    def contexts(self) -> list[tuple[str, str]]:
        """(database, workgroup) of every statement, in order."""
        return [
            (
                self.executions[q]["QueryExecutionContext"].get("Database"),
                self.executions[q]["WorkGroup"],
            )
            for q in self.order
        ]

    # -- running statements ----------------------------------------------------------------

    def _run(self, sql: str, database: str) -> tuple[list, list, str]:
        """(ColumnInfo, rows, result file suffix) of a statement that succeeded."""
        try:
            tree = sqlglot.parse_one(sql, read="athena")
        except sqlglot.errors.ParseError as exc:
            raise AthenaFailure(f"line 1:1: mismatched input: {str(exc).splitlines()[0]}") from None
        if isinstance(tree, exp.Create) and tree.args.get("kind") == "TABLE" and tree.expression:
            self._ctas(tree, database)
            return [], [], ".txt"
        if isinstance(tree, exp.Create) and tree.args.get("kind") == "VIEW":
            if not tree.args.get("replace"):
                raise AthenaFailure("the fake expects CREATE OR REPLACE VIEW")
            name = tree.this.name
            existing = self._table(database, name)
            if existing is not None and existing.get("TableType") != "VIRTUAL_VIEW":
                raise AthenaFailure(f"Existing table is not a view: {database}.{name}")
            self._create_view(name, tree.expression.sql("athena"), database)
            self._put_glue_view(database, name, tree.expression.sql("athena"), existing)
            self.views[name] = sql
            return [], [], ".txt"
        if isinstance(tree, exp.Query):
            self._load_inputs(tree, database)
            result = self.con.sql(transpile(sql)).to_arrow_table()
            return (*self._result_set(result), ".csv")
        if isinstance(tree, exp.Describe) and isinstance(tree.this, exp.Table):
            table = self._table(tree.this.db or database, tree.this.name)
            if table is None:
                raise AthenaFailure(
                    f"FAILED: SemanticException [Error 10001]: Table not found {tree.this.name}"
                )
            return (*describe_result(table), ".txt")
        raise AthenaFailure(
            f"the fake runs CTAS, CREATE OR REPLACE VIEW, SELECT and DESCRIBE only: {sql[:60]}"
        )

    def _create_view(self, name: str, select_sql: str, database: str) -> None:
        self._load_inputs(sqlglot.parse_one(select_sql, read="athena"), database, exclude={name})
        self._drop_relation(name)
        self.con.execute(f'CREATE VIEW "{name}" AS {transpile(select_sql)}')
        self._loaded[name] = "view"

    def _put_glue_view(self, database: str, name: str, select_sql: str, existing) -> None:
        """The Glue entry Athena writes for a view: VIRTUAL_VIEW, its SQL base64-encoded in
        ViewOriginalText, its columns (Hive types) in the StorageDescriptor."""
        schema = _normalize(self.con.sql(f'SELECT * FROM "{name}" LIMIT 0').to_arrow_table()).schema
        columns = [{"Name": f.name, "Type": hive_type(f.type)} for f in schema]
        presto = {
            "originalSql": select_sql,
            "catalog": "awsdatacatalog",
            "schema": database,
            "columns": [{"name": c["Name"], "type": c["Type"]} for c in columns],
        }
        encoded = base64.b64encode(json.dumps(presto).encode()).decode()
        table_input = {
            "Name": name,
            "TableType": "VIRTUAL_VIEW",
            "Parameters": {"presto_view": "true", "comment": "Presto View"},
            "ViewOriginalText": f"/* Presto View: {encoded} */",
            "ViewExpandedText": "/* Presto View */",
            "StorageDescriptor": {"Columns": columns, "SerdeInfo": {}},
            "PartitionKeys": [],
        }
        if existing is None:
            self.glue.create_table(DatabaseName=database, TableInput=table_input)
        else:
            self.glue.update_table(DatabaseName=database, TableInput=table_input)

    def explain(self, sql: str, database: str = "default") -> str:
        """DuckDB's physical plan of an Athena-dialect SELECT, its inputs loaded as for a run:
        shows which filters reach which table's scan."""
        tree = sqlglot.parse_one(sql, read="athena")
        self._load_inputs(tree, database)
        return "\n".join(row[1] for row in self.con.execute(f"EXPLAIN {transpile(sql)}").fetchall())

    def _result_set(self, table: pa.Table) -> tuple[list, list]:
        columns = [
            column_info(f.name, athena_type(f.type), *_decimal_size(f.type)) for f in table.schema
        ]
        header = {"Data": [{"VarCharValue": f.name} for f in table.schema]}
        rows = [header]
        for record in table.to_pylist():
            rows.append(
                {
                    "Data": [
                        {} if value is None else {"VarCharValue": athena_text(value)}
                        for value in record.values()
                    ]
                }
            )
        return columns, rows

    def _ctas(self, tree: exp.Create, database: str) -> None:
        name = tree.this.name
        props: dict = {}
        for prop in tree.args["properties"].expressions:
            if isinstance(prop, exp.FileFormatProperty):
                props["format"] = prop.this.name
            elif isinstance(prop, exp.PartitionedByProperty):
                props["partitioned_by"] = [e.name for e in prop.this.expressions]
            else:
                props[prop.name.lower()] = prop.args["value"].name
        if str(props.get("format", "")).upper() != "PARQUET":
            raise AthenaFailure(f"the fake writes PARQUET only, not {props.get('format')}")
        location = props.get("external_location")
        if not location:
            raise AthenaFailure("the fake needs external_location (the workgroup has none)")
        location = location.rstrip("/") + "/"
        if self._table(database, name):
            raise AthenaFailure(f"Table {database}.{name} already exists")
        if self._keys(location):
            raise AthenaFailure(
                f"HIVE_PATH_ALREADY_EXISTS: Target directory for table '{database}.{name}' "
                f"already exists: {location}. You may need to manually clean the data at "
                "location before running the query again."
            )
        partitioned_by = props.get("partitioned_by", [])
        self._load_inputs(tree.expression, database)
        result = self.con.sql(transpile(tree.expression.sql("athena"))).to_arrow_table()
        result = _normalize(result)
        names = result.schema.names
        if partitioned_by and names[-len(partitioned_by) :] != partitioned_by:
            raise AthenaFailure(
                "HIVE_COLUMN_ORDER_MISMATCH: Partition keys must be the last columns in the "
                f"table and in the same order as the table properties: {partitioned_by}"
            )
        data_fields = [f for f in result.schema if f.name not in partitioned_by]
        columns = [{"Name": f.name, "Type": hive_type(f.type)} for f in data_fields]
        keys = [{"Name": p, "Type": hive_type(result.schema.field(p).type)} for p in partitioned_by]
        partitions = []
        if partitioned_by:
            values = sorted(
                set(zip(*(result.column(p).to_pylist() for p in partitioned_by))),
                key=lambda v: tuple(str(x) for x in v),
            )
            if len(values) > MAX_PARTITIONS:
                raise AthenaFailure(
                    f"HIVE_TOO_MANY_OPEN_PARTITIONS: Exceeded limit of {MAX_PARTITIONS} open "
                    "writers for partitions/buckets"
                )
            for value in values:
                mask = None
                for p, v in zip(partitioned_by, value):
                    this = pc.equal(result.column(p), v)
                    mask = this if mask is None else pc.and_(mask, this)
                part = result.filter(mask).select([f.name for f in data_fields])
                folder = "/".join(f"{p}={v}" for p, v in zip(partitioned_by, value))
                self._put_parquet(f"{location}{folder}/", part)
                partitions.append(([str(v) for v in value], f"{location}{folder}"))
        elif result.num_rows:
            self._put_parquet(location, result)
        descriptor = {
            "Columns": columns,
            "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE},
        }
        self.glue.create_table(
            DatabaseName=database,
            TableInput={
                "Name": name,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"classification": "parquet", "has_encrypted_data": "false"},
                "StorageDescriptor": descriptor,
                "PartitionKeys": keys,
            },
        )
        for start in range(0, len(partitions), 100):
            self.glue.batch_create_partition(
                DatabaseName=database,
                TableName=name,
                PartitionInputList=[
                    {"Values": values, "StorageDescriptor": dict(descriptor, Location=where)}
                    for values, where in partitions[start : start + 100]
                ],
            )

    def _put_parquet(self, folder_uri: str, table: pa.Table) -> None:
        bucket, prefix = split_uri(folder_uri)
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="snappy")
        # Athena names its output objects after the query, without an extension.
        self.s3.put_object(Bucket=bucket, Key=f"{prefix}{uuid.uuid4().hex}", Body=sink.getvalue())

    # -- reading tables through Glue -------------------------------------------------------

    def _load_inputs(self, tree: exp.Expression, database: str, exclude=()) -> None:
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        names = {t.name for t in tree.find_all(exp.Table)} - ctes - set(exclude)
        for name in sorted(names):
            table = self._table(database, name)
            if table is None:
                if name in self.views:  # dropped from Glue since
                    self.views.pop(name)
                    self._drop_relation(name)
                raise AthenaFailure(
                    f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}.{name}' "
                    "does not exist"
                )
            if table.get("TableType") == "VIRTUAL_VIEW":
                # Inlined: what the view reads is loaded (fresh) as for any query.
                text = table.get("ViewOriginalText", "")
                prefix = "/* Presto View: "
                if not text.startswith(prefix):
                    raise AthenaFailure(f"the fake reads Athena (Presto) views only ({name})")
                body = json.loads(base64.b64decode(text[len(prefix) : -len(" */")]))
                self._create_view(name, body["originalSql"], database)
                continue
            sources = self._sources(database, table)
            if self._read_from.get(name) == (table["StorageDescriptor"], sources):
                continue
            data = self._read_table(table, sources)
            self._drop_relation(name)
            self.con.register("_incoming", data)
            try:
                self.con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _incoming')
            finally:
                self.con.unregister("_incoming")
            self._loaded[name] = "table"
            self._read_from[name] = (table["StorageDescriptor"], sources)

    def _drop_relation(self, name: str) -> None:
        self._read_from.pop(name, None)
        kind = self._loaded.pop(name, None)
        if kind:
            self.con.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')

    def _table(self, database: str, name: str) -> dict | None:
        try:
            return self.glue.get_table(DatabaseName=database, Name=name)["Table"]
        except self.glue.exceptions.EntityNotFoundException:
            return None

    def _keys(self, folder_uri: str) -> list[tuple[str, str]]:
        """(key, ETag) of the objects under a folder."""
        bucket, prefix = split_uri(folder_uri)
        found = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            found.extend((item["Key"], item["ETag"]) for item in page.get("Contents", []))
        return sorted(found)

    def _sources(self, database: str, table: dict) -> tuple:
        """(location, partition values, objects) that a read of the table covers."""
        if table.get("PartitionKeys"):
            pages = self.glue.get_paginator("get_partitions").paginate(
                DatabaseName=database, TableName=table["Name"]
            )
            found = itertools.chain.from_iterable(p["Partitions"] for p in pages)
            places = [(p["StorageDescriptor"]["Location"], tuple(p["Values"])) for p in found]
        else:
            places = [(table["StorageDescriptor"]["Location"], ())]
        return tuple(
            (location, values, tuple(self._keys(location.rstrip("/") + "/")))
            for location, values in sorted(places)
        )

    def _read_table(self, table: dict, sources: tuple) -> pa.Table:
        descriptor = table["StorageDescriptor"]
        columns = descriptor["Columns"]
        keys = table.get("PartitionKeys") or []
        serde = descriptor.get("SerdeInfo", {})
        is_csv = serde.get("SerializationLibrary") == CSV_SERDE
        skip = int(serde.get("Parameters", {}).get("skip.header.line.count", "0"))
        if is_csv:
            schema = pa.schema([(c["Name"], pa.string()) for c in columns])  # OpenCSVSerDe
            # Athena's "$path" pseudo-column (the object a row came from). Athena leaves it
            # out of SELECT *; here it is one more column, which no build query selects by *.
            schema = schema.append(pa.field(PATH, pa.string()))
        else:
            schema = pa.schema([(c["Name"], _arrow_type(c["Type"])) for c in columns])
        pieces = []
        for location, values, objects in sources:
            piece = self._read_objects(location, objects, schema, is_csv, skip)
            for key, value in zip(keys, values):
                column = pa.array([value] * piece.num_rows, pa.string())
                piece = piece.append_column(key["Name"], column.cast(_arrow_type(key["Type"])))
            pieces.append(piece)
        full = pa.schema(list(schema) + [(k["Name"], _arrow_type(k["Type"])) for k in keys])
        return pa.concat_tables(pieces) if pieces else full.empty_table()

    def _read_objects(self, location, objects, schema: pa.Schema, is_csv: bool, skip: int):
        bucket, _ = split_uri(location)
        pieces = []
        for key, etag in objects:
            name = key.rsplit("/", 1)[-1]
            if not name or name.startswith(("_", ".")):  # Hive skips _SUCCESS, .crc, ...
                continue
            cached = (bucket, key, etag, schema, is_csv, skip)
            if cached in self._parsed:
                pieces.append(self._parsed[cached])
                continue
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if is_csv:
                try:
                    frame = pd.read_csv(
                        io.BytesIO(body),
                        dtype=str,
                        keep_default_na=False,
                        header=None,
                        skiprows=skip,
                    )
                except pd.errors.EmptyDataError:  # a header and no rows
                    continue
                # OpenCSVSerDe maps fields to columns by position.
                names = [n for n in schema.names if n != PATH]
                frame = frame.iloc[:, : len(names)]
                frame.columns = names[: frame.shape[1]]
                for missing in names[frame.shape[1] :]:
                    frame[missing] = None
                frame[PATH] = f"s3://{bucket}/{key}"
                piece = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            else:
                piece = _conform(pq.read_table(io.BytesIO(body)), schema, key)
            self._parsed[cached] = piece
            pieces.append(piece)
        return pa.concat_tables(pieces) if pieces else schema.empty_table()


class _ResultsPaginator:
    def __init__(self, athena: FakeAthena) -> None:
        self.athena = athena

    def paginate(self, *, QueryExecutionId: str, **_):
        execution = self.athena.executions[QueryExecutionId]
        if execution.get("State") != "SUCCEEDED":
            raise RuntimeError(f"InvalidRequestException: query is {execution.get('State')}")
        rows, size = execution["rows"], self.athena.page_size
        for start in range(0, max(len(rows), 1), size):
            page = {"ResultSet": {"Rows": rows[start : start + size]}}
            page["ResultSet"]["ResultSetMetadata"] = {"ColumnInfo": execution["columns"]}
            yield page


def _decimal_size(arrow_type: pa.DataType) -> tuple:
    """(precision, scale) ColumnInfo reports for a decimal; nothing for other types."""
    return (arrow_type.precision, arrow_type.scale) if pa.types.is_decimal(arrow_type) else ()


def _arrow_type(glue_type: str) -> pa.DataType:
    name = glue_type.lower()
    if name.startswith("decimal("):
        precision, scale = name[len("decimal(") : -1].split(",")
        return pa.decimal128(int(precision), int(scale))
    if name not in _HIVE_TO_ARROW:
        raise AthenaFailure(f"the fake does not read Glue type {glue_type}")
    return _HIVE_TO_ARROW[name]


def _normalize(table: pa.Table) -> pa.Table:
    """Result columns as Athena writes them: plain strings, timestamps at milliseconds."""
    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_string_view(kind) or pa.types.is_large_string(kind):
            kind = pa.string()
        elif pa.types.is_timestamp(kind):
            kind = pa.timestamp("ms")
        fields.append(pa.field(field.name, kind))
    return table.cast(pa.schema(fields))


def _conform(table: pa.Table, schema: pa.Schema, key: str) -> pa.Table:
    """Parquet columns by name, as the Glue schema types them (Athena's HIVE_BAD_DATA else)."""
    columns = []
    for field in schema:
        if field.name not in table.schema.names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        same = column.type == field.type
        widening = (pa.types.is_integer(column.type) and pa.types.is_integer(field.type)) or (
            pa.types.is_timestamp(column.type) and pa.types.is_timestamp(field.type)
        )
        if not (same or widening):
            raise AthenaFailure(
                f"HIVE_BAD_DATA: Field {field.name}'s type {column.type} in parquet file "
                f"{key} is incompatible with type {field.type} defined in table schema"
            )
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)


RAW_TABLE = "raw_daily_prices"
PATH = "$path"


def raw_table_input(bucket: str, prefix: str = "raw/daily_prices/") -> dict:
    """raw_daily_prices as terraform/glue.tf defines it (a contract test in tests/infra
    holds the HCL to this): CSV with a header, every column text, one partition per
    ingest_date. Tests that run no Terraform create it from here, as `make deploy` would."""
    header = {"skip.header.line.count": "1"}
    return {
        "Name": RAW_TABLE,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "csv", **header},
        "StorageDescriptor": {
            "Columns": [{"Name": name, "Type": "string"} for name in raw.RAW_COLUMNS],
            "Location": f"s3://{bucket}/{prefix}",
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {
                "SerializationLibrary": CSV_SERDE,
                "Parameters": {"separatorChar": ",", "quoteChar": '"', **header},
            },
        },
        "PartitionKeys": [{"Name": "ingest_date", "Type": "string"}],
    }


def crawl_raw(glue, s3, bucket: str, database: str, prefix: str = "raw/daily_prices/") -> list:
    """What the weekly crawler does with its catalog target on raw_daily_prices (every
    object, CRAWL_EVERYTHING): each raw object whose header differs from the table's
    columns is reported, never applied (UpdateBehavior LOG), and its folder is not added;
    every other ingest_date folder the table lacks becomes a partition. The table is
    Terraform's; a test without one gets raw_table_input's, as `make deploy` would make it.
    Returns the differences, one line each: empty when the raw zone matches the table."""
    try:
        table = glue.get_table(DatabaseName=database, Name=RAW_TABLE)["Table"]
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(DatabaseName=database, TableInput=raw_table_input(bucket, prefix))
        table = glue.get_table(DatabaseName=database, Name=RAW_TABLE)["Table"]
    descriptor = table["StorageDescriptor"]
    expected = [column["Name"] for column in descriptor["Columns"]]
    differences, folders, refused = [], {}, set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            folder, _, name = item["Key"][len(prefix) :].partition("/")
            if not folder.startswith("ingest_date=") or not name:
                continue
            folders[folder.split("=", 1)[1]] = f"s3://{bucket}/{prefix}{folder}/"
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            header = next(csv.reader(io.StringIO(body.partition("\n")[0])), [])
            if header != expected:
                refused.add(folder.split("=", 1)[1])
                differences.append(
                    f"s3://{bucket}/{item['Key']}: columns {header}, table {RAW_TABLE} "
                    f"has {expected}"
                )
    known = {
        p["Values"][0]
        for page in glue.get_paginator("get_partitions").paginate(
            DatabaseName=database, TableName=RAW_TABLE
        )
        for p in page["Partitions"]
    }
    for value, location in sorted(folders.items()):
        if value not in known and value not in refused:
            glue.create_partition(
                DatabaseName=database,
                TableName=RAW_TABLE,
                PartitionInput={
                    "Values": [value],
                    "StorageDescriptor": dict(descriptor, Location=location),
                },
            )
    return differences


class Recorder:
    """A client wrapper that records the calls made through it (name, kwargs), in order,
    and can run a hook before a call (e.g. to change the world behind the caller's back)."""

    def __init__(self, client, before: dict | None = None) -> None:
        self._client = client
        self._before = before or {}
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, name: str):
        target = getattr(self._client, name)
        if not callable(target) or name in ("exceptions", "get_paginator", "meta"):
            return target

        def call(*args, **kwargs):
            self.calls.append((name, kwargs))
            if name in self._before:
                self._before[name](**kwargs)
            return target(*args, **kwargs)

        return call

    def named(self, name: str) -> list[dict]:
        return [kwargs for called, kwargs in self.calls if called == name]
