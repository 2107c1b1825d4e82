"""Issue 23: reading the lake from a notebook (marketlake.read) on a lake the real CLI built.

The lake's current version is incremental: it reuses a year folder of the version before it,
so the current `version=` folder alone is not the table, and curated/daily_prices is more."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import marketlake.read as read
from cli_run import marketlake as run_cli
from cli_run import ok, one_line_error
from marketlake.errors import DamagedFile, MarketlakeError

pytestmark = pytest.mark.e2e
SMALL_LAKE = {"MARKETLAKE_TICKERS": "NVDA,AMD", "MARKETLAKE_HISTORY_DAYS": "400"}
KEYS = ["symbol", "trade_date"]


def marketlake(cwd: Path, *args: str, **env: str):
    return run_cli(cwd, *args, env={**SMALL_LAKE, **env})


def query(cwd: Path, sql: str) -> list[dict]:
    return json.loads(ok(marketlake(cwd, "query", sql, "--format", "json")))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Two versions: a full one of 2023-2024, then an incremental one that rewrites 2024,
    adds 2025 and reuses the full version's 2023."""
    cwd = tmp_path_factory.mktemp("notebook")
    ok(marketlake(cwd, "ingest", "--as-of", "2024-12-20"))
    ok(marketlake(cwd, "build"))
    ok(marketlake(cwd, "ingest", "--as-of", "2025-01-10"))
    assert "incremental build" in ok(marketlake(cwd, "build"))
    return cwd


@pytest.fixture()
def lake(built, tmp_path) -> Path:
    """A copy of the built lake a test may change."""
    cwd = tmp_path / "user"
    shutil.copytree(built, cwd)
    return cwd


def normal(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in key order, dates as timestamps: the libraries give dates different types."""
    frame = frame.sort_values(KEYS).reset_index(drop=True)
    for column in ("trade_date", "eps_quarter_end", "eps_reported_date"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    return frame


def test_pandas_reads_the_current_version_across_version_folders_as_query_does(built):
    home = built / "lake"
    files = read.files(home)
    assert len({Path(f).parent.parent.name for f in files}) == 2  # two version= folders
    assert all(Path(f).is_absolute() and f.endswith(".parquet") for f in files)

    frame = read.pandas(home)
    [count] = query(built, "SELECT count(*) AS n FROM daily_prices")
    assert len(frame) == count["n"] > 0
    assert not frame.duplicated(KEYS).any()
    assert sorted(frame["year"].unique()) == [2023, 2024, 2025]
    described = query(built, "DESCRIBE daily_prices")
    assert list(frame.columns) == [row["column_name"] for row in described]
    # What the issue saw: the whole curated folder is every kept version's rows.
    assert len(pd.read_parquet(home / "curated/daily_prices")) > len(frame)


def test_polars_duckdb_and_sql_read_what_pandas_reads(built):
    home = built / "lake"
    expected = normal(read.pandas(home))
    pd.testing.assert_frame_equal(
        normal(read.polars(home).to_pandas()), expected, check_dtype=False
    )
    pd.testing.assert_frame_equal(normal(read.duckdb(home).df()), expected, check_dtype=False)

    con = duckdb.connect()
    read.duckdb(home, con=con)  # the view is the user's connection's, by name
    assert con.sql("SELECT count(*) FROM daily_prices").fetchall() == [(len(expected),)]

    # Athena's dialect, and the views over daily_prices, as `marketlake query` answers.
    sql = "SELECT symbol, close FROM latest_prices WHERE trade_date > date_add('day', -30, "
    sql += "DATE '2025-01-10') ORDER BY symbol"
    assert read.sql(sql, home).df().to_dict("records") == query(built, sql)


def test_sql_names_what_it_has_when_a_view_needs_the_catalog(built):
    with pytest.raises(MarketlakeError) as caught:
        read.sql("SELECT * FROM pipeline_runs", built / "lake")
    line = str(caught.value)
    assert "\n" not in line
    assert "pipeline_runs" in line and "latest_prices" in line and "marketlake query" in line


def test_a_damaged_file_is_refused_with_the_line_query_gives(lake):
    home = lake / "lake"
    victim = Path(read.files(home)[0])
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the digest tells
    victim.write_bytes(bytes(data))

    line = one_line_error(marketlake(lake, "query", "SELECT count(*) FROM daily_prices"))
    for reader in (read.files, read.pandas, read.polars, read.duckdb):
        with pytest.raises(DamagedFile) as caught:
            reader(home)
        assert f"error: {caught.value}" == line
    assert victim.relative_to(home).as_posix() in line


def test_no_reader_holds_the_catalog_and_a_build_does_not_break_their_reads(lake):
    home = lake / "lake"
    listed = read.files(home)
    frame = read.pandas(home)
    relation = read.duckdb(home)
    answer = read.sql("SELECT count(*) AS n FROM daily_prices", home)

    # Readers are alive: another process can open the catalog to write, and a build
    # publishes a new version.
    writer = "import duckdb, sys; duckdb.connect(sys.argv[1]).close()"
    opened = subprocess.run(
        [sys.executable, "-c", writer, str(home / "catalog.duckdb")], capture_output=True, text=True
    )
    assert opened.returncode == 0, opened.stderr
    ok(marketlake(lake, "ingest", "--as-of", "2025-01-17"))
    assert "published to daily_prices" in ok(marketlake(lake, "build"))
    assert read.files(home) != listed

    # What was listed or bound before the build reads the version it was listed from.
    assert len(pd.read_parquet(listed)) == len(frame)
    assert relation.aggregate("count(*)").fetchall() == [(len(frame),)]
    assert answer.fetchall() == [(len(frame),)]
    assert len(read.pandas(home)) > len(frame)  # called again: the new version


def test_a_list_kept_across_keep_versions_builds_can_lose_its_files(lake):
    listed = read.files(lake / "lake")
    ok(marketlake(lake, "build", "--force", MARKETLAKE_KEEP_VERSIONS="1"))
    assert not all(Path(f).exists() for f in listed)


def test_polars_missing_is_one_line_naming_the_install(built, monkeypatch):
    monkeypatch.setitem(sys.modules, "polars", None)  # import polars raises ImportError
    with pytest.raises(MarketlakeError, match=r"`pip install polars`"):
        read.polars(built / "lake")


def test_a_lake_with_nothing_published_and_an_s3_lake_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(MarketlakeError, match="publishes no version of daily_prices; run"):
        read.pandas(tmp_path / "empty")
    monkeypatch.setenv("MARKETLAKE_HOME", "s3://bucket/lake")
    with pytest.raises(MarketlakeError, match="reads a local lake, not s3://bucket/lake/"):
        read.files()


def test_a_client_holding_the_catalog_read_only_stops_a_build_with_one_line(lake):
    """What docs/notebooks.md says blocks a build, and why marketlake.read avoids it."""
    catalog = lake / "lake/catalog.duckdb"
    holder = duckdb.connect(str(catalog), read_only=True)
    try:
        line = one_line_error(marketlake(lake, "build", "--force"))
    finally:
        holder.close()
    assert f"{catalog.resolve()} is in use by another process" in line
    assert "published to daily_prices" in ok(marketlake(lake, "build", "--force"))
