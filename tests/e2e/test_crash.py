"""The crash test: `build` killed (SIGKILL, through the MARKETLAKE_FAULT hook) at each of its
durable steps. After every kill, query, status and the version registry agree on what is
published, and the next build publishes exactly what a build that was never killed does."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import duckdb
import pytest
from test_cli import ALL_ROWS, marketlake, ok, query_csv

pytestmark = pytest.mark.e2e

ENV = {"MARKETLAKE_TICKERS": "NVDA,AMD", "MARKETLAKE_HISTORY_DAYS": "120"}
REGISTRY = Path("lake/state/versions/daily_prices.json")
RSI_COLUMNS = {"rsi_14", "rsi_avg_gain_14", "rsi_avg_loss_14"}
# Every durable step of a build, in order, and the registry's own write (which a kill can
# leave as a .tmp file).
STEPS = [
    "written",
    "audited",
    "synced",
    f"write {REGISTRY.relative_to('lake').as_posix()}",
    "committed",
    "catalog",
    "pruned",
    "recorded",
]


def cli(cwd: Path, *args: str, **env: str):
    return marketlake(cwd, *args, env={**ENV, **env})


@pytest.fixture(scope="module")
def before_second_build(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A lake with one published version and a day of new raw data, and the rows a build
    that is never killed publishes from it."""
    cwd = tmp_path_factory.mktemp("base")
    ok(cli(cwd, "ingest", "--as-of", "2024-06-03"))
    ok(cli(cwd, "build"))
    ok(cli(cwd, "ingest", "--as-of", "2024-06-10"))
    clean = tmp_path_factory.mktemp("clean")
    shutil.copytree(cwd / "lake", clean / "lake", symlinks=True)
    ok(cli(clean, "build"))
    return cwd, query_csv(clean, ALL_ROWS)


def published_rows(cwd: Path, current: str) -> tuple[int, str]:
    """Rows and newest date of the registry's current version, read from its files."""
    registry = json.loads((cwd / REGISTRY).read_text())
    (version,) = [v for v in registry["versions"] if v["run_id"] == current]
    files = [str(cwd / "lake" / loc / "*.parquet") for loc in version["partitions"].values()]
    con = duckdb.connect()
    try:
        n, last = con.execute(
            "SELECT count(*), CAST(max(trade_date) AS VARCHAR) FROM read_parquet(?)", [files]
        ).fetchone()
    finally:
        con.close()
    return n, last


@pytest.mark.parametrize("step", STEPS)
def test_a_build_killed_at_a_durable_step_leaves_a_lake_that_agrees(
    before_second_build, tmp_path, step
):
    base, clean_rows = before_second_build
    cwd = tmp_path / "user"
    shutil.copytree(base, cwd, symlinks=True)
    killed = cli(cwd, "build", MARKETLAKE_FAULT=step)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    # The registry, status and query agree on the published version.
    current = json.loads((cwd / REGISTRY).read_text())["current"]
    status = ok(cli(cwd, "status"))
    marked = [line for line in status.splitlines() if line.rstrip(" │|").endswith("yes")]
    assert len(marked) == 1 and current in marked[0], status
    seen = query_csv(cwd, "SELECT count(*) AS n, max(trade_date) AS last FROM daily_prices")
    assert (int(seen[0]["n"]), seen[0]["last"]) == published_rows(cwd, current)

    # The next build publishes what a build that was never killed does, and cleans up.
    ok(cli(cwd, "build"))
    assert query_csv(cwd, ALL_ROWS) == clean_rows
    lake = cwd / "lake"
    assert [p for p in lake.rglob(".*.tmp")] == []
    registry = json.loads((cwd / REGISTRY).read_text())
    kept = {f"version={v['run_id']}" for v in registry["versions"]}
    assert {p.name for p in (lake / "curated" / "daily_prices").iterdir()} <= kept


def test_a_truncated_raw_object_blocks_build_in_one_line_until_refetched(
    before_second_build, tmp_path
):
    base, clean_rows = before_second_build
    cwd = tmp_path / "user"
    shutil.copytree(base, cwd, symlinks=True)
    key = "raw/daily_prices/ingest_date=2024-06-10/NVDA.csv"
    (cwd / "lake" / key).write_bytes((cwd / "lake" / key).read_bytes().split(b"\r\n")[0] + b"\r\n")
    blocked = cli(cwd, "build")
    assert blocked.returncode == 1
    assert blocked.stderr.count("\n") == 1 and key in blocked.stderr, blocked.stderr
    assert "marketlake ingest --refetch NVDA" in blocked.stderr
    ok(cli(cwd, "ingest", "--as-of", "2024-06-10", "--refetch", "NVDA"))
    ok(cli(cwd, "build"))
    # The refetch lands NVDA's earlier bars again, so this build recomputes NVDA from an
    # earlier row than the clean one: Wilder's recursion (rsi_14 and its two averages) and
    # DuckDB's windowed sums over more rows (hv_30d, sma_50: which partial sums it combines
    # depends on where the recomputed rows start) round their last bit differently there.
    # Every other value, and every other symbol's, is identical: the trailing dividends and
    # eps_ttm are sums in a fixed order (test_build_determinism.py).
    rows = query_csv(cwd, ALL_ROWS)
    assert len(rows) == len(clean_rows)
    rounded = {*RSI_COLUMNS, "hv_30d", "sma_50"}
    for got, want in zip(rows, clean_rows):
        assert got.keys() == want.keys()
        for key in got:
            if got["symbol"] == "NVDA" and key in rounded and got[key] != want[key]:
                assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-14), key
            else:
                assert got[key] == want[key], (key, got, want)
