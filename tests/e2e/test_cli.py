"""End to end: the real `marketlake` command in a temporary directory, as a user runs it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from cli_run import marketlake, ok
from marketlake.config import DEFAULT_TICKERS
from marketlake.sessions import sessions_between

pytestmark = pytest.mark.e2e

FIRST_AS_OF = "2024-06-28"
LATER_AS_OF = "2024-07-05"
ALL_ROWS = "SELECT * FROM daily_prices ORDER BY symbol, trade_date"


def query_csv(cwd: Path, sql: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(ok(marketlake(cwd, "query", sql, "--format", "csv")))))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> tuple[Path, str]:
    cwd = tmp_path_factory.mktemp("user")
    return cwd, ok(marketlake(cwd, "run", "--as-of", FIRST_AS_OF))


def test_run_builds_daily_prices_for_every_default_ticker(first_run):
    cwd, output = first_run
    assert (cwd / "lake" / "catalog.duckdb").is_file()
    rows = query_csv(cwd, "SELECT symbol, count(*) AS n FROM daily_prices GROUP BY symbol")
    assert sorted(r["symbol"] for r in rows) == sorted(DEFAULT_TICKERS)
    # Two years of NYSE sessions before the as-of date, one bar each.
    expected = len(sessions_between(dt.date(2022, 6, 29), _date(FIRST_AS_OF)))
    assert {int(r["n"]) for r in rows} == {expected}
    # The summary names each symbol with its range, the run id and a query to paste.
    for symbol in DEFAULT_TICKERS:
        assert symbol in output
    assert "2024-06-28" in output
    # The SQL checks, bad_row_share and raw_rows_readable (rows the CSV reader rejected).
    assert "checks: 15 passed, 0 failed, 0 warning(s)" in output
    assert "marketlake query" in output


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def test_raw_zone_layout(first_run):
    cwd, _ = first_run
    raw = cwd / "lake" / "raw" / "daily_prices" / f"ingest_date={FIRST_AS_OF}"
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{s}.csv" for s in DEFAULT_TICKERS)
    header = (raw / "NVDA.csv").read_bytes().split(b"\r\n", 1)[0]
    assert header == b"symbol,trade_date,open,high,low,close,volume,source,ingested_at"
    state = json.loads((cwd / "lake" / "state" / "ingest_state.json").read_text())
    assert state["symbols"]["NVDA"]["watermark"] == FIRST_AS_OF


def test_metrics_are_computed(first_run):
    cwd, _ = first_run
    rows = query_csv(
        cwd,
        "SELECT open, high, low, close, daily_return, avg_price, parkinson_vol_20d "
        "FROM daily_prices WHERE symbol = 'AMD' ORDER BY trade_date",
    )
    assert all(r["parkinson_vol_20d"] == "" for r in rows[:19])
    assert all(float(r["parkinson_vol_20d"]) > 0 for r in rows[19:])
    for r in rows:
        o, h, lo, c = (float(r[k]) for k in ("open", "high", "low", "close"))
        assert float(r["daily_return"]) == pytest.approx(c - o, rel=1e-12, abs=1e-12)
        assert float(r["avg_price"]) == pytest.approx((o + h + lo + c) / 4, rel=1e-12)


def test_rerun_changes_nothing_then_a_later_day_adds_only_new_sessions(tmp_path):
    ok(marketlake(tmp_path, "run", "--as-of", FIRST_AS_OF, "--tickers", "NVDA,MU"))
    before = query_csv(tmp_path, ALL_ROWS)
    raw_before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "lake" / "raw").rglob("*"))

    again = ok(marketlake(tmp_path, "run", "--as-of", FIRST_AS_OF, "--tickers", "NVDA,MU"))
    assert "already up to date: NVDA, MU" in again
    assert "nothing to build" in again
    assert query_csv(tmp_path, ALL_ROWS) == before
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "lake" / "raw").rglob("*")) == (
        raw_before
    )
    dupes = query_csv(
        tmp_path,
        "SELECT symbol, trade_date FROM daily_prices GROUP BY symbol, trade_date "
        "HAVING count(*) > 1",
    )
    assert dupes == []

    ok(marketlake(tmp_path, "run", "--as-of", LATER_AS_OF, "--tickers", "NVDA,MU"))
    after = query_csv(tmp_path, ALL_ROWS)
    new_sessions = sessions_between(_date("2024-06-29"), _date(LATER_AS_OF))
    assert len(new_sessions) == 4  # Jul 1, 2, 3 (early close) and 5; Jul 4 is a holiday
    assert len(after) == len(before) + 2 * len(new_sessions)
    old_keys = {(r["symbol"], r["trade_date"]) for r in before}
    added = [r for r in after if (r["symbol"], r["trade_date"]) not in old_keys]
    assert sorted({r["trade_date"] for r in added}) == [d.isoformat() for d in new_sessions]
    # Rows already published are unchanged: windows only look back.
    assert [r for r in after if (r["symbol"], r["trade_date"]) in old_keys] == before
    assert (tmp_path / "lake" / "raw" / "daily_prices" / f"ingest_date={LATER_AS_OF}").is_dir()


def test_query_formats(first_run):
    cwd, _ = first_run
    sql = (
        "SELECT symbol, trade_date, close FROM daily_prices WHERE symbol = 'MU' ORDER BY 2 LIMIT 2"
    )
    as_json = json.loads(ok(marketlake(cwd, "query", sql, "--format", "json")))
    assert [r["symbol"] for r in as_json] == ["MU", "MU"]
    assert as_json[0]["trade_date"] < as_json[1]["trade_date"]
    assert len(as_json[0]["trade_date"]) == 10  # a DATE, not a timestamp
    as_csv = ok(marketlake(cwd, "query", sql, "--format", "csv")).splitlines()
    assert as_csv[0] == "symbol,trade_date,close"
    assert as_csv[1].split(",")[1] == as_json[0]["trade_date"]
    as_table = ok(marketlake(cwd, "query", sql))
    assert "2 row(s)" in as_table


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELEC symbol FROM daily_prices", "does not parse"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("SELECT 1; SELECT 2", "one SQL statement"),
        ("DROP VIEW daily_prices", "read-only"),
    ],
)
def test_bad_sql_is_one_line_on_stderr_with_nonzero_exit(first_run, sql, needle):
    cwd, _ = first_run
    result = marketlake(cwd, "query", sql)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(first_run):
    cwd, _ = first_run
    result = marketlake(cwd, "--debug", "query", "SELEC 1")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_status_shows_runs_versions_checks_and_watermarks(first_run):
    cwd, _ = first_run
    output = ok(marketlake(cwd, "status"))
    for needle in ("published", "prices_positive", "ingest watermarks", FIRST_AS_OF):
        assert needle in output


def test_errors_say_what_to_do(tmp_path):
    result = marketlake(tmp_path, "query", "SELECT 1")
    assert result.returncode == 1
    assert "marketlake run" in result.stderr
    future = marketlake(tmp_path, "run", "--as-of", "2999-01-01")
    assert future.returncode == 1 and "future" in future.stderr
    bad = marketlake(tmp_path, "run", "--tickers", "NV DA")
    assert bad.returncode == 1 and "not a valid symbol" in bad.stderr
    no_key = marketlake(tmp_path, "ingest", "--provider", "alphavantage")
    assert no_key.returncode == 1 and "ALPHAVANTAGE_API_KEY" in no_key.stderr
    assert not (tmp_path / "lake" / "raw").exists()


def test_env_settings_and_flags(tmp_path):
    env = {"MARKETLAKE_HOME": str(tmp_path / "elsewhere"), "MARKETLAKE_TICKERS": "txn"}
    ok(marketlake(tmp_path, "ingest", "--as-of", FIRST_AS_OF, env=env))
    assert (
        tmp_path / "elsewhere" / "raw" / "daily_prices" / f"ingest_date={FIRST_AS_OF}" / "TXN.csv"
    ).is_file()
    # A flag beats the environment.
    ok(marketlake(tmp_path, "ingest", "--as-of", FIRST_AS_OF, "--tickers", "QCOM", env=env))
    assert (
        tmp_path / "elsewhere" / "raw" / "daily_prices" / f"ingest_date={FIRST_AS_OF}" / "QCOM.csv"
    ).is_file()


@pytest.mark.parametrize("command", ["", "run", "ingest", "build", "query", "status"])
def test_help_explains_each_command(tmp_path, command):
    args = [command, "--help"] if command else ["--help"]
    output = ok(marketlake(tmp_path, *args))
    assert "Usage" in output
    assert len(output.splitlines()) > 5
