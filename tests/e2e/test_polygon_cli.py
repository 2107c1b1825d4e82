"""End to end: `marketlake ingest --provider polygon` as a subprocess against the loopback
stand-in of api.polygon.io (127.0.0.1; no internet), then build and query."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polygon_fake_server import FakePolygon

from cli_run import marketlake, ok, one_line_error
from marketlake.config import POLYGON_KEY_HELP

pytestmark = pytest.mark.e2e

KEY = "PGkeyE2E0001"


def env(server: FakePolygon, **extra: str) -> dict:
    return {
        "POLYGON_API_KEY": KEY,
        "POLYGON_BASE_URL": server.url,
        "POLYGON_CALLS_PER_MINUTE": "0",  # the stand-in has no limit
        "MARKETLAKE_HISTORY_DAYS": "20",
        **extra,
    }


def test_the_whole_market_ingests_builds_and_answers_queries(tmp_path):
    with FakePolygon(KEY, tickers=250, junk_rows=True) as server:
        # The key alone chooses polygon (no Alpha Vantage key is set).
        first = ok(
            marketlake(
                tmp_path, "ingest", "--tickers", "ALL", "--as-of", "2024-06-13", env=env(server)
            )
        )
        assert "ingest (polygon)" in first
        assert "and 230 more" in first  # 250 symbols: a few named, the rest counted
        assert "quarantined:" in first
        grouped = server.count("grouped")
        assert grouped >= 10 and server.count("aggs") == 0
        ok(marketlake(tmp_path, "build", env=env(server)))
        answer = ok(
            marketlake(
                tmp_path,
                "query",
                "SELECT count(DISTINCT symbol) AS n FROM daily_prices",
                "--format",
                "json",
                env=env(server),
            )
        )
        assert json.loads(answer)[0]["n"] == 250
        status = ok(marketlake(tmp_path, "status", env=env(server)))
        assert "ingest watermarks of 250 symbols, by last trade_date" in status
        assert "whole market landed through 2024-06-13" in status
        shown = ok(marketlake(tmp_path, "dashboards", env=env(server, MARKETLAKE_TICKERS="ALL")))
        page = (tmp_path / shown.split("dashboards: ", 1)[1].strip()).read_text()
        assert "Market breadth" in page
        assert "MARKETLAKE_TICKERS=ALL follows the whole market): the 10 with the most" in page
        weekday = ok(
            marketlake(
                tmp_path, "ingest", "--tickers", "ALL", "--as-of", "2024-06-14", env=env(server)
            )
        )
        assert server.count("grouped") == grouped + 1 and server.count("aggs") == 0
        assert "new bars: 250" in weekday


def test_the_plan_is_printed_before_a_backfill(tmp_path):
    with FakePolygon(KEY, tickers=30) as server:
        result = marketlake(
            tmp_path,
            "ingest",
            "--tickers",
            "ALL",
            "--as-of",
            "2024-06-13",
            env=env(server, MARKETLAKE_HISTORY_DAYS="60"),
        )
        ok(result)
        assert "plan: " in result.stderr and "grouped-daily" in result.stderr
        assert "unpaced" in result.stderr
        # Earnings come from Polygon's financials, one request a ticker: 25 tickers a run
        # (POLYGON_EARNINGS_PER_RUN's default), the other 5 wait for the next, said once.
        assert server.count("financials") == 25
        assert result.stdout.count("  earnings: asked for 25 symbol(s), new or changed: ") == 1
        assert result.stdout.count("  earnings wait for the next run: ") == 1


def test_polygon_without_a_key_is_refused_before_any_request(tmp_path):
    with FakePolygon(KEY, tickers=10) as server:
        result = marketlake(
            tmp_path,
            "ingest",
            "--provider",
            "polygon",
            env={"POLYGON_BASE_URL": server.url},
        )
        line = one_line_error(result)
        assert "POLYGON_API_KEY" in line and POLYGON_KEY_HELP in line
        assert server.requests == []


def test_a_refused_key_stops_with_the_same_line(tmp_path):
    with FakePolygon("the-right-key", tickers=10) as server:
        result = marketlake(tmp_path, "ingest", "--as-of", "2024-06-13", env=env(server))
        assert result.returncode == 1
        assert POLYGON_KEY_HELP in result.stderr and KEY not in result.stderr + result.stdout
        assert len(server.requests) == 1


def test_tickers_all_is_refused_for_alpha_vantage_in_one_line(tmp_path):
    result = marketlake(tmp_path, "ingest", "--tickers", "ALL", env={"ALPHAVANTAGE_API_KEY": "k"})
    line = one_line_error(result)
    assert "--tickers ALL" in line and "polygon" in line
    assert not (tmp_path / "lake").exists()
