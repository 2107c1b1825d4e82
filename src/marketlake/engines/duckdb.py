"""DuckDBEngine: the local stand-in for Athena. Shared SQL is transpiled with sqlglot."""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd
import sqlglot
from sqlglot import exp

from marketlake.config import default
from marketlake.engines.confined import READABLE_ZONES, outside, transpile_read
from marketlake.engines.dialect import identifier, literal, transpile
from marketlake.engines.duckdb_errors import PARQUET_DAMAGE, disk_full, one_line, raw_object
from marketlake.engines.duckdb_raw import (
    EMPTY_RAW_SQL,
    REJECTS_SQL,
    REJECTS_TABLES,
    read_raw_sql,
    rejects_by_object,
)
from marketlake.errors import DamagedFile, MarketlakeError, QueryError

# Where the raw view's scans record the rows they could not parse (temporary tables).
PARQUET_ROW_GROUP_ROWS = 122_880  # DuckDB's Parquet row group size (its default)


class DuckDBEngine:
    def __init__(
        self,
        lake_root: Path,
        catalog_path: Path | None = None,
        memory_limit: str = default("duckdb_memory_limit"),
        threads: int = default("duckdb_threads"),
        read_only: bool = False,
        confined: bool = False,
    ) -> None:
        """`confined`: a reader's connection (read_only) that can open no file outside the
        lake's zones in READABLE_ZONES and can change no setting."""
        self.root = Path(lake_root).resolve()
        self.catalog_path = Path(catalog_path or self.root / "catalog.duckdb")
        if read_only and not self.catalog_path.exists():
            raise MarketlakeError(
                f"no catalog at {self.catalog_path}; run `marketlake run` to build the lake first"
            )
        # Views name the lake's files relative to the lake, and DuckDB resolves relative
        # paths against file_search_path: a moved or copied lake reads its own files.
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": memory_limit,
            "file_search_path": str(self.root),
            # A partitioned COPY holds this many rows per partition before it writes them.
            # The metrics emit rows symbol by symbol, so every year partition fills at once:
            # DuckDB's default (524,288) times 10 partitions of a wide table outgrows a 1 GB
            # memory limit. One row group per partition: 0.72x the write time (`make bench`,
            # bench/bench_parquet_write.py, 5M rows x 27 columns: 2.56 s against 3.58 s).
            "partitioned_write_flush_threshold": PARQUET_ROW_GROUP_ROWS,
        }
        if threads:
            config["threads"] = threads
        try:
            self.catalog_path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(self.catalog_path), read_only=read_only, config=config)
        except (duckdb.Error, OSError) as exc:
            full = disk_full(exc, self.catalog_path)
            if full is not None:
                raise full from None
            if isinstance(exc, OSError):
                raise
            if "lock" in str(exc).lower():
                raise MarketlakeError(
                    f"{self.catalog_path} is in use by another process (a build, or an open "
                    "DuckDB client); close it or wait, then try again"
                ) from None
            raise MarketlakeError(f"cannot open {self.catalog_path}: {one_line(exc)}") from None
        self.confined = confined
        self._unreadable: dict[str, QueryError] = {}  # view -> why a confined read fails
        self._view_sql: dict[str, str] = {}
        if confined:
            self._confine()

    def _confine(self) -> None:
        if any(char in str(self.root) for char in "[]*?"):
            raise MarketlakeError(
                f"the lake path {self.root} holds [, ], * or ?, which DuckDB reads as a file "
                "pattern, so marketlake query cannot keep its reads inside the lake; rename or "
                "move the lake"
            )
        # DuckDB checks allowed_directories against a path as written, before it resolves a
        # relative one through file_search_path, so the catalog's lake-relative views would
        # be refused: shadow each with a session view naming the same files absolutely.
        zones = "|".join(READABLE_ZONES)
        relative = re.compile(rf"'((?:{zones})/(?:[^']|'')*)'")
        views = self.con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal AND NOT temporary"
        ).fetchall()
        for name, sql in views:
            absolute = relative.sub(
                lambda found: literal(str(self.root / found.group(1).replace("''", "'"))), sql
            )
            if absolute == sql:
                continue
            try:
                self.con.execute(re.sub(r"^CREATE VIEW\b", "CREATE TEMP VIEW", absolute, count=1))
            except duckdb.Error as exc:
                # A file it reads is damaged: any statement that reads this view, directly or
                # through others, fails with the damaged-file remedies (see fetch_read); a
                # stand-in view would answer count(*) with a number.
                self._unreadable[name.lower()] = self._query_error(exc, absolute)
                self.con.execute(
                    f"CREATE TEMP VIEW {identifier(name)} AS "
                    f"SELECT error({literal(one_line(exc))}) AS unreadable"
                )
        self._view_sql = {name.lower(): sql for name, sql in views}
        # Order matters: the directories are set before external access goes off, and the
        # lock comes last, so no statement can undo either.
        allowed = [str(self.root / zone) + "/" for zone in READABLE_ZONES]
        self.con.execute(f"SET allowed_directories = [{', '.join(map(literal, allowed))}]")
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def close(self) -> None:
        try:
            self.con.close()  # checkpoints the catalog's write-ahead log into its file
        except duckdb.Error as exc:
            full = disk_full(exc, self.catalog_path)
            if full is None:
                raise
            raise full from None

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- running SQL ---------------------------------------------------------------------

    def fetch_df(self, sql: str) -> pd.DataFrame:
        return self.fetch_native(transpile(sql))

    def fetch_arrow(self, sql: str):
        """Rows as an Arrow table: dates stay dates and NULLs stay NULL."""
        statement = transpile(sql)
        try:
            return self.con.sql(statement).to_arrow_table()
        except duckdb.Error as exc:
            raise self._query_error(exc, statement) from None

    def _reads_unreadable(self, statement: str) -> QueryError | None:
        """Why `statement` cannot be answered, if it reads a view over a damaged file."""
        if not self._unreadable:
            return None
        parsed = sqlglot.parse_one(statement, read="duckdb")
        todo = [table.name.lower() for table in parsed.find_all(exp.Table)]
        seen: set = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in self._unreadable:
                return self._unreadable[name]
            body = self._view_sql.get(name, "")
            todo += [v for v in self._view_sql if re.search(rf"\b{re.escape(v)}\b", body, re.I)]
        return None

    def fetch_read(self, sql: str):
        """A user's statement, refused unless it only reads (see transpile_read); rows as
        an Arrow table."""
        statement = transpile_read(sql, self.root)
        unreadable = self._reads_unreadable(statement)
        if unreadable is not None:
            raise unreadable
        try:
            return self.con.sql(statement).to_arrow_table()
        except duckdb.PermissionException as exc:
            # A backstop: confine_paths refuses the paths it sees before DuckDB runs.
            path = re.search(r'"([^"]*)"', str(exc))
            raise outside(path.group(1) if path else "a file", self.root) from None
        except duckdb.Error as exc:
            raise self._query_error(exc, statement) from None

    def _query_error(self, exc: BaseException, statement: str | None = None) -> QueryError:
        """A DuckDB error as one line naming the lake file at fault, if any, and what to do."""
        message = one_line(exc).replace(f" of {self.root}/", " of lake object ")
        message = message.replace(f"read {self.root}/", "read lake object ")
        raw = raw_object(str(exc), self.root)
        if raw is not None:
            symbol = raw.rsplit("/", 1)[-1].split(".", 1)[0]
            reason = re.sub(  # the object is named once, first
                r"^cannot read (?:line (\d+) of )?lake object .+?: ",
                lambda m: f"line {m.group(1)}: " if m.group(1) else "",
                message,
            )
            return QueryError(
                f"raw object {raw} cannot be read ({reason}); re-import it with "
                f"`marketlake import`, or land it again with `marketlake ingest --refetch "
                f"{symbol}`, then build again"
            )
        damaged = self._damaged_file(message)
        if damaged is None and PARQUET_DAMAGE.search(message):
            damaged = self._find_damaged(statement)  # DuckDB's thrift errors name no file
        if damaged is not None:
            return DamagedFile(
                f"{damaged} in the lake is damaged ({message}); switch daily_prices back with "
                "`marketlake rollback`, or rebuild it from raw with `marketlake build --full`"
            )
        if message.startswith("Catalog Error: Table"):  # not for a function's name
            names = self.con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary "
                "UNION SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1"
            ).fetchall()
            message += f" (tables here: {', '.join(n for (n,) in names) or 'none'})"
        return QueryError(message)

    def _damaged_file(self, message: str) -> str | None:
        """The lake key of a published Parquet file DuckDB could not read, if it says so."""
        for found in re.finditer(r"""['"]([^'"]+\.parquet)['"]""", message):
            path = Path(found.group(1))
            if path.is_relative_to(self.root / "curated"):
                return path.relative_to(self.root).as_posix()
        return None

    def _find_damaged(self, statement: str | None) -> str | None:
        """The first published Parquet file `statement` reads (through views, or any view's
        without one) that DuckDB cannot decode: each is read alone, every column, on the
        failure path only."""
        views = dict(
            self.con.execute(
                "SELECT lower(view_name), sql FROM duckdb_views() WHERE NOT internal "
                "ORDER BY temporary"  # a session view shadows the catalog's
            ).fetchall()
        )
        todo = [statement] if statement else list(views.values())
        seen: set[str] = set()
        files: list[str] = []
        while todo:
            body = todo.pop(0)
            for pattern in re.findall(r"'([^']*\.parquet)'", body):
                for file in sorted(glob.glob(str(self.root / pattern), recursive=True)):
                    if file not in files and Path(file).is_relative_to(self.root / "curated"):
                        files.append(file)
            for name, sql in views.items():
                if name not in seen and re.search(rf"\b{re.escape(name)}\b", body, re.I):
                    seen.add(name)
                    todo.append(sql)
        for file in files:
            try:
                self.con.execute(f"SELECT count(COLUMNS(*)) FROM read_parquet({literal(file)})")
            except duckdb.Error:
                return Path(file).relative_to(self.root).as_posix()
        return None

    def fetch_native(self, sql: str, params: list | None = None) -> pd.DataFrame:
        try:
            return self.con.execute(sql, params or []).df()
        except duckdb.Error as exc:
            raise self._write_error(exc, self.catalog_path, sql) from None

    def execute_native(self, sql: str, params: list | None = None) -> None:
        try:
            self.con.execute(sql, params or [])
        except duckdb.Error as exc:
            # A statement's writes go to the catalog (and its spill files beside it).
            raise self._write_error(exc, self.catalog_path, sql) from None

    def _write_error(self, exc: duckdb.Error, where: Path, sql: str) -> MarketlakeError:
        full = disk_full(exc, where)
        return full if full is not None else self._query_error(exc, sql)

    def has_relation(self, name: str) -> bool:
        found = self.con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND NOT internal "
            "UNION ALL SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
            [name, name],
        ).fetchall()
        return sum(row[0] for row in found) > 0

    # -- the lake's relations ----------------------------------------------------------------

    def path(self, key: str) -> Path:
        return self.root / key

    def _pattern(self, prefix: str, glob: str) -> str:
        """A lake-relative file pattern for a view (resolved through file_search_path); an
        absolute one on a confined reader, whose session views DuckDB checks as written."""
        relative = f"{prefix.strip('/')}/{glob}"
        return literal(str(self.root / relative) if self.confined else relative)

    def register_raw(self, name: str, prefix: str, since: str | None = None) -> None:
        """A view over CSV objects under `prefix`, every column text, Hive partitions as text:
        what the Glue crawler's OpenCSVSerDe table gives Athena. The columns are positional
        after the header, as in Athena; naming them spares DuckDB sniffing every file (50x).

        `since` (an ingest_date): this session reads only the partitions from that day on,
        through a temporary view that shadows the catalog's. DuckDB lists every file a glob
        matches before it prunes partitions, so a daily build over `*/*.csv` would list every
        raw object ever landed (2,000 a day at 2,000 symbols); the catalog's view, which
        users query, still reads them all (made anew only without `since`)."""
        # Rows the reader cannot parse (an unclosed quote, extra fields, bytes that are not
        # UTF-8) are skipped, as Athena's SerDe never stops on a row, and recorded in this
        # session's rejects tables, which raw_rejects() reads after the build's scan.
        for table in REJECTS_TABLES:
            self.con.execute(f"DROP TABLE IF EXISTS temp.main.{table}")
        every_day = read_raw_sql(self._pattern(prefix, "*/*.csv"))
        if since is None:
            self.execute_native(f"CREATE OR REPLACE VIEW {name} AS {every_day}")
            return
        # Creating the view binds it, which lists every object: a daily build keeps the one
        # a full build (or a skipped one) made, and makes it only if the catalog lacks it.
        self.execute_native(f"CREATE VIEW IF NOT EXISTS {name} AS {every_day}")
        try:
            folders = [e.name for e in (self.root / prefix).iterdir() if e.is_dir()]
        except FileNotFoundError:
            folders = []
        days = sorted(
            f for f in folders if f.startswith("ingest_date=") and f.split("=", 1)[1] >= since
        )
        if days:
            recent = read_raw_sql(
                "[" + ", ".join(self._pattern(prefix, f"{day}/*.csv") for day in days) + "]"
            )
        else:  # nothing landed since: the same columns, no rows
            recent = EMPTY_RAW_SQL
        self.execute_native(f"CREATE OR REPLACE TEMP VIEW {name} AS {recent}")

    def raw_rejects(self) -> pd.DataFrame:
        """The raw rows the scans of the raw view since register_raw could not parse: the
        object (lake key), its line (the header is line 1) and DuckDB's reason."""
        if not self.has_relation(REJECTS_TABLES[0]):
            return pd.DataFrame({"raw_object": [], "raw_line": [], "reason": []})
        frame = self.fetch_native(REJECTS_SQL)
        return rejects_by_object(frame, self.root)

    def register_audit(
        self, name: str, prefix: str, schema, has_data: bool = True
    ) -> dict[str, str]:
        """A view over the Parquet objects under `prefix` (one per run); before the first
        object exists, an empty view of the same columns, so queries and dashboards work.
        Returns the objects it cannot read (lake key -> why), for the caller to set aside:
        one unreadable object fails every read of the view."""
        if has_data:
            pattern = self._pattern(prefix, "*.parquet")
            select = f"SELECT * FROM read_parquet({pattern}, union_by_name = true)"
        else:
            empty = schema.empty_table()
            self.con.register("_empty", empty)
            try:
                kinds = self.con.execute("DESCRIBE SELECT * FROM _empty").fetchall()
            finally:
                self.con.unregister("_empty")
            columns = ", ".join(f"CAST(NULL AS {kind}) AS {col}" for col, kind, *_ in kinds)
            select = f"SELECT {columns} WHERE false"
        try:
            self.execute_native(f"CREATE OR REPLACE VIEW {name} AS {select}")
            if has_data:
                self._count(name)  # reads each object's footer only: cheap, what breaks first
        except (duckdb.Error, QueryError):
            unreadable = self.unreadable_files(prefix) if has_data else {}
            if not unreadable:
                raise
            return unreadable
        return {}

    def unreadable_files(self, prefix: str) -> dict[str, str]:
        """Lake key -> DuckDB's reason, of each Parquet object under `prefix` it cannot read
        (every row is read: a damaged page fails too)."""
        folder = self.root / prefix.strip("/")
        unreadable = {}
        for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
            try:
                self.con.execute(f"SELECT * FROM read_parquet({literal(str(path))})").fetchall()
            except duckdb.Error as exc:
                unreadable[path.relative_to(self.root).as_posix()] = one_line(exc)
        return unreadable

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """A reference table kept in the catalog (e.g. the NYSE sessions, which views use)."""
        self.con.register("_frame", frame)
        try:
            self.execute_native(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _frame")
        finally:
            self.con.unregister("_frame")

    def _drop_temp(self, name: str) -> None:
        """A session relation may be a table in one run and a view in the next."""
        kinds = self.con.execute(
            "SELECT 'VIEW' FROM duckdb_views() WHERE temporary AND view_name = ? "
            "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE temporary AND table_name = ?",
            [name, name],
        ).fetchall()
        for (kind,) in kinds:
            self.execute_native(f"DROP {kind} IF EXISTS temp.main.{name}")

    def _count(self, name: str) -> int:
        # fetchall, not fetchone: DuckDB 2.0 leaves a result fetched by fetchone unfinished,
        # and registering a frame on the connection then fails (Resource In Use).
        ((count,),) = self.con.execute(f"SELECT count(*) FROM {name}").fetchall()
        return int(count)

    def materialize(self, name: str, select_sql: str) -> int:
        """Compute an Athena-dialect SELECT once into a table for this session."""
        self._drop_temp(name)
        self.execute_native(f"CREATE TEMP TABLE {name} AS {transpile(select_sql)}")
        return self._count(name)

    def derive(self, name: str, select_sql: str) -> int:
        """A relation read once or twice: a view (no copy of the rows); returns its count."""
        self._drop_temp(name)
        self.execute_native(f"CREATE TEMP VIEW {name} AS {transpile(select_sql)}")
        return self._count(name)

    def alias(self, name: str, target: str) -> None:
        self._drop_temp(name)
        self.execute_native(f"CREATE TEMP VIEW {name} AS SELECT * FROM {target}")

    def ctas(self, select_sql: str, location: str, partitioned_by: Sequence[str]) -> int:
        target = self.path(location)
        if target.exists():
            raise MarketlakeError(f"{target} already exists; a version is written once")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise (disk_full(exc, target.parent) or exc) from None
        # Doubles are nearly all distinct: past 1,000 distinct values in a row group a column
        # is written PLAIN, which spares DuckDB building dictionaries it throws away (~20% of
        # a full build's write). candle_type keeps its dictionary, and so does symbol while a
        # row group holds at most 1,000 symbols (a year of 2,000 symbols holds ~490 each).
        options = [
            "FORMAT parquet",
            "COMPRESSION snappy",
            "DICTIONARY_SIZE_LIMIT 1000",
            f"ROW_GROUP_SIZE {PARQUET_ROW_GROUP_ROWS}",
        ]
        if partitioned_by:
            options.append(f"PARTITION_BY ({', '.join(partitioned_by)})")
        sql = f"COPY ({transpile(select_sql)}) TO {literal(str(target))} ({', '.join(options)})"
        try:
            rows = self.con.execute(sql).fetchall()  # all: see _count
        except duckdb.Error as exc:
            # The version folder, not the one file DuckDB names: the build deletes it whole.
            raise self._write_error(exc, target, sql) from None
        return int(rows[0][0]) if rows else 0

    def _partitions_select(self, partitions: Sequence[str]) -> str:
        # Hive segments above the partition (version=...) are not columns of the table.
        above = sorted(
            {
                seg.split("=", 1)[0]
                for loc in partitions
                for seg in loc.split("/")[:-1]
                if "=" in seg
            }
        )
        patterns = ", ".join(self._pattern(loc, "*.parquet") for loc in partitions)
        exclude = f" EXCLUDE ({', '.join(above)})" if above else ""
        return (
            f"SELECT *{exclude} FROM read_parquet([{patterns}], hive_partitioning = true, "
            "hive_types_autocast = false, hive_types = {'year': INTEGER})"
        )

    def attach(self, name: str, partitions: dict[str, str]) -> None:
        """A session-only view over partitions (value -> location), e.g. a version before it
        is published."""
        select = self._partitions_select(sorted(partitions.values()))
        self._drop_temp(name)
        self.execute_native(f"CREATE TEMP VIEW {name} AS {select}")

    def publish(self, table: str, partitions: dict[str, str]) -> None:
        """Point `table` at these partitions (value -> location): one DDL statement, so a
        reader sees the old set or the new one."""
        if not partitions:
            self.execute_native(f"DROP VIEW IF EXISTS {table}")
            return
        select = self._partitions_select(sorted(partitions.values()))
        self.execute_native(f"CREATE OR REPLACE VIEW {table} AS {select}")

    def forget_versions(self, table: str, kept: list) -> None:
        """Nothing to drop: the view reads each version's files directly."""

    def follow(self, table: str, partitions: dict[str, str]) -> bool:
        """On a read-only catalog: if `table` does not read exactly these partitions (a kill
        stopped the catalog from following the registry), shadow it with a session view that
        does; the views over `table` then read that. True if it had to."""
        found = self.con.execute(
            "SELECT sql FROM duckdb_views() WHERE view_name = ? AND NOT temporary", [table]
        ).fetchall()
        read = set(re.findall(r"'([^']*\.parquet)'", found[0][0])) if found else set()
        if read == {f"{loc.strip('/')}/*.parquet" for loc in partitions.values()}:
            return False
        self.attach(table, partitions)
        return True

    def create_or_replace_view(self, name: str, select_sql: str) -> None:
        self.execute_native(f"CREATE OR REPLACE VIEW {name} AS {transpile(select_sql)}")
