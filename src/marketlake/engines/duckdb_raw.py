"""How DuckDB reads the raw zone as Athena's OpenCSVSerDe table does, and where it records
the rows it could not parse (DuckDBEngine.register_raw, raw_rejects)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from marketlake.lake.raw import RAW_COLUMNS

# Athena's pseudo-column naming the object a row was read from (s3://bucket/key); DuckDB's
# read_csv gives it as `filename`. The build reconciles rows per object with it.
PATH = "$path"

# Where the raw view's scans record the rows they could not parse (temporary tables).
REJECTS_TABLES = ("raw_reject_errors", "raw_reject_scans")

# Nothing landed since: the raw view's columns, no rows.
EMPTY_RAW_SQL = (
    "SELECT "
    + ", ".join(f'CAST(NULL AS VARCHAR) AS "{c}"' for c in [*RAW_COLUMNS, "ingest_date", PATH])
    + " WHERE FALSE"
)

# One row per line: two scans of the same file (the raw reconciliation's count, then the
# build's read) word a line's error differently.
REJECTS_SQL = (
    "SELECT s.file_path AS path, e.line AS raw_line, "
    "arg_min(e.error_type || ': ' || e.error_message, e.scan_id) AS reason "
    f"FROM {REJECTS_TABLES[0]} AS e "
    f"JOIN {REJECTS_TABLES[1]} AS s ON e.scan_id = s.scan_id AND e.file_id = s.file_id "
    "GROUP BY path, raw_line ORDER BY path, raw_line"
)


def read_raw_sql(files: str) -> str:
    """A read of raw CSV objects (`files`: a DuckDB path, pattern or list literal): every
    column text, positional after the header; rows it cannot parse are skipped, as Athena's
    SerDe never stops on a row, and recorded in the REJECTS_TABLES."""
    columns = ", ".join(f"'{c}': 'VARCHAR'" for c in RAW_COLUMNS)
    return (
        f'SELECT * EXCLUDE (filename), filename AS "{PATH}" '
        f"FROM read_csv({files}, filename = true, "
        "header = true, auto_detect = false, columns = {" + columns + "}, "
        "delim = ',', quote = '\"', escape = '\"', null_padding = true, "
        "hive_partitioning = true, hive_types_autocast = false, store_rejects = true, "
        f"rejects_table = '{REJECTS_TABLES[0]}', rejects_scan = '{REJECTS_TABLES[1]}')"
    )


def rejects_by_object(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """REJECTS_SQL's rows with the object's lake key (raw_object) in place of its path."""
    prefix = str(root) + "/"
    keys = [p[len(prefix) :] if p.startswith(prefix) else p for p in frame["path"]]
    frame.insert(0, "raw_object", keys)
    return frame.drop(columns="path")
