"""Where a build's time goes, step by step (issue 13): an incremental day on a long and a short
history, or a full build, with each pipeline step and each engine call timed.

    .venv/bin/python bench/profile_build.py [--symbols 400] [--years 10] [--repeat 3] [--full]

It builds the lakes of bench_build.py (SYMBOLS x YEARS and SYMBOLS x 1 year of synthetic raw
CSV), runs a full build on each, adds a day, and then times --repeat incremental builds of
each (rolled back in between), printing the median seconds of every step side by side. The
steps are the functions run_build calls (plan, read_new_bars, gather_bars, ...), timed by
wrapping them in marketlake.wap.pipeline and wap.write; the engine calls inside them (each
materialize, ctas, fetch_df ... with the relation it makes) are timed by wrapping the engine.
Process start-up (imports) is timed too: the bench runs each build in a fresh process.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = [
    "plan",
    "read_new_bars",
    "gather_bars",
    "exclude_rejected_bars",
    "write_version",
    "audit",
    "publish",
    "follow",
    "prune",
    "record",
]
ENGINE_CALLS = [
    "materialize",
    "derive",
    "alias",
    "ctas",
    "fetch_df",
    "attach",
    "publish",
    "register_raw",
    "register_frame",
    "register_audit",
    "create_or_replace_view",
    "raw_rejects",
]


def _label(method: str, args: tuple) -> str:
    first = args[0] if args else ""
    if method in ("fetch_df", "ctas"):
        text = " ".join(str(first).split())
        return f"{method}: {text[:60]}"
    if method in ("register_audit", "create_or_replace_view"):
        return method
    return f"{method}: {first}"


def profiled_build(lake: str, mode: str) -> None:
    """One build in this process; prints `name<TAB>seconds` lines for every timed step."""
    started = time.perf_counter()
    from marketlake.config import Settings
    from marketlake.engines.duckdb import DuckDBEngine
    from marketlake.storage import LocalStore
    from marketlake.wap import pipeline
    from marketlake.wap import write as write_step

    times: dict[str, float] = collections.defaultdict(float)
    times["imports"] = time.perf_counter() - started

    def timed(name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[name] += time.perf_counter() - t0

        return wrapper

    # run_build calls the steps through pipeline's names; write() calls its own four (the read,
    # the lookback, the row checks, the metrics and write) through wap/write.py's.
    for step in STEPS:
        module = pipeline if hasattr(pipeline, step) else write_step
        setattr(module, step, timed(f"step {step}", getattr(module, step)))

    class TimedEngine(DuckDBEngine):
        pass

    for method in ENGINE_CALLS:
        original = getattr(DuckDBEngine, method)

        def make(method=method, original=original):
            def wrapper(self, *args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return original(self, *args, **kwargs)
                finally:
                    times[f"  engine {_label(method, args)}"] += time.perf_counter() - t0

            return wrapper

        setattr(TimedEngine, method, make())

    settings = Settings.from_env({**os.environ, "MARKETLAKE_HOME": lake})
    t0 = time.perf_counter()
    with TimedEngine(
        Path(lake), memory_limit=settings.duckdb_memory_limit, threads=settings.duckdb_threads
    ) as engine:
        times["open engine"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = pipeline.run_build(settings, LocalStore(lake), engine, full=mode == "full")
        times["run_build (all)"] = time.perf_counter() - t0
    if result.mode != mode:
        raise SystemExit(f"expected a {mode} build, got {result.mode}: {result.message}")
    times["process (all)"] = time.perf_counter() - started
    for name, seconds in times.items():
        print(f"{name}\t{seconds:.4f}")


def child(*args: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        env={
            **os.environ,
            "MARKETLAKE_DUCKDB_MEMORY_LIMIT": "1GB",
            "MARKETLAKE_KEEP_VERSIONS": "50",
        },
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{args} failed:\n{proc.stderr[-3000:]}")
    out = {}
    for line in proc.stdout.splitlines():
        if "\t" in line:
            name, seconds = line.rsplit("\t", 1)
            out[name] = float(seconds)
    return out


def rollback(lake: str) -> None:
    subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("bench_build.py")),
            "--child",
            "rollback",
            lake,
        ],
        check=True,
        capture_output=True,
    )


def table(columns: dict[str, list[dict[str, float]]]) -> None:
    names: list[str] = []
    for runs in columns.values():
        for run in runs:
            names += [n for n in run if n not in names]
    print(f"{'seconds (median)':<78}" + "".join(f"{c:>10}" for c in columns))
    for name in names:
        cells = []
        for runs in columns.values():
            found = [r[name] for r in runs if name in r]
            cells.append(f"{statistics.median(found):10.3f}" if found else f"{'':>10}")
        print(f"{name[:77]:<78}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="profile the full build instead")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_build

    work = Path(args.workdir or tempfile.mkdtemp(prefix="marketlake-profile-"))
    try:
        long_lake, short_lake = work / "long", work / "short"
        if not long_lake.exists():
            bench_build.make_raw(long_lake, args.symbols, args.years)
            bench_build.make_raw(short_lake, args.symbols, 1)
        if args.full:
            table(
                {f"full {args.years}y": [child(str(long_lake), "full") for _ in range(args.repeat)]}
            )
            return
        child(str(long_lake), "full")
        child(str(short_lake), "full")
        day = dt.date(2025, 1, 2)
        bench_build.add_day(long_lake, args.symbols, day)
        bench_build.add_day(short_lake, args.symbols, day)
        runs: dict[str, list[dict[str, float]]] = {f"{args.years}y": [], "1y": []}
        for _ in range(args.repeat):
            runs[f"{args.years}y"].append(child(str(long_lake), "incremental"))
            rollback(str(long_lake))
            runs["1y"].append(child(str(short_lake), "incremental"))
            rollback(str(short_lake))
        table(runs)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        profiled_build(*sys.argv[2:])
    else:
        main()
