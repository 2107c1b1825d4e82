"""A confined reader (marketlake query): paths in a user's SQL are the lake's, whatever the
working directory, and a refusal names the one path it refused."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from marketlake.engines.confined import FILE_FUNCTIONS, transpile_read
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.errors import QueryError


@pytest.fixture
def lake(tmp_path) -> Path:
    """A lake with one curated Parquet file (x = 1, 2, 3) and one raw CSV object."""
    root = tmp_path / "lake"
    (root / "curated" / "t").mkdir(parents=True)
    (root / "raw" / "r" / "ingest_date=2024-06-03").mkdir(parents=True)
    (root / "state").mkdir()
    (root / "state" / "secret.json").write_text('{"key": 1}')
    (root / "raw" / "r" / "ingest_date=2024-06-03" / "A.csv").write_text("x\n7\n")
    with DuckDBEngine(root, threads=1) as writer:  # also creates the catalog
        writer.execute_native(
            f"COPY (SELECT range + 1 AS x FROM range(3)) TO '{root}/curated/t/a.parquet'"
        )
    return root


@pytest.fixture
def reader(lake):
    with DuckDBEngine(lake, read_only=True, confined=True) as engine:
        yield engine


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A working directory holding a decoy curated/t/a.parquet (x = 99) and raw/ files."""
    cwd = tmp_path / "elsewhere"
    (cwd / "curated" / "t").mkdir(parents=True)
    (cwd / "raw").mkdir()
    (cwd / "raw" / "decoy.csv").write_text("x\n99\n")
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 99 AS x) TO '{cwd}/curated/t/a.parquet'")
    monkeypatch.chdir(cwd)
    return cwd


def rows(reader, sql: str) -> list:
    return [tuple(r.values()) for r in reader.fetch_read(sql).to_pylist()]


def test_a_relative_path_reads_the_lake_from_any_working_directory(reader, elsewhere):
    assert rows(reader, "SELECT sum(x) FROM read_parquet('curated/t/*.parquet')") == [(6,)]
    assert rows(reader, "SELECT sum(x) FROM read_parquet(['curated/t/a.parquet'])") == [(6,)]
    assert rows(reader, "SELECT count(*) FROM read_csv('raw/r/*/*.csv')") == [(1,)]
    assert rows(reader, "SELECT count(*) FROM parquet_scan('./curated/t/a.parquet')") == [(1 * 3,)]
    # DuckDB reads a table named like a file as that file.
    assert rows(reader, 'SELECT sum(x) FROM "curated/t/a.parquet"') == [(6,)]


def test_an_absolute_path_in_the_lake_still_reads(reader, lake):
    assert rows(reader, f"SELECT sum(x) FROM read_parquet('{lake}/curated/t/a.parquet')") == [(6,)]


REFUSED_IN_A_LIST = {
    "a system file": "/etc/passwd",
    "the state zone, relative": "state/secret.json",
    "out of a zone through ..": "curated/../state/secret.json",
    "a url": "https://example.com/x.parquet",
    "a home directory": "~/x.parquet",
}


@pytest.mark.parametrize("name", sorted(REFUSED_IN_A_LIST))
def test_a_refusal_names_exactly_the_path_refused(reader, lake, elsewhere, name):
    bad = REFUSED_IN_A_LIST[name]
    with pytest.raises(QueryError) as info:
        reader.fetch_read(f"SELECT * FROM read_parquet(['curated/t/a.parquet', '{bad}'])")
    message = str(info.value)
    assert message.startswith(f"{bad} is outside the lake: "), message
    assert "curated/t/a.parquet" not in message  # the lake file is not blamed
    # ... and it says what query may read.
    for zone in ("curated", "audit", "raw"):
        assert f"{lake}/{zone}/" in message
    assert "\n" not in message


def test_a_path_built_by_an_expression_is_refused_saying_why(reader, elsewhere):
    with pytest.raises(QueryError, match=r"names its files by an expression.*quoted paths"):
        reader.fetch_read("SELECT * FROM read_csv('raw/' || 'r/x.csv')")


def test_a_table_named_like_a_file_outside_the_lake_is_refused(reader, elsewhere):
    with pytest.raises(QueryError, match=r"^raw/\.\./state/secret\.json is outside the lake"):
        reader.fetch_read('SELECT * FROM "raw/../state/secret.json"')


def test_glob_lists_the_lake_files_it_matches(reader, lake, elsewhere):
    assert rows(reader, "SELECT file FROM glob('raw/**')") == [
        (f"{lake}/raw/r/ingest_date=2024-06-03/A.csv",)
    ]
    assert rows(reader, "SELECT count(*) FROM glob('curated/*/*.parquet')") == [(1,)]


@pytest.mark.parametrize("pattern", ["/etc/*", "state/*", "raw/../state/*", "*"])
def test_glob_outside_the_readable_zones_is_refused(reader, elsewhere, pattern):
    with pytest.raises(QueryError) as info:
        reader.fetch_read(f"SELECT * FROM glob('{pattern}')")
    assert str(info.value).startswith(f"{pattern} is outside the lake: ")


def test_the_glob_operator_still_parses():
    assert "GLOB" in transpile_read("SELECT 1 AS x WHERE 'ab' GLOB 'a*'")


def test_without_a_lake_transpile_read_rewrites_no_path():
    assert "'curated/x.parquet'" in transpile_read(
        "SELECT * FROM read_parquet('curated/x.parquet')"
    )


def test_every_duckdb_table_function_that_opens_files_is_confined():
    """A DuckDB upgrade that adds a file reader must add it to FILE_FUNCTIONS: DuckDB's own
    allowed_directories would still refuse its files, but relative paths would not read."""
    with duckdb.connect() as con:
        found = con.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'table' "
            "AND parameters[1] IN ('path', 'paths', 'pattern', 'file')"
        ).fetchall()
    assert {name for (name,) in found} <= FILE_FUNCTIONS
