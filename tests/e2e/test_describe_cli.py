"""`marketlake describe` on a local lake: the built table's columns with their types (the
lake's) and their units and definitions (marketlake.columns), and one line when nothing is
built. The S3 lake's: tests/integration/test_describe_remote.py."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from cli_run import marketlake, ok, one_line_error
from marketlake.columns import DAILY_PRICES

pytestmark = pytest.mark.e2e

SMALL = {"MARKETLAKE_HISTORY_DAYS": "60", "MARKETLAKE_TICKERS": "AAA"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("user")
    ok(marketlake(cwd, "run", "--as-of", "2024-06-28", "--provider", "synthetic", env=SMALL))
    return cwd


def test_the_built_table_has_exactly_the_declared_columns_in_order(built):
    """A column the build writes without a declaration (or a declared one it no longer
    writes) fails here: the declaration is the build's schema."""
    rows = json.loads(ok(marketlake(built, "describe", "--format", "json")))
    assert [r["column"] for r in rows] == list(DAILY_PRICES)
    for row in rows:
        declared = DAILY_PRICES[row["column"]]
        assert (row["unit"], row["definition"], row["note"]) == tuple(declared)
    types = {r["column"]: r["type"] for r in rows}
    assert (types["trade_date"], types["volume"], types["hv_30d"]) == ("DATE", "BIGINT", "DOUBLE")
    assert types["is_market_up"] == "BOOLEAN" and types["year"] == "INTEGER"


def test_csv_and_the_table_say_the_same(built):
    rows = list(csv.DictReader(io.StringIO(ok(marketlake(built, "describe", "-f", "csv")))))
    daily = {r["column"]: r for r in rows}["daily_return"]
    assert (daily["type"], daily["unit"]) == ("DOUBLE", "USD per share")
    assert "not a fraction" in daily["note"]
    table = ok(marketlake(built, "describe", "daily_prices"))
    # The cells wrap at the terminal's width: each name is whole, the units in words.
    for name in DAILY_PRICES:
        assert f" {name} " in table, name
    assert table.count("USD per share") >= 12 and "annualised" in table


def test_a_table_without_a_declaration_shows_its_types_only(built):
    rows = json.loads(ok(marketlake(built, "describe", "latest_prices", "-f", "json")))
    assert rows[0] == {
        "column": "symbol",
        "type": "VARCHAR",
        "unit": "",
        "definition": "",
        "note": "",
    }


def test_an_unknown_table_or_format_is_one_line(built):
    line = one_line_error(marketlake(built, "describe", "nope"))
    assert "no table nope in the lake" in line and "daily_prices" in line
    line = one_line_error(marketlake(built, "describe", "-f", "xml"))
    assert "--format 'xml' is not one of table, csv, json" in line


@pytest.mark.parametrize("made", [False, True], ids=["no-directory", "nothing-built"])
def test_nothing_built_says_to_build_first(tmp_path, made):
    if made:
        (tmp_path / "lake").mkdir()
    line = one_line_error(marketlake(tmp_path, "describe"))
    assert "nothing built yet at" in line and "run `marketlake build`" in line
