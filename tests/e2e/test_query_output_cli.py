"""`marketlake query`'s output on a small local lake: whole headers on a narrow console,
SHOW TABLES / COLUMNS, a Parquet or csv file by --out, one-line errors for SQL that does not
parse or names an unknown function (through typer's CliRunner), and a reader that stops
reading (a real pipe, the real command)."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli_run import marketlake, ok
from marketlake.cli import app, common

pytestmark = pytest.mark.e2e
SMALL_LAKE = {"MARKETLAKE_TICKERS": "NVDA", "MARKETLAKE_HISTORY_DAYS": "40"}
# More than a pipe's buffer holds, so the command is still writing when the reader leaves.
MANY_ROWS = "SELECT n, n * 2 AS twice FROM UNNEST(sequence(1, 20000)) AS t(n)"


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("output")
    ok(marketlake(cwd, "ingest", "--as-of", "2024-06-28", env=SMALL_LAKE))
    ok(marketlake(cwd, "build", env=SMALL_LAKE))
    return (cwd / "lake").resolve()


def query(lake, *args: str):
    return CliRunner().invoke(app, ["--home", str(lake), "query", *args])


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_a_wide_row_on_a_narrow_console_keeps_every_header_whole(lake, monkeypatch):
    monkeypatch.setattr(common.out, "width", 60)
    result = query(lake, "SELECT * FROM daily_prices ORDER BY trade_date LIMIT 2")
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    for name in ("garman_klass_vol_20d", "rogers_satchell_vol_20d", "volume_surge_ratio"):
        assert f"\n{name} " in result.stdout  # a `column | value` line, the name whole
    assert result.stdout.count("-[ row ") == 2
    assert all(len(line) <= 60 for line in result.stdout.splitlines())


def test_a_table_that_fits_is_a_table_with_whole_headers(lake, monkeypatch):
    monkeypatch.setattr(common.out, "width", 60)
    result = query(
        lake, "SELECT symbol, trade_date, adj_close, volume_surge_ratio FROM daily_prices"
    )
    assert result.exit_code == 0, result.output
    assert "┃ volume_surge_ratio ┃" in result.stdout and "…" not in result.stdout


def test_show_tables_lists_the_lakes_relations_only(lake):
    result = query(lake, "SHOW TABLES", "-f", "json")
    assert result.exit_code == 0, result.output
    names = [row["table_name"] for row in json.loads(result.stdout)]
    assert {"daily_prices", "raw_daily_prices", "pipeline_runs", "dq_results"} <= set(names)
    assert names == sorted(set(names))  # the reader's session views are not listed twice
    assert not [n for n in names if n.startswith(("duckdb_", "pg_", "sqlite_"))]


@pytest.mark.parametrize("word", ["FROM", "IN"])
def test_show_columns_lists_names_and_types(lake, word):
    result = query(lake, f"SHOW COLUMNS {word} daily_prices", "-f", "json")
    assert result.exit_code == 0, result.output
    columns = {row["column_name"]: row["data_type"] for row in json.loads(result.stdout)}
    assert columns["symbol"] == "VARCHAR" and columns["trade_date"] == "DATE"
    assert columns["close"] == "DOUBLE"


def test_show_columns_of_an_unknown_table_is_one_line(lake):
    line = one_error_line(query(lake, "SHOW COLUMNS FROM nope"))
    assert "no table nope in the lake" in line and "daily_prices" in line


def test_a_show_that_is_no_listing_is_still_refused(lake):
    line = one_error_line(query(lake, "SHOW CREATE VIEW daily_prices"))
    assert "read-only" in line


def test_parquet_keeps_the_column_types(lake, tmp_path):
    target = tmp_path / "prices.parquet"
    sql = (
        "SELECT symbol, trade_date, close, CAST(close AS decimal(12, 2)) AS cents, volume "
        "FROM daily_prices ORDER BY trade_date"
    )
    result = query(lake, sql, "--format", "parquet", "--out", str(target))
    assert result.exit_code == 0, result.output
    table = pq.read_table(target)
    assert table.schema.field("symbol").type == pa.string()
    assert table.schema.field("trade_date").type == pa.date32()
    assert table.schema.field("close").type == pa.float64()
    assert table.schema.field("cents").type == pa.decimal128(12, 2)
    assert table.schema.field("volume").type == pa.int64()
    assert f"{table.num_rows} row(s) written to {target}" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["prices.parquet"]  # no temporary left


def test_out_replaces_a_csv_and_refuses_parquet_without_it(lake, tmp_path):
    target = tmp_path / "n.csv"
    target.write_text("old\n")
    result = query(
        lake, "SELECT count(*) AS n FROM daily_prices", "-f", "csv", "--out", str(target)
    )
    assert result.exit_code == 0, result.output
    assert target.read_text().splitlines()[0] == "n"
    line = one_error_line(query(lake, "SELECT 1", "--format", "parquet"))
    assert "--out FILE.parquet" in line


def test_infinity_and_nan_are_valid_json(lake):
    result = query(
        lake,
        "SELECT 1e0 / 0 AS up, -1e0 / 0 AS down, CAST('NaN' AS double) AS nothing",
        "-f",
        "json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"up": None, "down": None, "nothing": None}]


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELECT symbol FORM daily_prices", "syntax error at line 1, column 20 near 'FORM"),
        ("SELECT 1 *", "syntax error at line 1, column 10 near '1 *' at the end"),
        ("SELECT (1 + 2", "a parenthesis is not closed"),
        ("SELECT no_such_function(1)", "Scalar Function with name no_such_function does not"),
    ],
    ids=["misspelt keyword", "dangling operator", "unclosed parenthesis", "unknown function"],
)
def test_bad_sql_is_one_clear_line(lake, sql, needle):
    line = one_error_line(query(lake, sql))
    assert needle in line
    assert "tables here" not in line and "<class" not in line


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_a_reader_that_stops_reading_ends_the_query_quietly(lake, fmt):
    command = [sys.executable, "-m", "marketlake", "--home", str(lake), "query", MANY_ROWS]
    command += ["--format", fmt, "--max-rows", "20000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # as `| head -1` does
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, errors
    assert first
    assert errors == ""  # no `error: BrokenPipeError`, no "Exception ignored" at exit
