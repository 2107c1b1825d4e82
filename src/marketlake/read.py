"""Reading a local lake's published daily_prices from Python (a notebook, a script).

The curated zone keeps several versions (MARKETLAKE_KEEP_VERSIONS), and a version is made of
year folders of several `version=` folders (an incremental build reuses the years it did
not touch), so neither `curated/daily_prices` nor the current `version=` folder is the
table. The registry (state/versions/daily_prices.json) is: these readers take the files of
its current version, checked against the digests its build recorded (a damaged file is
refused with the line `marketlake query` gives), and read them with the library asked for.

None of them opens lake/catalog.duckdb, which a build needs to itself: a notebook holding
these objects never blocks `marketlake build`, `query` or `dashboards`. The files a reader
listed stay as they are while newer versions publish; builds delete a version only once
MARKETLAKE_KEEP_VERSIONS newer ones exist (call again after builds to see new data).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marketlake.config import S3Lake, parse_home
from marketlake.engines.dialect import identifier, literal, transpile
from marketlake.errors import MarketlakeError, QueryError
from marketlake.sqlfiles import sql_root
from marketlake.storage import LocalStore, digest_cache_path
from marketlake.wap.build import TABLE
from marketlake.wap.verify import published_damage
from marketlake.wap.versions import load_registry, published_version, registry_key

if TYPE_CHECKING:
    import duckdb as duckdb_module

__all__ = ["duckdb", "files", "pandas", "polars", "sql"]

Home = str | os.PathLike | None


def _store(home: Home) -> LocalStore:
    """The lake at `home`; None: MARKETLAKE_HOME, else ./lake (as the CLI)."""
    lake = parse_home(home if home is not None else os.environ.get("MARKETLAKE_HOME") or None)
    if isinstance(lake, S3Lake):
        raise MarketlakeError(
            f"marketlake.read reads a local lake, not {lake}; on the deployed lake run "
            f"`marketlake --home {lake} query`, or query Athena's `marketlake` workgroup"
        )
    root = Path(lake).resolve()
    return LocalStore(root, digest_cache_path(root, os.environ))


def partitions(home: Home = None) -> dict[int, list[str]]:
    """year -> the current version's Parquet files of that year (absolute paths), checked."""
    store = _store(home)
    version = published_version(store, load_registry(store, TABLE))
    if version is None:
        raise MarketlakeError(
            f"{store.root / registry_key(TABLE)} publishes no version of {TABLE}; run "
            "`marketlake run` (or `marketlake build`) first"
        )
    damaged = published_damage(store, version)
    if damaged is not None:
        raise damaged
    if not version.partitions:
        raise MarketlakeError(f"version {version.run_id} of {TABLE} has no partitions")
    # The files the catalog's view reads: *.parquet directly in each year's folder.
    return {
        int(year): sorted(
            str(store.path(info.key))
            for info in store.list_objects(location + "/")
            if info.key.endswith(".parquet") and "/" not in info.key[len(location) + 1 :]
        )
        for year, location in sorted(version.partitions.items())
    }


def files(home: Home = None) -> list[str]:
    """The current version's Parquet files (absolute paths), after checking them against the
    digests its build recorded: DamagedFile, one line, if any differs."""
    return [path for paths in partitions(home).values() for path in paths]


def pandas(home: Home = None):
    """daily_prices as `marketlake query` sees it, as a pandas DataFrame."""
    return _arrow(partitions(home)).to_pandas()


def polars(home: Home = None):
    """daily_prices as `marketlake query` sees it, as a Polars DataFrame."""
    try:
        import polars as pl
    except ImportError:
        raise MarketlakeError(
            "marketlake.read.polars needs Polars, which is not installed; run "
            "`pip install polars` (or use marketlake.read.pandas)"
        ) from None
    frames = [
        # `year` is in the folder name only, as in the catalog's view: added from the
        # registry, not parsed from paths that also hold version=.
        pl.scan_parquet(paths, hive_partitioning=False).with_columns(
            pl.lit(year, dtype=pl.Int32).alias("year")
        )
        for year, paths in partitions(home).items()
    ]
    return pl.concat(frames).collect()


def duckdb(home: Home = None, con: duckdb_module.DuckDBPyConnection | None = None):
    """daily_prices as a DuckDB relation, on `con` (default: a new in-memory connection)
    where it is also the temporary view `daily_prices` for SQL."""
    import duckdb as duckdb_module

    con = con if con is not None else duckdb_module.connect()
    con.execute(f"CREATE OR REPLACE TEMP VIEW {TABLE} AS {_select(partitions(home))}")
    return con.table(TABLE)


def sql(statement: str, home: Home = None):
    """One Athena-dialect SELECT (as `marketlake query` takes) on daily_prices and the views
    defined over it alone (latest_prices, price_history, ...), as a DuckDB relation on an
    in-memory connection (.df(), .pl(), .arrow())."""
    import duckdb as duckdb_module

    con = duckdb_module.connect()
    duckdb(home, con)
    views = [TABLE]
    for path in sorted((sql_root() / "views").glob("*.sql")):
        try:
            body = transpile(path.read_text(encoding="utf-8"))
            con.execute(f"CREATE TEMP VIEW {identifier(path.stem)} AS {body}")
            views.append(path.stem)
        except duckdb_module.CatalogException:
            continue  # it reads the audit tables or the NYSE calendar: only the catalog has them
    duck = transpile(statement)
    try:
        return con.sql(duck)
    except duckdb_module.CatalogException as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise QueryError(
            f"{first} (marketlake.read.sql has {', '.join(views)}; `marketlake query` has the "
            "audit tables and every view)"
        ) from None


def _select(years: dict[int, list[str]]) -> str:
    """The rows of these partitions with their `year`, as the catalog's daily_prices."""
    return " UNION ALL BY NAME ".join(
        f"SELECT *, CAST({year} AS INTEGER) AS year FROM "
        f"read_parquet([{', '.join(map(literal, paths))}], hive_partitioning = false)"
        for year, paths in years.items()
    )


def _arrow(years: dict[int, list[str]]) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for year, paths in years.items():
        for path in paths:
            table = pq.read_table(path, partitioning=None)
            tables.append(table.append_column("year", pa.array([year] * len(table), pa.int32())))
    return pa.concat_tables(tables)
