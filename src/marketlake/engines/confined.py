"""What `marketlake query` runs: one statement that only reads, and only files of the lake's
readable zones, a relative path being relative to the lake (not the working directory)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sqlglot
import sqlglot.errors
from sqlglot import exp
from sqlglot.tokens import TokenType

from marketlake.engines.dialect import generate, parse
from marketlake.errors import QueryError

# What a confined reader may open: the published tables, the audit tables, and the raw zone
# (raw_daily_prices). Never state/, quarantine/ or anything outside the lake.
READABLE_ZONES = ("curated", "audit", "raw")

READS = "SELECT, WITH, VALUES, DESCRIBE, SHOW TABLES or SHOW COLUMNS"

# DuckDB's table functions whose first argument names files (a parameter called path, paths,
# pattern or file); tests/unit/test_confined.py checks the list against duckdb_functions().
FILE_FUNCTIONS = frozenset(
    [
        "glob",
        "parquet_bloom_probe",
        "parquet_file_metadata",
        "parquet_full_metadata",
        "parquet_kv_metadata",
        "parquet_metadata",
        "parquet_scan",
        "parquet_schema",
        "read_blob",
        "read_csv",
        "read_csv_auto",
        "read_duckdb",
        "read_json",
        "read_json_auto",
        "read_json_objects",
        "read_json_objects_auto",
        "read_ndjson",
        "read_ndjson_auto",
        "read_ndjson_objects",
        "read_parquet",
        "read_single_csv_file",
        "read_single_json_file",
        "read_single_parquet_file",
        "read_text",
        "sniff_csv",
        "which_secret",
    ]
)


def outside(path: str, root: Path) -> QueryError:
    """The refusal of a file outside the readable zones, naming it as the user wrote it."""
    zones = ", ".join(f"{root / zone}/" for zone in READABLE_ZONES)
    return QueryError(
        f"{path} is outside the lake: marketlake query only reads the lake's tables and files "
        f"under {zones} (a relative path is read from {root})"
    )


def in_lake(path: str, root: Path) -> str | None:
    """The absolute path to open for `path` (relative to the lake root), if it lies in a
    readable zone. Decided on the text, as DuckDB's allowed_directories does: `..` segments
    are folded first, so curated/../state/x is state/x; URLs and ~ are never in the lake."""
    if "://" in path or path.startswith("~"):
        return None
    absolute = os.path.normpath(path if os.path.isabs(path) else os.path.join(root, path))
    if any(absolute.startswith(f"{root / zone}{os.sep}") for zone in READABLE_ZONES):
        return absolute
    return None


def _function_name(func: exp.Func) -> str:
    return (func.name if isinstance(func, exp.Anonymous) else func.sql_name()).lower()


def _file_argument(func: exp.Func):
    if not isinstance(func, exp.Anonymous) and isinstance(func.this, exp.Expression):
        return func.this  # read_csv('x', ...) parses as ReadCSV(this='x')
    first = func.expressions[0] if func.expressions else None
    # A named parameter first (read_csv(delim = ',')) names no file; DuckDB says what lacks.
    return None if isinstance(first, (exp.EQ, exp.PropertyEQ, exp.Kwarg)) else first


def confine_paths(statement, root: Path) -> None:
    """Point every file the statement names at the lake, in place: table functions' file
    arguments (read_parquet, read_csv, glob ...) and tables named like files ("raw/x.csv",
    which DuckDB reads as that file). DuckDB would resolve a relative path against the working
    directory before file_search_path, and refuse it under allowed_directories; here it is
    made absolute from the lake root. A path outside the readable zones is refused by name."""
    for func in list(statement.find_all(exp.Func)):
        name = _function_name(func)
        files = _file_argument(func) if name in FILE_FUNCTIONS else None
        if files is None:
            continue
        for literal in files.expressions if isinstance(files, exp.Array) else [files]:
            if not (isinstance(literal, exp.Literal) and literal.is_string):
                raise QueryError(
                    f"{name}({files.sql(dialect='duckdb')}) names its files by an expression: "
                    "marketlake query reads files named by quoted paths, relative to the lake "
                    f"({root}) or absolute"
                )
            absolute = in_lake(literal.this, root)
            if absolute is None:
                raise outside(literal.this, root)
            literal.replace(exp.Literal.string(absolute))
    for table in list(statement.find_all(exp.Table)):
        named = table.this
        if isinstance(named, exp.Identifier) and "/" in named.name and not table.db:
            absolute = in_lake(named.name, root)
            if absolute is None:
                raise outside(named.name, root)
            named.replace(exp.Identifier(this=absolute, quoted=True))


def _refused(kind: str) -> QueryError:
    return QueryError(
        f"marketlake query is read-only: {kind} statements are refused; it only reads ({READS})"
    )


def _first_word(sql: str) -> str:
    try:
        tokens = sqlglot.tokenize(sql, read="athena")
    except sqlglot.errors.SqlglotError:
        return ""
    return tokens[0].text.upper() if tokens else ""


# DuckDB statements that are no reads; used only to word a refusal of SQL that does not
# parse as Athena SQL (ATTACH, EXPORT DATABASE ...), which is refused either way.
_NOT_READS = frozenset(
    [
        "ALTER",
        "ATTACH",
        "CALL",
        "CHECKPOINT",
        "COPY",
        "CREATE",
        "DELETE",
        "DETACH",
        "DROP",
        "EXPORT",
        "IMPORT",
        "INSERT",
        "INSTALL",
        "LOAD",
        "MERGE",
        "PRAGMA",
        "RESET",
        "SET",
        "TRUNCATE",
        "UPDATE",
        "USE",
        "VACUUM",
    ]
)


def _statement_kind(statement, sql: str) -> str:
    """What a user would call the statement: COPY, SET, INSTALL..."""
    if isinstance(statement, exp.Command):
        return str(statement.this).upper()
    if any(node.args.get("into") is not None for node in statement.find_all(exp.Select)):
        return "SELECT ... INTO"
    if isinstance(statement, (exp.Alias, exp.Column, exp.Identifier)):
        return _first_word(sql) or "this"  # INSTALL x, CHECKPOINT: not Athena statements
    return statement.key.upper()


def _only_reads(statement) -> bool:
    if isinstance(statement, exp.Describe):
        target = statement.this
        return isinstance(target, exp.Table) or _only_reads(target)
    if not isinstance(statement, (exp.Query, exp.Values)):
        return False
    # SELECT ... INTO creates a table; DuckDB would run it as CREATE TABLE AS.
    return not any(node.args.get("into") is not None for node in statement.find_all(exp.Select))


def read_statement(sql: str):
    """The one statement of `sql`, parsed as Athena SQL, if it only reads (SELECT, WITH,
    VALUES, DESCRIBE, SHOW TABLES, SHOW COLUMNS); anything else is a QueryError saying so.
    Local and Athena queries alike pass here before anything runs. A SHOW is a bare
    Command here: `shown` says which."""
    try:
        statements = parse(sql)
    except QueryError:
        word = _first_word(sql)
        if word in _NOT_READS:
            # ATTACH, EXPORT DATABASE ... are not Athena SQL at all; say why they are refused.
            raise _refused(word) from None
        raise
    if len(statements) != 1:
        raise QueryError(f"expected one SQL statement, got {len(statements)}")
    statement = statements[0]
    if isinstance(statement, exp.Command) and str(statement.this).upper() == "SHOW":
        _show_of(statement)  # a SHOW other than TABLES or COLUMNS is refused by name
        return statement
    if not _only_reads(statement):
        kind = _statement_kind(statement, sql)
        raise _refused(kind)
    return statement


@dataclass(frozen=True)
class Show:
    """A `SHOW TABLES [{FROM|IN} db]` (table None) or `SHOW COLUMNS {FROM|IN} [db.]table
    [{FROM|IN} db]`: answered from the catalog, locally and on Athena (Glue), as rows."""

    database: str | None
    table: str | None = None


def _show_of(statement) -> Show:
    """The Show a parsed SHOW command asks for. sqlglot's Athena dialect keeps what follows
    SHOW as one string: its Trino tokens say which SHOW it is and name the table."""
    rest = str(statement.expression.this if statement.expression else "")
    tokens = sqlglot.tokenize(rest, read="trino")
    tokens = [t for t in tokens if t.token_type != TokenType.SEMICOLON]
    what = tokens[0].text.upper() if tokens else ""
    if what not in ("TABLES", "COLUMNS"):
        raise _refused(f"SHOW {what}".strip())
    example = "TABLES [IN database]" if what == "TABLES" else "COLUMNS FROM [database.]table"
    wrong = QueryError(f"expected SHOW {example}; got `SHOW {rest.strip()}`")
    # The names after each FROM / IN; a word before any (a pattern) is not taken.
    parts: list[list] = []
    for token in tokens[1:]:
        if token.token_type in (TokenType.FROM, TokenType.IN):
            parts.append([])
        elif not parts:
            raise wrong
        else:
            parts[-1].append(token)
    if (
        not all(parts)
        or len(parts) > (1 if what == "TABLES" else 2)
        or (what, parts)
        == (
            "COLUMNS",
            [],
        )
    ):
        raise wrong
    names = [_table(rest[part[0].start : part[-1].end + 1], wrong) for part in parts]
    if what == "TABLES":
        if names and names[0].db:
            raise wrong
        return Show(database=names[0].name if names else None)
    database = names[1].name if len(names) == 2 else names[0].db or None
    return Show(database=database, table=names[0].name)


def _table(text: str, wrong: QueryError) -> exp.Table:
    try:
        table = sqlglot.parse_one(text, into=exp.Table, read="athena")
    except sqlglot.errors.SqlglotError:
        raise wrong from None
    if table.alias or table.catalog:
        raise wrong
    return table


def shown(sql: str) -> Show | None:
    """What a SHOW statement asks (after read_statement's check), or None for any other read."""
    statement = read_statement(sql)
    if isinstance(statement, exp.Command):
        return _show_of(statement)
    return None


def athena_read(sql: str) -> str:
    """The statement to send Athena for a query: the parsed one, checked by read_statement,
    written back in Athena's dialect, so Athena runs exactly what was checked."""
    return read_statement(sql).sql(dialect="athena")


def described_table(sql: str) -> tuple[str | None, str] | None:
    """(database or None, table) of a `DESCRIBE [database.]table`, which Athena answers with
    text, not a result set, so it is read another way; None for any other read."""
    statement = read_statement(sql)
    if isinstance(statement, exp.Describe) and isinstance(statement.this, exp.Table):
        return statement.this.db or None, statement.this.name
    return None


def transpile_read(sql: str, lake: Path | None = None) -> str:
    """Like transpile, for a statement that only reads (read_statement). With `lake`, the
    files it names are confined to the lake's readable zones (see confine_paths)."""
    statement = read_statement(sql)
    if lake is not None:
        confine_paths(statement, lake)
    return generate(statement)
