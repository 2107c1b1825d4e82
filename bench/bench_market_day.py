"""A whole-market day (issue 21, item 8 "Scale"): the incremental build of one new session for
every US ticker, beside the same day for 2,000 symbols.

    .venv/bin/python bench/bench_market_day.py [--symbols 2000] [--symbols-large 12000]
        [--years 2] [--repeat 3] [--workdir DIR] [--profile]

It makes two lakes of bench_build.py's synthetic history (one raw object per symbol under one
ingest_date, YEARS of sessions), of --symbols (the small day) and --symbols-large (the whole
market; six times the small one unless given) symbols, runs a full build on each (setup, not
timed), and lands the next session as Polygon's grouped-daily ingest lands it: ONE object for
the session, raw/daily_prices/ingest_date=D/market~<session>.csv, every symbol's bar in it,
sorted by symbol, source `polygon`. Then it times the incremental build of that session on
each lake, --repeat rounds interleaved (small, large, small, large...), each in a fresh
process (bench_build.py's build step) and each rolled back afterwards, so every round does the
same work. It prints:
  1. the large day / the small day, the whole process as `marketlake build` runs it
     (target: no more than linear in the symbols, <= 6x for 12,000 / 2,000)
  2. the same for the build alone (interpreter start and imports left out: they cost the
     same on both days, so they flatten the first ratio)
  3. the peak memory (max RSS) of each day's process, and their ratio, with DuckDB's memory
     limit of bench_build.py
With --profile it then runs bench/profile_build.py's timed build once on each lake: every
step of run_build and every engine call, side by side. Read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from bench_build import MEMORY_LIMIT, make_raw, measure_report, ratio

from marketlake.lake.raw import RAW_COLUMNS, RAW_PREFIX, frame_to_csv, market_key

SESSION = dt.date(2025, 1, 2)  # the session after make_raw's last (2024-12-31)
# Polygon's grouped-daily bars for a session are fetched after the close, on the same day.
INGEST_DATE = SESSION
INGESTED_AT = f"{SESSION.isoformat()} 22:00:00.000"
HISTORY_INGEST_DATE = "2025-01-01"  # make_raw's one ingest_date


def last_closes(lake: Path) -> dict[str, float]:
    """Each symbol's last close in make_raw's history (the last line of its object)."""
    closes = {}
    folder = lake / RAW_PREFIX / f"ingest_date={HISTORY_INGEST_DATE}"
    close_at = RAW_COLUMNS.index("close")
    for path in folder.glob("*.csv"):
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 512))
            line = f.read().decode().rstrip().splitlines()[-1]
        row = next(csv.reader([line]))
        closes[row[0]] = float(row[close_at])
    return closes


def add_market_day(lake: Path, session: dt.date = SESSION, seed: int = 11) -> Path:
    """The next session's bar for every symbol of the lake, in one grouped-daily object under
    a new ingest_date partition: each bar moves on from the symbol's last close."""
    closes = last_closes(lake)
    symbols = sorted(closes)
    last = np.array([closes[s] for s in symbols])
    rng = np.random.default_rng(seed)
    n = len(symbols)
    close = np.round(last * np.exp(rng.normal(0, 0.02, n)), 2)
    open_ = np.round(last * np.exp(rng.normal(0, 0.01, n)), 2)
    high = np.round(np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, n))), 2)
    low = np.maximum(
        np.round(np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, n))), 2), 0.01
    )
    volume = rng.lognormal(14, 0.5, n).astype(np.int64)
    frame = pd.DataFrame(
        {
            "symbol": symbols,
            "trade_date": session.isoformat(),
            "open": [repr(float(v)) for v in open_],
            "high": [repr(float(v)) for v in high],
            "low": [repr(float(v)) for v in low],
            "close": [repr(float(v)) for v in close],
            "volume": [str(int(v)) for v in volume],
            "source": "polygon",
            "ingested_at": INGESTED_AT,
        },
        columns=RAW_COLUMNS,
    )
    path = lake / market_key(INGEST_DATE, session)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(frame_to_csv(frame))
    return path


def make_lake(lake: Path, symbols: int, years: int, env: dict) -> tuple[int, float]:
    """The history, its full build (setup: once, not compared), then the new session landed.
    The raw rows, and the full build's seconds."""
    shutil.rmtree(lake, ignore_errors=True)
    days = make_raw(lake, symbols, years)
    full = measure_report("build", str(lake), "full", env=env)
    add_market_day(lake)
    return symbols * (len(days) + 1), full["seconds"]


def run_rounds(lakes: dict[str, Path], repeat: int, env: dict) -> dict[str, dict[str, list]]:
    """The day's incremental build on each lake, interleaved round by round, each rolled back
    after it: seconds of the process, seconds of the build alone, and peak RSS (bytes)."""
    runs: dict[str, dict[str, list]] = {
        name: {"seconds": [], "timed": [], "peak": []} for name in lakes
    }
    for round_ in range(repeat):
        print(f"round {round_ + 1}/{repeat}: the day on {', '.join(lakes)}", flush=True)
        for name, lake in lakes.items():
            report = measure_report("build", str(lake), "incremental", env=env)
            for figure in ("seconds", "timed", "peak"):
                runs[name][figure].append(report[figure])
            measure_report("rollback", str(lake), env=env)
    return runs


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "FAIL"


def report(small: int, large: int, runs: dict[str, dict[str, list]]) -> list[str]:
    """The lines the bench prints: the ratios with their rounds, the target, the memory."""
    a, b = runs["small"], runs["large"]
    target = large / small  # linear in the symbols
    whole = ratio(b["seconds"], a["seconds"])
    alone = ratio(b["timed"], a["timed"])
    peak_small, peak_large = max(a["peak"]), max(b["peak"])
    label = f"{large:,} / {small:,} symbols"
    return [
        f"  {f'whole-market day, {label} (whole process)':<58} {whole[0]:6.2f}x   "
        f"(target <= {target:g}: {verdict(whole[0], target)}; rounds {whole[1]})",
        f"  {'  the build alone (no start-up or imports)':<58} {alone[0]:6.2f}x   "
        f"(target <= {target:g}: {verdict(alone[0], target)}; rounds {alone[1]})",
        f"  {f'peak memory (max RSS), {label}':<58} {peak_large / peak_small:6.2f}x   "
        f"({peak_large / 2**20:,.0f} MB / {peak_small / 2**20:,.0f} MB; DuckDB memory_limit "
        f"{MEMORY_LIMIT}; no target)",
        f"  seconds (medians): {large:,} symbols {statistics.median(b['seconds']):.2f} (build "
        f"alone {statistics.median(b['timed']):.2f}), {small:,} symbols "
        f"{statistics.median(a['seconds']):.2f} (build alone "
        f"{statistics.median(a['timed']):.2f})",
    ]


def profile(lakes: dict[str, Path]) -> None:
    """Where each day's time goes: profile_build.py's timed build, once per lake."""
    import bench_build
    import profile_build

    columns = {}
    for name, lake in lakes.items():
        columns[name] = [profile_build.child(str(lake), "incremental")]
        bench_build.measure_report("rollback", str(lake))
    profile_build.table(columns)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--symbols", "--symbols-small", dest="small", type=int, default=2000,
        help="symbols of the small day (the name the other benches take, for BENCH_ARGS)",
    )  # fmt: skip
    parser.add_argument(
        "--symbols-large", dest="large", type=int, default=None,
        help="symbols of the whole-market day (default: 6 x the small day's)",
    )  # fmt: skip
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each measurement")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="then time each build step")
    args = parser.parse_args(argv)
    large = args.large or 6 * args.small
    work = Path(args.workdir or tempfile.mkdtemp(prefix="marketlake-bench-market-"))
    env = {
        "MARKETLAKE_DUCKDB_MEMORY_LIMIT": MEMORY_LIMIT,
        "MARKETLAKE_KEEP_VERSIONS": str(2 * args.repeat + 2),
    }
    lakes = {"small": work / f"market-{args.small}", "large": work / f"market-{large}"}
    try:
        for name, symbols in (("small", args.small), ("large", large)):
            print(f"data: {symbols} symbols x {args.years} years -> {lakes[name]}", flush=True)
            rows, seconds = make_lake(lakes[name], symbols, args.years, env)
            print(
                f"      {rows:,} raw rows; full build (setup) {seconds:.1f} s; the day landed",
                flush=True,
            )
        runs = run_rounds(lakes, args.repeat, env)
        print()
        print("\n".join(report(args.small, large, runs)), flush=True)
        if args.profile:
            print()
            profile(lakes)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
