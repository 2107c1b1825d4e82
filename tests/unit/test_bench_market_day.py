"""The whole-market day benchmark (bench/bench_market_day.py) measures what it says: the new
session lands as one grouped-daily object in a new ingest_date partition, each day's build is
an incremental build of that session, and the report carries the ratio, its rounds, the target
and both peak memories. A test of the harness at a tiny size, not of any speed."""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
from pathlib import Path

import pytest

from marketlake.config import Settings
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.lake.raw import RAW_COLUMNS
from marketlake.storage import LocalStore
from marketlake.wap.pipeline import run_build

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # it imports bench_build's helpers
    spec = importlib.util.spec_from_file_location("bench_market_day", BENCH / "bench_market_day.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_build", None)


def test_the_day_lands_as_one_grouped_daily_object_sorted_by_symbol(bench, tmp_path):
    import bench_build

    bench_build.make_raw(tmp_path, 12, 1)
    path = bench.add_market_day(tmp_path)

    assert path.relative_to(tmp_path).as_posix() == (
        "raw/daily_prices/ingest_date=2025-01-02/market~2025-01-02.csv"
    )
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == RAW_COLUMNS
    body = rows[1:]
    symbols = [r[0] for r in body]
    assert symbols == sorted(f"S{k:04d}" for k in range(12))
    assert {(r[1], r[7], r[8]) for r in body} == {
        ("2025-01-02", "polygon", "2025-01-02 22:00:00.000")
    }
    closes = bench.last_closes(tmp_path)
    for row in body:  # each bar moves on from its symbol's last close, as a real day does
        assert 0.8 < float(row[5]) / closes[row[0]] < 1.25
        assert float(row[3]) >= max(float(row[2]), float(row[5]))
        assert float(row[4]) <= min(float(row[2]), float(row[5]))


def test_the_report_has_the_ratio_its_rounds_the_target_and_both_peaks(bench, tmp_path):
    env = {"MARKETLAKE_DUCKDB_MEMORY_LIMIT": bench.MEMORY_LIMIT, "MARKETLAKE_KEEP_VERSIONS": "4"}
    lakes = {"small": tmp_path / "small", "large": tmp_path / "large"}
    for name, symbols in (("small", 20), ("large", 60)):
        bench.make_lake(lakes[name], symbols, 1, env)

    runs = bench.run_rounds(lakes, 1, env)
    lines = bench.report(20, 60, runs)

    text = "\n".join(lines)
    assert "whole-market day, 60 / 20 symbols (whole process)" in lines[0]
    assert "(target <= 3: " in lines[0] and ("PASS" in lines[0] or "FAIL" in lines[0])
    assert "rounds " in lines[0] and "the build alone" in lines[1]
    assert "peak memory (max RSS), 60 / 20 symbols" in lines[2]
    assert text.count(" MB") == 2, text  # each day's peak
    for name in lakes:
        assert len(runs[name]["seconds"]) == len(runs[name]["peak"]) == 1
        assert 0 < runs[name]["timed"][0] < runs[name]["seconds"][0]
        assert runs[name]["peak"][0] > 50 * 2**20

    # Each round was rolled back: the day is still to build, and it builds every symbol's bar
    # of the session from the one object.
    lake = lakes["large"]
    settings = Settings.from_env({"MARKETLAKE_HOME": str(lake)})
    with DuckDBEngine(lake) as engine:
        result = run_build(settings, LocalStore(lake), engine)
    assert (result.mode, result.new_rows, result.years) == ("incremental", 60, [2025])
