"""`marketlake query`'s output pieces: whole headers at any width, valid JSON with NaN and
infinities, the file written whole or not at all; and what the read-only check makes of SHOW
statements and of SQL that does not parse."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import pytest
from rich.console import Console

from marketlake.cli.query_output import (
    check_output,
    render_table,
    write_atomically,
    write_csv,
    write_json,
)
from marketlake.engines.confined import Show, athena_read, shown
from marketlake.errors import MarketlakeError, QueryError

WIDE = [f"{name}_of_the_symbol" for name in ("open", "high", "low", "close", "volume")]


def _narrow() -> Console:
    return Console(width=60, file=io.StringIO(), color_system=None)


def test_headers_wider_than_the_console_show_each_row_as_a_block():
    text = render_table(
        _narrow(), WIDE, [(1.5, 2.0, 0.5, 1.25, 100), (2.5, 3.0, 1.5, 2.25, 7)], 100
    )
    assert "…" not in text
    lines = text.splitlines()
    assert lines[0] == "-[ row 1 ]-" and "-[ row 2 ]-" in lines
    assert "close_of_the_symbol  | 1.25" in lines  # every name whole, padded to the longest
    assert "volume_of_the_symbol | 7" in lines
    assert lines[-1] == "2 row(s)"
    assert all(len(line) <= 60 for line in lines)


def test_headers_that_fit_are_whole_and_long_values_fold_instead_of_being_cut():
    value = "x" * 150
    text = render_table(
        _narrow(), ["symbol", "trade_date", "note"], [("NVDA", "2024-06-28", value)], 100
    )
    assert "…" not in text
    assert "trade_date" in text and "symbol" in text
    assert text.count("x") == 150  # the value folded over lines, every character kept
    assert all(len(line) <= 60 for line in text.splitlines())


def test_a_table_holds_max_rows_and_says_how_many_it_left_out():
    text = render_table(_narrow(), ["n"], [(i,) for i in range(5)], 2)
    assert text.splitlines()[-1] == "5 row(s); 3 not shown (--max-rows)"


def test_values_are_shown_as_text_not_as_rich_markup():
    text = render_table(_narrow(), ["[b]x[/b]"], [("[red]alert[/red]",)], 10)
    assert "[b]x[/b]" in text and "[red]alert[/red]" in text


def test_json_has_null_for_nan_and_infinities_and_always_parses():
    stream = io.StringIO()
    rows = [(math.inf, -math.inf, math.nan, None, 1.5, [math.inf, 2.0])]
    write_json(stream, ["a", "b", "c", "d", "e", "f"], rows)

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(stream.getvalue(), parse_constant=refuse) == [
        {"a": None, "b": None, "c": None, "d": None, "e": 1.5, "f": [None, 2.0]}
    ]


def test_csv_writes_infinities_as_python_does_and_nan_like_null():
    stream = io.StringIO()
    write_csv(stream, ["a", "b", "c", "d"], [(math.inf, -math.inf, math.nan, None)])
    assert stream.getvalue() == "a,b,c,d\ninf,-inf,,\n"


@pytest.mark.parametrize(
    ("fmt", "out", "needle"),
    [
        ("parquet", None, "add --out FILE.parquet"),
        ("table", "x.csv", "--out writes csv, json or parquet"),
        ("xml", None, "--format 'xml' is unknown"),
    ],
)
def test_formats_and_out_that_do_not_go_together_are_refused(fmt, out, needle, tmp_path):
    with pytest.raises(QueryError, match=needle.replace("(", r"\(")):
        check_output(fmt, None if out is None else tmp_path / out)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "prices.csv"
    target.write_text("old\n")

    def half(temp: str) -> None:
        with open(temp, "w") as stream:
            stream.write("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(MarketlakeError, match=r"cannot write .*prices.csv: No space left"):
        write_atomically(target, half)
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["prices.csv"]


def test_a_write_replaces_the_file_whole_with_ordinary_permissions(tmp_path):
    target = tmp_path / "new.csv"
    write_atomically(target, lambda temp: Path(temp).write_text("a\n1\n"))
    assert target.read_text() == "a\n1\n"
    assert target.stat().st_mode & 0o777 != 0o600  # not mkstemp's private mode
    assert os.listdir(tmp_path) == ["new.csv"]


def test_a_file_in_a_missing_folder_is_one_line_naming_it(tmp_path):
    with pytest.raises(MarketlakeError, match=r"folder .*nowhere does not exist"):
        write_atomically(tmp_path / "nowhere" / "x.csv", lambda temp: None)


# -- SHOW ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "show"),
    [
        ("SHOW TABLES", Show(None)),
        ("show tables in marketlake_db;", Show("marketlake_db")),
        ("SHOW TABLES FROM marketlake_db", Show("marketlake_db")),
        ("SHOW COLUMNS FROM daily_prices", Show(None, "daily_prices")),
        ("SHOW COLUMNS IN daily_prices", Show(None, "daily_prices")),
        ("SHOW COLUMNS IN db.daily_prices", Show("db", "daily_prices")),
        ("SHOW COLUMNS FROM daily_prices IN db", Show("db", "daily_prices")),
        ('SHOW COLUMNS FROM "odd name"', Show(None, "odd name")),
    ],
)
def test_show_tables_and_columns_are_reads(sql, show):
    assert shown(sql) == show


def test_other_reads_are_no_show():
    assert shown("SELECT 1") is None
    assert shown("DESCRIBE daily_prices") is None


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SHOW CREATE TABLE daily_prices", "SHOW CREATE statements are refused"),
        ("SHOW PARTITIONS daily_prices", "SHOW PARTITIONS statements are refused"),
        ("SHOW", "SHOW statements are refused"),
        ("SHOW TABLES 'daily*'", "expected SHOW TABLES [IN database]"),
        ("SHOW TABLES IN a.b", "expected SHOW TABLES [IN database]"),
        ("SHOW COLUMNS", "expected SHOW COLUMNS FROM [database.]table"),
        ("SHOW COLUMNS FROM a b", "expected SHOW COLUMNS FROM [database.]table"),
        ("SHOW COLUMNS FROM a.b.c", "expected SHOW COLUMNS FROM [database.]table"),
        ("SHOW TABLES; DROP TABLE daily_prices", "one SQL statement"),
    ],
)
def test_show_of_anything_else_is_refused_in_one_line(sql, needle):
    with pytest.raises(QueryError) as info:
        shown(sql)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_show_is_sent_to_athena_as_written():
    assert athena_read("SHOW TABLES") == "SHOW TABLES"


# -- syntax errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        ("SELECT symbol FORM daily_prices", "line 1, column 20 near 'FORM daily_prices'"),
        ("SELECT 1 *", "line 1, column 10 near '1 *' at the end: an operand is missing"),
        (
            "SELECT (1 + 2",
            "line 1, column 13 near '+ 2' at the end: expecting ) (a parenthesis is not closed)",
        ),
        ("SELECT\n  a\nFROM t WHERE (", "line 3, column 14 near 'WHERE ('"),
    ],
    ids=["misspelt keyword", "dangling operator", "unclosed parenthesis", "third line"],
)
def test_a_syntax_error_names_the_line_column_and_token(sql, where):
    with pytest.raises(QueryError) as info:
        shown(sql)
    message = str(info.value)
    assert f"syntax error at {where}" in message
    assert "\n" not in message and "sqlglot" not in message and "<class" not in message
