"""--home / MARKETLAKE_HOME as a URL (config.parse_home) and the read-only rule for Athena
(engines.confined.athena_read, described_table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketlake.config import S3Lake, Settings, parse_home
from marketlake.engines.confined import athena_read, described_table
from marketlake.errors import ConfigError, QueryError


@pytest.mark.parametrize(
    "text, lake",
    [
        ("s3://my-bucket", S3Lake("my-bucket")),
        ("s3://my-bucket/", S3Lake("my-bucket")),
        ("s3://my-bucket/team/lake/", S3Lake("my-bucket", "team/lake")),
        ("S3://my-bucket", S3Lake("my-bucket")),  # schemes are case-insensitive
    ],
)
def test_an_s3_url_is_the_deployed_lake(text, lake):
    assert parse_home(text) == lake
    settings = Settings.from_env({"MARKETLAKE_HOME": text})
    assert settings.lake_url == lake
    assert Settings.from_env({}, home=text).lake_url == lake


def test_the_url_prints_as_the_lake_root():
    assert str(S3Lake("my-bucket")) == "s3://my-bucket/"
    assert str(S3Lake("my-bucket", "a/b")) == "s3://my-bucket/a/b/"


@pytest.mark.parametrize("text", ["lake", "./data/lake", "/tmp/x", "C:/lakes/x", "s3:/b"])
def test_anything_else_without_a_scheme_is_a_directory(text):
    assert parse_home(text) == Path(text)
    assert Settings.from_env({"MARKETLAKE_HOME": text}).lake_url is None


@pytest.mark.parametrize(
    "text", ["gs://b-1", "http://example.com/x", "file:///tmp/x", "abfs://c@a/x", "s3a://bkt"]
)
def test_other_schemes_are_refused_naming_the_setting_and_what_works(text):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"MARKETLAKE_HOME": text})
    message = str(refused.value)
    assert "MARKETLAKE_HOME" in message and "a directory" in message
    assert "s3://bucket[/prefix]" in message


@pytest.mark.parametrize("text", ["s3://", "s3://b", "s3://Bad_Bucket", "s3:///prefix"])
def test_an_s3_url_without_a_bucket_name_is_refused(text):
    with pytest.raises(ConfigError, match="not an S3 bucket name"):
        parse_home(text)


def test_athena_gets_the_checked_statement_in_its_dialect():
    assert athena_read("select symbol from daily_prices limit 3") == (
        "SELECT symbol FROM daily_prices LIMIT 3"
    )


@pytest.mark.parametrize(
    "sql", ["DROP TABLE daily_prices", "SELECT 1; SELECT 2", "UNLOAD (SELECT 1) TO 's3://x/'"]
)
def test_athena_is_sent_no_statement_that_is_not_one_read(sql):
    with pytest.raises(QueryError):
        athena_read(sql)


@pytest.mark.parametrize(
    "sql, described",
    [
        ("DESCRIBE daily_prices", (None, "daily_prices")),
        ("describe marketlake.pipeline_runs", ("marketlake", "pipeline_runs")),
        ("SELECT * FROM daily_prices", None),
        ("DESCRIBE SELECT 1", None),  # not a table: Athena itself answers that
    ],
)
def test_a_describe_names_its_table_for_awswranglers_describe_table(sql, described):
    assert described_table(sql) == described
