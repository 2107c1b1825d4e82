"""Units on the deployed lake: the Glue version table of daily_prices carries each declared
column's unit and definition as its Comment (what Athena shows), and `marketlake --home
s3://bucket describe` reads the types from Glue. moto's Glue and S3, FakeAthena (test_glue_job)."""

from __future__ import annotations

import json

from test_cli_remote import built, cli, deploy, one_error_line
from test_cli_remote import environment as environment  # autouse: credentials, a tmp cwd
from test_cli_remote import lake as lake
from test_glue_job import (
    DATABASE,
    FIRST_BARS,
    FIRST_INGEST,
    SECOND_BARS,
    SECOND_INGEST,
    SECOND_NOW,
    ingested,
)

from marketlake.columns import DAILY_PRICES, GLUE_COMMENT_LIMIT
from marketlake.lake.state import IngestState, save_state


def version_columns(lake) -> list[dict]:
    table = lake.glue.get_table(DatabaseName=DATABASE, Name=lake.version_table())["Table"]
    return table["StorageDescriptor"]["Columns"]


def test_the_version_table_carries_each_columns_unit_as_its_comment(lake):
    built(lake)
    columns = version_columns(lake)
    # Every column but the partition key (year), in order, each with its declared comment.
    assert [c["Name"] for c in columns] == [n for n in DAILY_PRICES if n != "year"]
    for column in columns:
        assert column["Comment"] == DAILY_PRICES[column["Name"]].comment()
        assert 0 < len(column["Comment"]) <= GLUE_COMMENT_LIMIT
    comments = {c["Name"]: c["Comment"] for c in columns}
    assert comments["daily_return"].startswith("USD per share: close - open")
    assert comments["parkinson_vol"].startswith("fraction, daily (not annualised)")
    assert comments["hv_30d"].startswith("fraction, annualised")


def test_a_later_version_table_has_the_comments_too(lake):
    """Each build makes its own version table (from its CTAS's columns, which have no
    comments): the declaration's comments go on every one."""
    built(lake)
    first = lake.version_table()
    lake.land(SECOND_INGEST, SECOND_BARS, ingested(SECOND_INGEST))
    lake.build(SECOND_NOW, run_id="20240208T230000Z")
    assert lake.version_table() != first
    for column in version_columns(lake):
        assert column["Comment"] == DAILY_PRICES[column["Name"]].comment()


def test_describe_on_s3_reads_the_types_from_glue_without_athena(lake):
    built(lake)
    before = len(lake.athena.statements)
    result = cli("describe", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["column"] for r in rows] == list(DAILY_PRICES)
    types = {r["column"]: r["type"] for r in rows}
    assert (types["symbol"], types["trade_date"], types["volume"]) == ("string", "date", "bigint")
    assert types["year"] == "int"
    units = {r["column"]: r["unit"] for r in rows}
    assert units["price_change_pct"] == DAILY_PRICES["price_change_pct"].unit
    assert len(lake.athena.statements) == before  # Glue answered


def test_describe_on_an_s3_lake_with_nothing_built_says_to_build_first(lake):
    deploy(lake)
    lake.land(FIRST_INGEST, FIRST_BARS, ingested(FIRST_INGEST))
    save_state(lake.store, IngestState(quota_date="2024-02-01"))  # ingested, never built
    line = one_error_line(cli("describe"))
    assert "nothing built yet at s3://" in line and "run `marketlake build`" in line
