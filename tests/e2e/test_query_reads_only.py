"""End to end: `marketlake query` only reads, and only the lake's own tables.

Every statement that writes, changes a setting or reaches a file outside the lake's curated,
audit and raw zones is refused with one line saying why, exit 1, and leaves every file of the
lake as it was."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cli_run import marketlake as run_cli
from cli_run import ok, one_line_error

pytestmark = pytest.mark.e2e
SMALL_LAKE = {"MARKETLAKE_TICKERS": "NVDA", "MARKETLAKE_HISTORY_DAYS": "40"}


def marketlake(cwd: Path, *args: str):
    return run_cli(cwd, *args, env=SMALL_LAKE)


def digests(root: Path) -> dict[str, str]:
    """Every file of the lake but the catalog (a read-only open may touch its WAL)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith("catalog.duckdb")
    }


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("reader")
    ok(marketlake(cwd, "ingest", "--as-of", "2024-06-28"))
    ok(marketlake(cwd, "build"))
    return cwd


def _published_file(cwd: Path) -> Path:
    return next((cwd / "lake" / "curated").rglob("*.parquet"))


REFUSED_STATEMENTS = {
    "copy over a published file": "COPY (SELECT 1 AS x) TO '{parquet}' (FORMAT parquet)",
    "copy over the registry": "COPY (SELECT 1 AS x) TO '{lake}/state/versions/daily_prices.json'",
    "read a system file": "SELECT * FROM read_text('/etc/shadow')",
    "read the ingest state": "SELECT * FROM read_text('{lake}/state/ingest_state.json')",
    "read a csv outside the lake": "SELECT * FROM read_csv('/etc/passwd')",
    "read the quarantine zone": "SELECT * FROM read_text('{lake}/quarantine/x.csv')",
    "change a setting": "SET memory_limit = '1GB'",
    "attach a database": "ATTACH '{lake}/other.duckdb' AS other",
    "install an extension": "INSTALL httpfs",
    "load an extension": "LOAD httpfs",
    "export the catalog": "EXPORT DATABASE '{lake}/exported'",
    "select into a table": "SELECT 1 AS x INTO copied",
    "create a table": "CREATE TABLE copied AS SELECT * FROM daily_prices",
    "drop a view": "DROP VIEW daily_prices",
    "insert": "INSERT INTO pipeline_runs SELECT * FROM pipeline_runs",
    "pragma": "PRAGMA enable_profiling",
    "call": "CALL pragma_version()",
    "checkpoint": "CHECKPOINT",
}


@pytest.mark.parametrize("name", sorted(REFUSED_STATEMENTS))
def test_a_statement_that_does_not_only_read_the_lake_is_refused(lake, name):
    root = lake / "lake"
    sql = REFUSED_STATEMENTS[name].format(lake=root.resolve(), parquet=_published_file(lake))
    before = digests(root)
    result = marketlake(lake, "query", sql)
    assert result.returncode == 1, f"{name}: {result.stdout}{result.stderr}"
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "only reads" in lines[0] or "outside the lake" in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert digests(root) == before
    assert not (root / "other.duckdb").exists() and not (root / "exported").exists()


def test_the_refusal_names_the_statement_kind(lake):
    result = marketlake(lake, "query", f"COPY (SELECT 1) TO '{_published_file(lake)}'")
    assert "COPY" in result.stderr and "SELECT" in result.stderr
    shadow = marketlake(lake, "query", "SELECT * FROM read_text('/etc/shadow')")
    assert "/etc/shadow" in shadow.stderr


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) AS n FROM daily_prices",
        "WITH t AS (SELECT symbol FROM daily_prices) SELECT count(*) AS n FROM t",
        "VALUES (1, 'a'), (2, 'b')",
        "SELECT 1 AS n UNION ALL SELECT 2",
        "DESCRIBE daily_prices",
        "SELECT count(*) AS n FROM pipeline_runs",
        "SELECT count(*) AS n FROM quarantine_log",
        "SELECT count(*) AS n FROM raw_daily_prices",
        "SELECT * FROM latest_prices",
    ],
)
def test_reads_of_the_lake_still_work(lake, sql):
    rows = json.loads(ok(marketlake(lake, "query", sql, "--format", "json")))
    assert rows


def test_paths_in_the_sql_are_the_lakes_from_any_working_directory(lake, tmp_path):
    """`--home LAKE query` run elsewhere reads LAKE/curated/..., not ./curated/..."""
    root = (lake / "lake").resolve()
    sql = "SELECT count(*) AS n FROM read_parquet('curated/daily_prices/**/*.parquet')"
    elsewhere = marketlake(tmp_path, "--home", str(root), "query", sql, "--format", "json")
    assert json.loads(ok(elsewhere)) == json.loads(
        ok(marketlake(lake, "query", "SELECT count(*) AS n FROM daily_prices", "--format", "json"))
    )
    listed = json.loads(
        ok(
            marketlake(
                tmp_path,
                "--home",
                str(root),
                "query",
                "SELECT file FROM glob('raw/**')",
                "-f",
                "json",
            )
        )
    )
    assert listed and all(row["file"].startswith(f"{root}/raw/") for row in listed)


def test_a_refusal_in_a_list_names_the_path_refused_not_the_lake_file(lake):
    sql = "SELECT count(*) FROM read_parquet(['curated/daily_prices/**/*.parquet', '/etc/passwd'])"
    error = one_line_error(marketlake(lake, "query", sql))
    assert error.startswith("error: /etc/passwd is outside the lake: "), error
    assert "curated/daily_prices" not in error.split(":", 2)[1]
