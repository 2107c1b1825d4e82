"""`marketlake tickers` and the lake's own tickers, through the CLI (typer's CliRunner, in
process) on a small synthetic lake: issue 23's SPY,QQQ lake, add/remove/list, and purges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from marketlake.cli import app

pytestmark = pytest.mark.e2e

# Sixty days of history from January 2024: every symbol has rows in 2023 and in 2024.
FIRST = "2024-01-10"
SECOND = "2024-01-12"
THIRD = "2024-01-17"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    import os

    for name in list(os.environ):
        if name.startswith(("MARKETLAKE_", "ALPHA", "POLYGON_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MARKETLAKE_HISTORY_DAYS", "60")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "lake"


def cli(home: Path, *args: str):
    return CliRunner().invoke(app, ["--home", str(home), *args])


def ok(result) -> str:
    assert result.exit_code == 0, f"{result.output}\n{result.stderr}"
    return result.stdout


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def raw_files(home: Path, day: str) -> list[str]:
    return sorted(p.name for p in (home / "raw" / "daily_prices" / f"ingest_date={day}").iterdir())


def by_symbol_and_year(home: Path) -> dict[tuple[str, int], int]:
    sql = (
        "SELECT symbol, year(trade_date) AS y, count(*) AS n FROM daily_prices "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    )
    rows = json.loads(ok(cli(home, "query", sql, "--format", "json")))
    return {(r["symbol"], int(r["y"])): int(r["n"]) for r in rows}


def newest(home: Path) -> dict[str, str]:
    sql = "SELECT symbol, max(trade_date) AS last FROM daily_prices GROUP BY 1"
    rows = json.loads(ok(cli(home, "query", sql, "--format", "json")))
    return {r["symbol"]: str(r["last"])[:10] for r in rows}


@pytest.fixture
def spy_qqq(home) -> Path:
    """The issue's lake: built once with --tickers SPY,QQQ."""
    ok(cli(home, "run", "--tickers", "SPY,QQQ", "--as-of", FIRST))
    return home


def test_a_lake_built_with_tickers_keeps_fetching_them_and_not_the_defaults(spy_qqq):
    home = spy_qqq
    listed = ok(cli(home, "tickers", "list"))
    assert "SPY" in listed and "QQQ" in listed and "NVDA" not in listed
    # A plain ingest (here with --refetch SPY) asks for the lake's tickers only.
    ok(cli(home, "ingest", "--refetch", "SPY", "--as-of", SECOND))
    assert raw_files(home, SECOND) == ["QQQ.csv", "SPY.csv"]
    # A plain run refreshes both; the dashboards' watchlist is theirs too.
    ok(cli(home, "run", "--as-of", THIRD))
    assert newest(home) == {"SPY": THIRD, "QQQ": THIRD}
    state = json.loads((home / "state" / "ingest_state.json").read_text())
    assert state["universe"] == ["SPY", "QQQ"]
    assert "NVDA" not in state["symbols"]


def test_tickers_given_for_one_run_do_not_change_the_lakes(spy_qqq):
    home = spy_qqq
    ok(cli(home, "ingest", "--tickers", "AMD", "--as-of", SECOND))
    assert raw_files(home, SECOND) == ["AMD.csv"]
    ok(cli(home, "ingest", "--as-of", THIRD))
    assert raw_files(home, THIRD) == ["QQQ.csv", "SPY.csv"]


def test_add_grows_the_lake_and_remove_stops_fetching(spy_qqq):
    home = spy_qqq
    assert ok(cli(home, "tickers", "add", "nvda", "AMD,SPY")).splitlines() == [
        "NVDA: added",
        "AMD: added",
        "SPY: already in the lake's tickers",
    ]
    assert "QQQ: removed" in ok(cli(home, "tickers", "remove", "QQQ"))
    ok(cli(home, "ingest", "--as-of", SECOND))
    assert raw_files(home, SECOND) == ["AMD.csv", "NVDA.csv", "SPY.csv"]
    listed = ok(cli(home, "tickers", "list"))
    qqq = next(line for line in listed.splitlines() if "QQQ" in line)
    assert "no" in qqq and FIRST in qqq  # not fetched, its watermark kept
    # Its published history stays: only a purge takes it out.
    ok(cli(home, "build"))
    assert ("QQQ", 2023) in by_symbol_and_year(home)


def test_a_purge_takes_the_symbol_out_of_every_year_and_add_brings_it_back(spy_qqq):
    home = spy_qqq
    before = by_symbol_and_year(home)
    assert {("QQQ", 2023), ("QQQ", 2024)} <= set(before)
    said = ok(cli(home, "tickers", "remove", "QQQ", "--purge"))
    assert "QQQ: removed (no longer fetched); purged" in said
    built = ok(cli(home, "build"))
    assert "full build (purged QQQ)" in built
    assert "0 failed" in built  # no_lost_history accepts the purged symbol's absence
    after = by_symbol_and_year(home)
    assert {s for s, _ in after} == {"SPY"}
    assert after == {k: n for k, n in before.items() if k[0] == "SPY"}
    assert "QQQ.csv" in raw_files(home, FIRST)  # raw objects stay, for audit
    registry = json.loads((home / "state" / "versions" / "daily_prices.json").read_text())
    current = next(v for v in registry["versions"] if v["run_id"] == registry["current"])
    assert current["purged"] == ["QQQ"]
    # Later builds keep it out; the next plain ingest does not fetch it.
    ok(cli(home, "run", "--as-of", SECOND))
    assert raw_files(home, SECOND) == ["SPY.csv"]
    assert {s for s, _ in by_symbol_and_year(home)} == {"SPY"}
    # Added again: no longer purged, and the next build brings its history back from raw.
    assert "QQQ: no longer purged" in ok(cli(home, "tickers", "add", "QQQ"))
    assert "full build (QQQ no longer purged)" in ok(cli(home, "build"))
    back = by_symbol_and_year(home)
    assert back[("QQQ", 2023)] == before[("QQQ", 2023)]
    assert back[("QQQ", 2024)] == before[("QQQ", 2024)]


def test_a_symbol_whose_raw_files_were_deleted_without_a_purge_still_blocks(spy_qqq):
    home = spy_qqq
    (home / "raw" / "daily_prices" / f"ingest_date={FIRST}" / "QQQ.csv").unlink()
    landed = home / "state" / "raw_landed" / f"ingest_date={FIRST}.json"
    records = json.loads(landed.read_text())
    landed.write_text(json.dumps({k: r for k, r in records.items() if "QQQ" not in k}))
    line = one_error_line(cli(home, "build", "--full"))
    assert "no_lost_history" in line
    assert {s for s, _ in by_symbol_and_year(home)} == {"SPY", "QQQ"}  # still published


def test_mistakes_are_one_line_errors_and_change_nothing(spy_qqq):
    home = spy_qqq
    state = (home / "state" / "ingest_state.json").read_bytes()
    assert "FOO: not in the lake" in one_error_line(
        cli(home, "tickers", "remove", "FOO", "--purge")
    )
    assert "not a valid symbol" in one_error_line(cli(home, "tickers", "add", "B@D"))
    assert "no tickers to fetch" in one_error_line(cli(home, "tickers", "remove", "SPY", "QQQ"))
    assert (home / "state" / "ingest_state.json").read_bytes() == state


def test_a_new_lake_has_no_tickers_until_its_first_run(home):
    assert "no tickers yet" in ok(cli(home, "tickers", "list"))
    ok(cli(home, "tickers", "add", "SPY"))  # or set them before it
    ok(cli(home, "ingest", "--as-of", FIRST))
    assert raw_files(home, FIRST) == ["SPY.csv"]
