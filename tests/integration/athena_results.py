"""What Athena leaves behind a query, for FakeAthena: workgroups and their output location, the
result file each query writes there, and GetQueryResults' column metadata.

awswrangler (the CLI's `query` on an S3 lake) reads a SELECT's result from the CSV Athena
writes to the output location, typed by GetQueryResults' ColumnInfo; a DESCRIBE's from the
text file. So the fake writes them as Athena does:

* the output location is the workgroup's when it enforces its configuration, else the
  client's ResultConfiguration, else the workgroup's; the file is <location>/<query id>.csv
  for a SELECT, .txt for DESCRIBE and DDL (CTAS, CREATE VIEW: empty);
* the CSV: a header row, every value double-quoted (a quote doubled), a NULL an empty
  unquoted field, values as GetQueryResults' VarCharValue text, one row a line;
* DESCRIBE's text: Hive's, each column `name<TAB>type<TAB>comment` padded to 20, then the
  partition columns again under "# Partition Information".

Athena's .metadata companion files are not written: no reader here opens them. A workgroup
no test created is allowed and has no output location (the AthenaEngine tests predate this):
its queries write no file, as before.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from botocore.exceptions import ClientError

# ColumnInfo's Precision by type, as Athena reports it (varchar, bigint and date as seen in
# its answers; the rest are Trino's column sizes). awswrangler reads Precision and Scale of
# a decimal; the rest only for likeness.
PRECISION = {
    "varchar": 2147483647,
    "bigint": 19,
    "integer": 10,
    "smallint": 5,
    "tinyint": 3,
    "double": 17,
    "real": 7,
    "boolean": 0,
    "date": 0,
    "timestamp": 3,
}
DESCRIBE_COLUMNS = ("col_name", "data_type", "comment")


def column_info(name: str, athena_type: str, precision: int | None = None, scale: int = 0):
    """One ResultSetMetadata.ColumnInfo entry, shaped like Athena's (a decimal's precision
    and scale given)."""
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": athena_type,
        "Precision": PRECISION.get(athena_type, 0) if precision is None else precision,
        "Scale": scale,
        "Nullable": "UNKNOWN",
        "CaseSensitive": athena_type == "varchar",
    }


def result_csv(rows: list[dict]) -> bytes:
    """A SELECT's result file from its GetQueryResults rows (the header row first)."""
    out = io.StringIO()
    for row in rows:
        cells = [cell.get("VarCharValue") for cell in row["Data"]]
        out.write(",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in cells))
        out.write("\n")
    return out.getvalue().encode()


def describe_result(table: dict) -> tuple[list, list]:
    """(ColumnInfo, rows) of `DESCRIBE table` from its Glue entry; rows without a header,
    as a DDL statement's result has none."""

    def line(*cells: str) -> dict:
        return {"Data": [{"VarCharValue": f"{c:<20}"} for c in cells]}

    columns = table["StorageDescriptor"].get("Columns", [])
    keys = table.get("PartitionKeys") or []
    rows = [line(c["Name"], c["Type"], c.get("Comment", "")) for c in [*columns, *keys]]
    if keys:
        rows += [line("", "", ""), line("# Partition Information", "", "")]
        rows += [line("# col_name", "data_type", "comment"), line("", "", "")]
        rows += [line(k["Name"], k["Type"], k.get("Comment", "")) for k in keys]
    return [column_info(name, "varchar") for name in DESCRIBE_COLUMNS], rows


def describe_txt(rows: list[dict]) -> bytes:
    return "".join(
        "\t".join(cell["VarCharValue"] for cell in row["Data"]) + "\n" for row in rows
    ).encode()


class Workgroups:
    """FakeAthena's workgroups (CreateWorkGroup, GetWorkGroup), the output location of each
    query, the result files written there, and GetQueryResults called directly."""

    s3: Any
    executions: dict
    workgroups: dict  # name -> GetWorkGroup's WorkGroup

    def create_work_group(self, *, Name: str, Configuration: dict | None = None, **_) -> dict:
        config = {"EnforceWorkGroupConfiguration": True, **(Configuration or {})}
        self.workgroups[Name] = {
            "Name": Name,
            "State": "ENABLED",
            "Configuration": config,
            "CreationTime": dt.datetime.now(dt.timezone.utc),
        }
        return {}

    def get_work_group(self, *, WorkGroup: str) -> dict:
        if WorkGroup not in self.workgroups:
            raise ClientError(
                {
                    "Error": {
                        "Code": "InvalidRequestException",
                        "Message": f"WorkGroup {WorkGroup} is not found.",
                    }
                },
                "GetWorkGroup",
            )
        return {"WorkGroup": self.workgroups[WorkGroup]}

    def output_location(self, workgroup: str, asked: dict | None) -> str | None:
        """Where a query's result goes: Athena's precedence of workgroup and client."""
        found = self.workgroups.get(workgroup)
        config = found["Configuration"] if found else {}
        own = (config.get("ResultConfiguration") or {}).get("OutputLocation")
        client = (asked or {}).get("OutputLocation")
        if config.get("EnforceWorkGroupConfiguration") and own:
            return own
        return client or own

    def write_result(self, execution: dict, location: str, suffix: str) -> None:
        """The result file of a finished query, and where GetQueryExecution says it is."""
        uri = f"{location.rstrip('/')}/{execution['QueryExecutionId']}{suffix}"
        if suffix == ".csv":
            body = result_csv(execution["rows"])
        elif execution["columns"]:  # DESCRIBE
            body = describe_txt(execution["rows"])
        else:
            body = b""
        bucket, _, key = uri[len("s3://") :].partition("/")
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        execution["OutputLocation"] = uri

    def get_query_results(
        self, *, QueryExecutionId: str, MaxResults: int = 1000, NextToken: str | None = None
    ) -> dict:
        """One page of GetQueryResults, at most MaxResults rows from NextToken."""
        execution = self.executions[QueryExecutionId]
        if execution.get("State") != "SUCCEEDED":
            raise ClientError(
                {
                    "Error": {
                        "Code": "InvalidRequestException",
                        "Message": f"Query has not yet finished. Current state: "
                        f"{execution.get('State')}",
                    }
                },
                "GetQueryResults",
            )
        start = int(NextToken or 0)
        end = start + MaxResults
        page = {
            "ResultSet": {
                "Rows": execution["rows"][start:end],
                "ResultSetMetadata": {"ColumnInfo": execution["columns"]},
            }
        }
        if end < len(execution["rows"]):
            page["NextToken"] = str(end)
        return page
