"""SHOW TABLES and SHOW COLUMNS on the local lake: DuckDB's own SHOW would list its internal
and session relations, so both are answered from the catalog's relations (the lake's tables
and views), in the columns the Athena path answers with too."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from marketlake.engines.confined import Show
from marketlake.engines.dialect import identifier
from marketlake.errors import QueryError

if TYPE_CHECKING:
    from marketlake.engines.duckdb import DuckDBEngine

# The schema DuckDB keeps the catalog's relations in: the only "database" of a local lake.
LOCAL_DATABASE = "main"


def lake_relations(engine: DuckDBEngine) -> list[str]:
    """The catalog's tables and views, by name: not DuckDB's internal ones nor the reader's
    session views (which shadow catalog views under the same names)."""
    rows = engine.con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary "
        "UNION SELECT table_name FROM duckdb_tables() WHERE NOT internal AND NOT temporary "
        "ORDER BY 1"
    ).fetchall()
    return [name for (name,) in rows]


def show_local(engine: DuckDBEngine, show: Show) -> pa.Table:
    """SHOW TABLES as one column, table_name; SHOW COLUMNS as column_name and data_type."""
    if show.database not in (None, LOCAL_DATABASE):
        raise QueryError(
            f"no database {show.database} in the local lake: its tables are in "
            f"{LOCAL_DATABASE} (leave the database out)"
        )
    relations = lake_relations(engine)
    if show.table is None:
        return pa.table({"table_name": pa.array(relations, pa.string())})
    # Catalog names are matched as DuckDB does, case-insensitively.
    named = {name.lower(): name for name in relations}.get(show.table.lower())
    if named is None:
        raise QueryError(
            f"no table {show.table} in the lake (tables here: {', '.join(relations) or 'none'})"
        )
    described = engine.fetch_read(f"DESCRIBE {identifier(named)}")
    return pa.table(
        {
            "column_name": described.column("column_name"),
            "data_type": described.column("column_type"),
        }
    )
