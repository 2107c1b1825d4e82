"""The declaration of daily_prices' columns (marketlake.columns) against the SQL that computes
them, and the Glue comments made from it."""

from __future__ import annotations

from marketlake import sqlfiles
from marketlake.columns import DAILY_PRICES, GLUE_COMMENT_LIMIT, Column, declared
from marketlake.engines.athena import _commented


def test_the_declaration_is_the_sqls_select_list_in_order():
    """A column added to sql/staging/daily_prices.sql without a declaration fails here (the
    e2e test_describe_cli holds the built table's DESCRIBE to it too)."""
    assert list(DAILY_PRICES) == sqlfiles.output_columns(sqlfiles.load("staging/daily_prices.sql"))


def test_every_column_has_a_unit_and_a_definition():
    for name, column in DAILY_PRICES.items():
        assert column.unit.strip() and column.definition.strip(), name
        assert "\n" not in column.definition + column.unit + column.note, name


def test_the_names_that_mislead_say_so():
    assert DAILY_PRICES["daily_return"].unit == "USD per share"
    assert "not a fraction" in DAILY_PRICES["daily_return"].note
    assert DAILY_PRICES["price_change_pct"].unit.startswith("percent")
    assert DAILY_PRICES["log_return"].unit.startswith("fraction")
    assert DAILY_PRICES["parkinson_vol"].unit == "fraction, daily (not annualised)"
    assert DAILY_PRICES["parkinson_vol"].note
    for name in [n for n in DAILY_PRICES if n.endswith(("_20d", "_30d"))]:
        assert "annualised" in DAILY_PRICES[name].unit, name
    noted = {name for name, column in DAILY_PRICES.items() if column.note}
    assert noted == {
        "daily_return",
        "parkinson_vol",
        "dividend_yield_ttm",
        "payout_ratio_ttm",
        "is_market_up",
    }
    assert DAILY_PRICES["payout_ratio_ttm"].unit == DAILY_PRICES["dividend_yield_ttm"].unit


def test_a_comment_fits_glue_and_carries_unit_definition_and_note():
    daily = DAILY_PRICES["daily_return"].comment()
    assert daily.startswith("USD per share: close - open") and "NOTE: in dollars" in daily
    for name, column in DAILY_PRICES.items():
        assert len(column.comment()) <= GLUE_COMMENT_LIMIT, name
    long = Column("fraction", "x " * 300, "a note").comment()
    assert GLUE_COMMENT_LIMIT - 1 <= len(long) <= GLUE_COMMENT_LIMIT and long.endswith("…")
    assert Column("u", "two\nlines").comment() == "u: two lines"


def test_the_comments_go_on_declared_columns_only():
    columns = [
        {"Name": "symbol", "Type": "string"},
        {"Name": "hv_30d", "Type": "double"},
        {"Name": "extra", "Type": "int", "Comment": "kept"},
    ]
    commented = _commented(columns, declared("DAILY_PRICES"))
    assert commented[0] == {"Name": "symbol", "Type": "string", "Comment": "text: Ticker symbol."}
    assert commented[1]["Comment"] == DAILY_PRICES["hv_30d"].comment()
    assert commented[2] == columns[2]
    assert _commented(columns, declared("latest_prices")) == columns
