"""DuckDBEngine: Athena SQL in, one-line errors out."""

from __future__ import annotations

import inspect

import pytest

from marketlake.engines.base import Engine
from marketlake.engines.confined import transpile_read
from marketlake.engines.dialect import transpile
from marketlake.engines.duckdb import DuckDBEngine, one_line
from marketlake.errors import MarketlakeError, QueryError


@pytest.fixture
def engine(tmp_path):
    with DuckDBEngine(tmp_path / "lake", threads=1) as eng:
        yield eng


def test_transpile_translates_athena_to_duckdb(engine):
    sql = transpile(
        "SELECT try_cast('12' AS BIGINT) AS n, date_format(DATE '2024-07-03', '%Y') AS y"
    )
    assert sql.upper().startswith("SELECT")
    frame = engine.fetch_native(sql)
    assert frame.loc[0, "n"] == 12
    assert frame.loc[0, "y"] == "2024"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM (",
        "SELEC 1",
        "SELECT 1 +",
        "SELECT\n  symbol,\n  close\nFROM daily_prices\nWHERE (close >",
    ],
)
def test_malformed_sql_is_a_one_line_query_error(sql):
    with pytest.raises(QueryError) as info:
        transpile(sql)
    message = str(info.value)
    assert "\n" not in message
    assert "\r" not in message
    assert message.startswith("SQL does not parse as Athena SQL")
    assert "line" in message


def test_the_error_says_where(engine):
    with pytest.raises(QueryError, match=r"line 3"):
        engine.fetch_df("SELECT\n  a\nFROM t WHERE (")


@pytest.mark.parametrize("sql", ["SELECT 1; SELECT 2", "SELECT 1;\nDROP TABLE x"])
def test_two_statements_are_rejected(engine, sql):
    with pytest.raises(QueryError, match="expected one SQL statement, got 2"):
        transpile(sql)
    with pytest.raises(QueryError):
        engine.fetch_df(sql)


def test_no_statement_is_rejected():
    with pytest.raises(QueryError, match="got 0"):
        transpile("  ")


def test_a_missing_table_lists_the_tables_there(engine):
    engine.execute_native("CREATE TABLE prices_here AS SELECT 1 AS x")
    engine.execute_native("CREATE VIEW some_view AS SELECT 2 AS y")
    with pytest.raises(QueryError) as info:
        engine.fetch_df("SELECT * FROM no_such_table")
    message = str(info.value)
    assert "\n" not in message
    assert "no_such_table" in message
    assert "tables here:" in message
    listed = message.split("tables here:", 1)[1]
    assert "prices_here" in listed
    assert "some_view" in listed
    assert "pg_" not in message  # DuckDB's own catalog is no help to a user


def test_a_runtime_error_is_one_line(engine):
    with pytest.raises(QueryError) as info:
        engine.fetch_df("SELECT CAST('abc' AS INTEGER) AS n")
    assert "\n" not in str(info.value)


def test_one_line_keeps_the_message_and_the_hint():
    exc = RuntimeError(
        'Catalog Error: Table with name prises does not exist!\nDid you mean "prices"?\n\n'
        "LINE 1: SELECT * FROM prises\n                      ^"
    )
    assert one_line(exc) == (
        'Catalog Error: Table with name prises does not exist! Did you mean "prices"?'
    )
    assert one_line(RuntimeError("")) == "RuntimeError"


def test_read_only_on_a_missing_catalog_is_a_marketlake_error(tmp_path):
    with pytest.raises(MarketlakeError) as info:
        DuckDBEngine(tmp_path / "nowhere", read_only=True)
    assert "catalog.duckdb" in str(info.value)
    assert "marketlake run" in str(info.value)
    assert not (tmp_path / "nowhere").exists()  # refusing creates nothing


def test_read_only_on_an_existing_catalog_reads(tmp_path):
    with DuckDBEngine(tmp_path) as writer:
        writer.execute_native("CREATE TABLE t AS SELECT 41 + 1 AS answer")
    with DuckDBEngine(tmp_path, read_only=True) as reader:
        assert reader.fetch_df("SELECT answer FROM t").loc[0, "answer"] == 42
        with pytest.raises(QueryError):
            reader.execute_native("CREATE TABLE u AS SELECT 1 AS x")


def test_a_confined_reader_opens_no_file_outside_the_lake_and_changes_no_setting(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("key")
    (tmp_path / "lake" / "curated").mkdir(parents=True)
    (tmp_path / "lake" / "curated" / "mine.txt").write_text("ours")
    with DuckDBEngine(tmp_path / "lake", threads=1):
        pass  # creates the catalog
    with DuckDBEngine(tmp_path / "lake", read_only=True, confined=True) as reader:
        inside = reader.fetch_read(f"SELECT content FROM read_text('{tmp_path}/lake/curated/*')")
        assert inside.column("content").to_pylist() == ["ours"]
        with pytest.raises(QueryError, match="outside the lake"):
            reader.fetch_read(f"SELECT content FROM read_text('{secret}')")
        with pytest.raises(QueryError, match="outside the lake"):
            reader.fetch_read(
                f"SELECT * FROM read_text('{tmp_path}/lake/curated/../../secret.txt')"
            )
        # Even past the statement check, the connection's settings are locked.
        for statement in ("SET enable_external_access = true", "RESET allowed_directories"):
            with pytest.raises(Exception, match="locked"):
                reader.con.execute(statement)


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
        ("SET memory_limit = '1GB'", "SET"),
        ("ATTACH '/tmp/a.duckdb'", "ATTACH"),
        ("EXPORT DATABASE '/tmp/e'", "EXPORT"),
        ("INSTALL httpfs", "INSTALL"),
        ("SELECT 1 AS x INTO t", "SELECT ... INTO"),
        ("WITH a AS (SELECT 1 AS x) INSERT INTO t SELECT * FROM a", "INSERT"),
    ],
)
def test_transpile_read_refuses_what_does_not_only_read(sql, kind):
    with pytest.raises(QueryError) as info:
        transpile_read(sql)
    assert str(info.value).startswith(f"marketlake query is read-only: {kind} statements")


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1", "WITH a AS (SELECT 1 AS x) SELECT x FROM a", "VALUES (1)", "DESCRIBE t"],
)
def test_transpile_read_accepts_reads(sql):
    assert transpile_read(sql)


def test_duckdb_engine_is_an_engine():
    """Structurally: every method the build asks of an Engine, with the same parameters
    (names, kinds, defaults), so a parameter typed Engine takes a DuckDBEngine (mypy checks
    the types at run_build's callers; this checks what mypy cannot see at run time)."""
    wanted = {
        name: member
        for name, member in vars(Engine).items()
        if callable(member) and not name.startswith("_")
    }
    assert wanted, "the Engine protocol declares no methods"
    for name, method in wanted.items():
        own = getattr(DuckDBEngine, name, None)
        assert callable(own), f"DuckDBEngine lacks {name}"
        expected, actual = inspect.signature(method), inspect.signature(own)
        assert [(p.name, p.kind, p.default) for p in actual.parameters.values()] == [
            (p.name, p.kind, p.default) for p in expected.parameters.values()
        ], f"DuckDBEngine.{name}{actual} does not match Engine.{name}{expected}"


def test_a_frame_registers_after_a_materialize_derive_or_ctas(tmp_path):
    """Each returns a count; a count left half-fetched would make DuckDB refuse the next
    register_frame on the connection (Resource In Use)."""
    import pandas as pd

    frame = pd.DataFrame({"x": [1, 2], "year": [2024, 2025]})
    with DuckDBEngine(tmp_path) as engine:
        assert engine.materialize("m", "SELECT 1 AS x") == 1
        engine.register_frame("f1", frame)
        assert engine.derive("d", "SELECT 2 AS x") == 1
        engine.register_frame("f2", frame)
        assert engine.ctas("SELECT x, year FROM f2", "out", ["year"]) == 2
        engine.register_frame("f3", frame)
        assert engine.fetch_df("SELECT count(*) AS n FROM f3")["n"].iloc[0] == 2
