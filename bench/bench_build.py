"""Build benchmarks (issues: metrics + WAP, build speed): ratios measured side by side.

    .venv/bin/python bench/bench_build.py [--symbols 2000] [--years 10] [--workdir DIR]

On synthetic raw data of SYMBOLS x YEARS sessions it prints (targets of issue 13):
  1. a full build against a bare DuckDB scan of the same raw CSV       (target <= 5x)
     and, to show where that time goes, the floor of any build (read and type the CSV, write
     a table as wide as daily_prices, nothing else) against the scan and the build against it
     (target <= 1.5x), in seconds and CPU seconds; and the metrics alone (the build's metrics
     SQL over bars already in memory, nothing read or written) against the floor: a build
     does both, so it takes at least the floor plus the metrics
  2. a full build against the Polars peer, the same columns written as a user would write
     them in Polars (bench/polars_peer.py)                             (target < 1x)
  3. a full build against a plain pandas implementation of the metrics (target < 1x)
  4. an incremental daily build with YEARS of history against 1 year   (target <= 1.2x)
     and against the full build of YEARS                               (target <= 0.1x)
  5. the peak memory (max RSS) of the full build, with DuckDB's memory limit from
     MARKETLAKE_DUCKDB_MEMORY_LIMIT                                      (target <= 1.2 GB)
Each measurement runs in a fresh subprocess, so caches and peak memory are its own. The
machines are shared and noisy: every measurement is taken --repeat times, interleaved with the
one it is compared with, and the ratio of the medians is printed (with the range of the
per-round ratios). Each incremental round is rolled back before the next, so every round does
the same work. Read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from marketlake.sessions import sessions_between

LAST_DAY = dt.date(2024, 12, 31)
MEMORY_LIMIT = "1GB"


def make_raw(lake: Path, symbols: int, years: int, seed: int = 7) -> list[dt.date]:
    """Raw CSV like a history import: one object per symbol under one ingest_date."""
    start = dt.date(LAST_DAY.year - years + 1, 1, 1)
    days = sessions_between(start, LAST_DAY)
    rng = np.random.default_rng(seed)
    n = len(days)
    folder = lake / "raw" / "daily_prices" / "ingest_date=2025-01-01"
    folder.mkdir(parents=True, exist_ok=True)
    dates = pa.array([d.isoformat() for d in days])
    stamp = pa.array(["2025-01-01 23:00:00.000"] * n)
    for k in range(symbols):
        sigma = rng.uniform(0.01, 0.03)
        log_close = np.log(rng.uniform(10, 300)) + np.cumsum(rng.normal(0, sigma, n))
        close = np.round(np.exp(log_close), 2)
        open_ = np.round(close * np.exp(rng.normal(0, sigma / 2, n)), 2)
        high = np.maximum(open_, close) + np.round(np.abs(rng.normal(0, sigma, n)) * close, 2)
        low = np.maximum(
            np.minimum(open_, close) - np.round(np.abs(rng.normal(0, sigma, n)) * close, 2),
            0.01,
        )
        volume = rng.lognormal(14, 0.5, n).astype(np.int64)
        table = pa.table(
            {
                "symbol": pa.array([f"S{k:04d}"] * n),
                "trade_date": dates,
                "open": pa.array(open_).cast(pa.string()),
                "high": pa.array(high).cast(pa.string()),
                "low": pa.array(low).cast(pa.string()),
                "close": pa.array(close).cast(pa.string()),
                "volume": pa.array(volume).cast(pa.string()),
                "source": pa.array(["import"] * n),
                "ingested_at": stamp,
            }
        )
        pacsv.write_csv(table, folder / f"S{k:04d}.csv")
    return days


def add_day(lake: Path, symbols: int, day: dt.date) -> None:
    """The next session's bar for every symbol, as a daily ingest lands it."""
    folder = lake / "raw" / "daily_prices" / f"ingest_date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(symbols):
        text = (
            "symbol,trade_date,open,high,low,close,volume,source,ingested_at\r\n"
            f"S{k:04d},{day.isoformat()},100.0,101.5,99.0,100.5,1000000,import,"
            f"{day.isoformat()} 23:00:00.000\r\n"
        )
        (folder / f"S{k:04d}.csv").write_text(text)


# -- what each measurement runs, in its own process ------------------------------------------


def _scan(lake: str) -> None:
    import duckdb

    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT})
    from marketlake.lake.raw import RAW_COLUMNS

    # The same reader options as the build's raw table, so only the build's work differs.
    pattern = f"{lake}/raw/daily_prices/*/*.csv"
    columns = ", ".join(f"'{c}': 'VARCHAR'" for c in RAW_COLUMNS)
    con.execute(
        f"SELECT count(*), max(close), sum(length(symbol)) FROM read_csv('{pattern}', "
        f"header = true, auto_detect = false, columns = {{{columns}}}, "
        "hive_partitioning = true, hive_types_autocast = false)"
    ).fetchall()


def _build(lake: str, full: str) -> None:
    from marketlake.config import Settings
    from marketlake.engines.duckdb import DuckDBEngine
    from marketlake.storage import LocalStore
    from marketlake.wap.pipeline import run_build

    settings = Settings.from_env({**os.environ, "MARKETLAKE_HOME": lake})
    started = time.perf_counter()
    with DuckDBEngine(
        Path(lake), memory_limit=settings.duckdb_memory_limit, threads=settings.duckdb_threads
    ) as engine:
        result = run_build(settings, LocalStore(lake), engine, full=full == "full")
    # The build alone, without the interpreter's start and the imports (bench_market_day.py).
    TIMED.update(timed=time.perf_counter() - started)
    print(json.dumps({"rows": result.rows_written, "mode": result.mode}), file=sys.stderr)
    if result.mode != full:
        # A skipped or full build in place of an incremental one would skew the ratio.
        raise SystemExit(f"expected a {full} build, got {result.mode}: {result.message}")


def _floor(lake: str) -> None:
    """The least any build of daily_prices does: the build's own raw reader and types, and its
    own Parquet writer on a table of daily_prices' width and types (16 doubles are cheap
    per-row arithmetic here). No dedupe, window, check, publish or view."""
    from marketlake.engines.duckdb import DuckDBEngine

    out = "bench-floor"
    doubles = ", ".join(f"close - open + {k} AS m{k}" for k in range(16))
    typed = (
        "SELECT upper(trim(symbol)) AS symbol, try_cast(trade_date AS DATE) AS trade_date, "
        "try_cast(open AS DOUBLE) AS open, try_cast(high AS DOUBLE) AS high, "
        "try_cast(low AS DOUBLE) AS low, try_cast(close AS DOUBLE) AS close, "
        "try_cast(volume AS BIGINT) AS volume FROM raw_daily_prices"
    )
    with tempfile.TemporaryDirectory() as scratch:
        catalog = Path(scratch) / "catalog.duckdb"
        with DuckDBEngine(Path(lake), catalog, memory_limit=MEMORY_LIMIT) as engine:
            engine.register_raw("raw_daily_prices", "raw/daily_prices")
            engine.ctas(
                f"SELECT symbol, trade_date, open, high, low, close, volume, {doubles}, "
                "CASE WHEN close > open THEN 'bullish' ELSE 'bearish' END AS candle_type, "
                f"close > open AS is_market_up, year(trade_date) AS year FROM ({typed}) AS t",
                out,
                ["year"],
            )
    shutil.rmtree(Path(lake) / out)


def _metrics_alone(lake: str) -> None:
    """The build's metrics SQL and nothing else: over the typed, deduplicated bars already in
    memory (read first, not timed), every column computed (max of each), nothing written.
    Times that step alone, in seconds and in CPU seconds. With the floor, it bounds any
    build from below: a full build reads, types and writes (the floor) and computes these."""
    from marketlake import sqlfiles
    from marketlake.engines.duckdb import DuckDBEngine, transpile
    from marketlake.lake import actions
    from marketlake.storage import LocalStore
    from marketlake.wap.pipeline import METRICS_SQL

    with tempfile.TemporaryDirectory() as scratch:
        catalog = Path(scratch) / "catalog.duckdb"
        with DuckDBEngine(Path(lake), catalog, memory_limit=MEMORY_LIMIT) as engine:
            engine.register_raw("raw_daily_prices", "raw/daily_prices")
            engine.materialize("new_bars", sqlfiles.load("staging/bars.sql"))
            engine.derive("bars", sqlfiles.load("wap/new_bars.sql"))
            for name, frame in actions.build_frames(LocalStore(lake)).items():
                engine.register_frame(name, frame)  # as the build registers them
            metrics = transpile(sqlfiles.load(METRICS_SQL))
            started, cpu = time.perf_counter(), _cpu_seconds()
            engine.con.execute(f"SELECT count(*), max(COLUMNS(*)) FROM ({metrics})").fetchall()
            TIMED.update(timed=time.perf_counter() - started, timed_cpu=_cpu_seconds() - cpu)


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# What a measurement times inside its process, when it times less than the whole process.
TIMED: dict[str, float] = {}


def _polars(lake: str) -> None:
    """The same columns in Polars, as a user would write them (bench/polars_peer.py)."""
    import polars_peer

    with tempfile.TemporaryDirectory() as scratch:
        polars_peer.write(Path(lake), Path(scratch) / "daily_prices")


def _rollback(lake: str) -> None:
    """Back to the version the last build started from (not timed)."""
    from marketlake.config import Settings
    from marketlake.engines.duckdb import DuckDBEngine
    from marketlake.storage import LocalStore
    from marketlake.wap.pipeline import rollback

    settings = Settings.from_env({**os.environ, "MARKETLAKE_HOME": lake})
    with DuckDBEngine(Path(lake)) as engine:
        rollback(settings, LocalStore(lake), engine)


def _pandas(lake: str) -> None:
    """The same metrics in plain pandas: what a notebook would do."""
    import glob

    import pandas as pd

    frames = [
        pd.read_csv(path, dtype=str) for path in glob.glob(f"{lake}/raw/daily_prices/*/*.csv")
    ]
    df = pd.concat(frames, ignore_index=True)
    for c in ("open", "high", "low", "close"):
        df[c] = df[c].astype(float)
    df["volume"] = df["volume"].astype("int64")
    df["trade_date"] = pd.to_datetime(df["trade_date"])
    df = df.sort_values(["symbol", "trade_date", "ingested_at"])
    df = df.drop_duplicates(["symbol", "trade_date"], keep="last").reset_index(drop=True)
    g = df.groupby("symbol", sort=False)
    prev = g["close"].shift(1)
    ln2 = np.log(2.0)
    hl = np.log(df["high"] / df["low"])
    co = np.log(df["close"] / df["open"])
    df["daily_return"] = df["close"] - df["open"]
    df["avg_price"] = (df["open"] + df["high"] + df["low"] + df["close"]) / 4
    df["price_change_pct"] = 100 * (df["close"] / prev - 1)
    df["log_return"] = np.log(df["close"] / prev)
    df["parkinson_vol"] = hl.abs() / np.sqrt(4 * ln2)

    def roll(series, n, fn="mean"):
        r = series.groupby(df["symbol"], sort=False).rolling(n, min_periods=n)
        return getattr(r, fn)().reset_index(level=0, drop=True)

    df["parkinson_vol_20d"] = np.sqrt(252 / (4 * ln2) * roll(hl**2, 20))
    df["garman_klass_vol_20d"] = np.sqrt(252 * roll(0.5 * hl**2 - (2 * ln2 - 1) * co**2, 20))
    rs = np.log(df["high"] / df["close"]) * np.log(df["high"] / df["open"]) + np.log(
        df["low"] / df["close"]
    ) * np.log(df["low"] / df["open"])
    df["rogers_satchell_vol_20d"] = np.sqrt(252 * roll(rs, 20))
    k = 0.34 / (1.34 + 21 / 19)
    oc = np.log(df["open"] / prev)
    df["yang_zhang_vol_20d"] = np.sqrt(
        252 * (roll(oc, 20, "var") + k * roll(co, 20, "var") + (1 - k) * roll(rs, 20))
    )
    df["hv_30d"] = roll(df["log_return"], 30, "std") * np.sqrt(252)
    for n in (5, 20, 50):
        df[f"sma_{n}"] = roll(df["close"], n)
    change = df["close"] - prev
    gain, loss = change.clip(lower=0), (-change).clip(lower=0)

    def wilder(x):
        out = np.full(len(x), np.nan)
        values = x.to_numpy()
        if len(values) > 14:
            avg = values[1:15].mean()
            out[14] = avg
            for i in range(15, len(values)):
                avg = (13 * avg + values[i]) / 14
                out[i] = avg
        return pd.Series(out, index=x.index)

    avg_gain = gain.groupby(df["symbol"], sort=False, group_keys=False).apply(wilder)
    avg_loss = loss.groupby(df["symbol"], sort=False, group_keys=False).apply(wilder)
    df["rsi_14"] = 100 - 100 / (1 + avg_gain / avg_loss)
    prev7 = roll(df["volume"].astype(float), 7).groupby(df["symbol"]).shift(1)
    df["volume_surge_ratio"] = df["volume"] / prev7
    df["is_market_up"] = df["close"] > df["open"]
    df["year"] = df["trade_date"].dt.year
    out = Path(tempfile.mkdtemp())
    df.to_parquet(out / "daily_prices.parquet", partition_cols=["year"])
    shutil.rmtree(out)


def measure(*args: str, env: dict | None = None) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of one measurement in a child process."""
    report = measure_report(*args, env=env)
    return report["seconds"], int(report["peak"])


def measure_report(*args: str, env: dict | None = None) -> dict[str, float]:
    """One measurement in a child process: its seconds, CPU seconds and peak RSS (bytes),
    and the `timed` / `timed_cpu` seconds of the step it times alone, if it does."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step {args} failed:\n{proc.stderr[-2000:]}")
    return {"seconds": seconds, **json.loads(proc.stdout.strip().splitlines()[-1])}


def _child(args: list[str]) -> None:
    import resource

    steps = {
        "scan": _scan,
        "floor": _floor,
        "build": _build,
        "pandas": _pandas,
        "polars": _polars,
        "rollback": _rollback,
        "metrics": _metrics_alone,
    }
    steps[args[0]](*args[1:])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak": peak, "cpu": _cpu_seconds(), **TIMED}))


def ratio(numerators: list[float], denominators: list[float]) -> tuple[float, str]:
    """The ratio of the medians, and the ratio of each round."""
    rounds = ", ".join(f"{n / d:.2f}" for n, d in zip(numerators, denominators))
    return statistics.median(numerators) / statistics.median(denominators), rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each measurement")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="marketlake-bench-"))
    # Every round adds a version; keeping them all spares the long lake the deletion of a
    # whole 10-year version in the middle of a timed round, which the short lake never has.
    env = {
        "MARKETLAKE_DUCKDB_MEMORY_LIMIT": MEMORY_LIMIT,
        "MARKETLAKE_KEEP_VERSIONS": str(2 * args.repeat + 2),
    }
    try:
        long_lake, short_lake = work / "long", work / "short"
        print(f"data: {args.symbols} symbols x {args.years} years -> {work}", flush=True)
        days = make_raw(long_lake, args.symbols, args.years)
        make_raw(short_lake, args.symbols, 1)
        print(f"      {args.symbols * len(days):,} raw rows", flush=True)

        scans, floors, fulls, peaks, polars, polars_peaks = [], [], [], [], [], []
        floor_cpus, full_cpus, alone, alone_cpus = [], [], [], []
        for round_ in range(args.repeat):
            print(
                f"round {round_ + 1}/{args.repeat}: scan, floor, metrics alone, full build, Polars",
                flush=True,
            )
            scans.append(measure("scan", str(long_lake))[0])
            floor = measure_report("floor", str(long_lake))
            floors.append(floor["seconds"])
            floor_cpus.append(floor["cpu"])
            metrics = measure_report("metrics", str(long_lake))
            alone.append(metrics["timed"])
            alone_cpus.append(metrics["timed_cpu"])
            full = measure_report("build", str(long_lake), "full", env=env)
            fulls.append(full["seconds"])
            full_cpus.append(full["cpu"])
            peaks.append(int(full["peak"]))
            seconds, peak = measure("polars", str(long_lake))
            polars.append(seconds)
            polars_peaks.append(peak)
        print("pandas metrics (once: far from its target)", flush=True)
        pandas_s, pandas_peak = measure("pandas", str(long_lake))

        next_day = dt.date(2025, 1, 2)
        add_day(long_lake, args.symbols, next_day)
        measure("build", str(short_lake), "full", env=env)
        add_day(short_lake, args.symbols, next_day)
        inc_long, inc_short = [], []
        for round_ in range(args.repeat):
            print(f"round {round_ + 1}/{args.repeat}: incremental day, long and short", flush=True)
            inc_long.append(measure("build", str(long_lake), "incremental", env=env)[0])
            measure("rollback", str(long_lake), env=env)
            inc_short.append(measure("build", str(short_lake), "incremental", env=env)[0])
            measure("rollback", str(short_lake), env=env)

        full_scan = ratio(fulls, scans)
        floor_scan = ratio(floors, scans)
        full_floor = ratio(fulls, floors)
        full_pandas = statistics.median(fulls) / pandas_s
        full_polars = ratio(fulls, polars)
        alone_floor = ratio(alone, floors)
        alone_floor_cpu = ratio(alone_cpus, floor_cpus)
        full_floor_cpu = ratio(full_cpus, floor_cpus)
        incremental = ratio(inc_long, inc_short)
        incremental_full = statistics.median(inc_long) / statistics.median(fulls)
        print()
        print(
            f"  {'full build / bare DuckDB scan of the raw CSV':<52} {full_scan[0]:6.2f}x   "
            f"(target <= 5; rounds {full_scan[1]})"
        )
        print(
            f"  {'  floor (read, type, write as wide) / the scan':<52} {floor_scan[0]:6.2f}x   "
            f"(no target; rounds {floor_scan[1]})"
        )
        print(
            f"  {'  full build / that floor':<52} {full_floor[0]:6.2f}x   "
            f"(target <= 1.5; rounds {full_floor[1]})"
        )
        print(
            f"  {'    in CPU seconds':<52} {full_floor_cpu[0]:6.2f}x   (rounds {full_floor_cpu[1]})"
        )
        print(
            f"  {'  metrics alone (bars in memory, no write) / floor':<52} "
            f"{alone_floor[0]:6.2f}x   (CPU seconds {alone_floor_cpu[0]:.2f}x; rounds "
            f"{alone_floor[1]}): a build is at least the floor plus this"
        )
        print(
            f"  {'full build / the Polars peer (same columns)':<52} {full_polars[0]:6.2f}x   "
            f"(target < 1; rounds {full_polars[1]})"
        )
        print(f"  {'full build / plain pandas metrics':<52} {full_pandas:6.2f}x   (target < 1)")
        print(
            f"  {f'incremental day, {args.years}y history / 1y history':<52} "
            f"{incremental[0]:6.2f}x   (target <= 1.2, every round <= 1.4; rounds "
            f"{incremental[1]})"
        )
        print(
            f"  {f'incremental day / full build, {args.years}y history':<52} "
            f"{incremental_full:6.2f}x   (target <= 0.1)"
        )
        print(
            f"  {'peak memory of the full build (max RSS)':<52} {max(peaks) / 2**30:6.2f} GB "
            f"(target <= 1.2 GB; DuckDB memory_limit {MEMORY_LIMIT}; Polars peaked at "
            f"{max(polars_peaks) / 2**30:.2f} GB, pandas at {pandas_peak / 2**30:.2f} GB)"
        )
        print(
            f"  seconds (medians): scan {statistics.median(scans):.2f}, floor "
            f"{statistics.median(floors):.2f}, metrics alone {statistics.median(alone):.2f}, "
            "full build "
            f"{statistics.median(fulls):.2f}, Polars {statistics.median(polars):.2f}, pandas "
            f"{pandas_s:.2f}, incremental "
            f"{statistics.median(inc_long):.2f} / {statistics.median(inc_short):.2f}"
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
    else:
        main()
