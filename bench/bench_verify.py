"""What verifying costs (issue 20): each check timed beside the step that pays for it.

    .venv/bin/python bench/bench_verify.py [--symbols 2000] [--years 10] [--repeat 3]

On the synthetic lake of bench_build.py (SYMBOLS x YEARS sessions, one raw object per symbol),
with the landing records ingest and import write (state/raw_landed/), it prints:
  1. a full build's verification (every raw object against its landing record, and every
     file of the published version against the registry's digests) / the full build
  2. an incremental day's verification (the day's raw objects, splits and dividends whole,
     and the published files of the years its lookback reads) / the incremental build
  3. a reader's check of the whole current version (published_damage) / the whole
     `marketlake query "SELECT count(*) FROM daily_prices"` command, which includes it: the
     first read after a build (every file hashed) and a later one (digests reused)
  4. the publish's hashing of the files a full build wrote (partition_files) / the full build
Each measurement runs in a fresh subprocess, interleaved round by round with what it is
compared with; the ratio of the medians is printed with each round's ratio. The checks are
timed inside their process (imports and start-up excluded: a build or a reader has paid for
them already); the builds and the query are timed whole, as bench_build.py times them. The
files were just written or read, so the checks hash from the page cache, as they do on a
machine that builds every day. Read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_build import MEMORY_LIMIT, _build, _rollback, add_day, make_raw

NEXT_DAY = dt.date(2025, 1, 2)
# What a check times inside its process, and what it checked.
TIMED: dict[str, float] = {}


def land_records(lake: Path, partition: str) -> int:
    """The landing records ingest or import would have written for one ingest_date partition
    of raw bars (state.record_landed's format): rows, digests, first and last trade date. The
    bench's raw objects are written directly, and without records a build checks nothing."""
    from marketlake.lake.state import LANDED_PREFIX
    from marketlake.storage import LocalStore, sha256_digest

    store = LocalStore(lake)
    records = {}
    for info in store.list_objects(f"raw/daily_prices/ingest_date={partition}/"):
        data = store.get_bytes(info.key)
        lines = data.splitlines()[1:]
        dates = [line.split(b",", 2)[1].decode() for line in lines]
        records[info.key] = {
            "rows": len(lines),
            "sha256": sha256_digest(data).split(":", 1)[1],
            "digest": sha256_digest(data),
            "first": min(dates),
            "last": max(dates),
        }
    body = json.dumps(records, indent=1, sort_keys=True) + "\n"
    store.put_bytes(f"{LANDED_PREFIX}ingest_date={partition}.json", body.encode())
    return len(records)


# -- what each measurement runs, in its own process ------------------------------------------


def _current(lake: str):
    from marketlake.storage import LocalStore
    from marketlake.wap.build import TABLE
    from marketlake.wap.versions import load_registry

    store = LocalStore(lake)
    current = load_registry(store, TABLE).current_version()
    assert current is not None and current.files is not None, "no version with digests"
    return store, current


def _timed(started: float, **counts: float) -> None:
    TIMED.update(timed=time.perf_counter() - started, **counts)


def _verify_full(lake: str) -> None:
    """What a full build verifies: every raw object of every zone, and the current version's
    files (which it reads to compare with)."""
    from marketlake.lake import integrity

    store, current = _current(lake)
    started = time.perf_counter()
    damages, raw = integrity.verify_raw(store, zones=("splits", "dividends"))
    more, bars = integrity.verify_raw(store, None, ("daily_prices",))
    damages += more
    damages += integrity.verify_files(store, current.files, current.partitions)
    _timed(started, raw=raw + bars, files=len(current.files or {}))
    assert not damages and raw + bars > 0, (damages[:1], raw + bars)


def _verify_incremental(lake: str, since: str) -> None:
    """What an incremental build of the day `since` verifies: splits and dividends whole, the
    raw bars from its partition on, and the published files of the years its lookback reads
    (wap.write.gather_bars)."""
    from marketlake import sqlfiles
    from marketlake.lake import integrity
    from marketlake.wap.build import MIN_SESSIONS_PER_YEAR
    from marketlake.wap.pipeline import METRICS_SQL
    from marketlake.wap.write import RSI_SEEDED_WINDOWS

    store, current = _current(lake)
    reach = sqlfiles.longest_lookback(sqlfiles.load(METRICS_SQL), seeded=RSI_SEEDED_WINDOWS)
    first_year = dt.date.fromisoformat(since).year
    years_back = math.ceil(reach / MIN_SESSIONS_PER_YEAR)
    oldest = first_year - years_back
    lookback = {y: loc for y, loc in current.partitions.items() if int(y) >= oldest}
    prefixes = tuple(loc.rstrip("/") + "/" for loc in lookback.values())
    started = time.perf_counter()
    damages, raw = integrity.verify_raw(store, zones=("splits", "dividends"))
    more, bars = integrity.verify_raw(store, since, ("daily_prices",))
    damages += more
    damages += integrity.verify_files(store, current.files, lookback)
    files = sum(1 for k in current.files or {} if k.startswith(prefixes))
    _timed(started, raw=raw + bars, files=files, years=len(lookback))
    assert not damages and raw + bars > 0, (damages[:1], raw + bars)


def _reader_check(lake: str, first: str = "first") -> None:
    """What `marketlake query` and `dashboards` check before they read: the first read after
    a build hashes every file of the version; later reads reuse the digests of files whose
    metadata shows no write since (storage.digest_cache_path)."""
    from marketlake.storage import LocalStore, digest_cache_path
    from marketlake.wap.verify import published_damage

    _, current = _current(lake)
    store = LocalStore(lake, digest_cache_path(lake, os.environ))  # as the readers have it
    if first == "first":
        assert store.digest_cache is not None
        store.digest_cache.unlink(missing_ok=True)
    started = time.perf_counter()
    damaged = published_damage(store, current)
    _timed(started, files=len(current.files or {}))
    assert damaged is None, damaged


def _publish_hash(lake: str) -> None:
    """The publish's hashing of what a full build wrote: every file of the version."""
    from marketlake.lake import integrity

    store, current = _current(lake)
    started = time.perf_counter()
    files = integrity.partition_files(store, current.partitions)
    _timed(started, files=len(files), mb=sum(store.path(k).stat().st_size for k in files) / 2**20)
    assert files == current.files


def _query(lake: str) -> None:
    """The whole query command, in its own process (timed from outside, like a build)."""
    proc = subprocess.run(
        [sys.executable, "-m", "marketlake", "query", "SELECT count(*) FROM daily_prices"],
        env={**os.environ, "MARKETLAKE_HOME": lake},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"marketlake query failed:\n{proc.stderr[-2000:]}")


def measure(*args: str, env: dict | None = None) -> dict[str, float]:
    """One measurement in a child process: its seconds, and what it timed inside, if any."""
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


def query_seconds(lake: Path) -> float:
    """The query command timed whole: its own interpreter start, imports, check and read."""
    started = time.perf_counter()
    _query(str(lake))
    return time.perf_counter() - started


def _child(args: list[str]) -> None:
    steps = {
        "build": _build,
        "rollback": _rollback,
        "verify_full": _verify_full,
        "verify_incremental": _verify_incremental,
        "reader_check": _reader_check,
        "publish_hash": _publish_hash,
    }
    steps[args[0]](*args[1:])
    print(json.dumps(TIMED))


def ratio(numerators: list[float], denominators: list[float]) -> tuple[float, str]:
    """The ratio of the medians, and each round's (three decimals: these ratios are small)."""
    rounds = ", ".join(f"{n / d:.3f}" for n, d in zip(numerators, denominators))
    return statistics.median(numerators) / statistics.median(denominators), rounds


def line(label: str, figure: tuple[float, str], note: str = "") -> str:
    return f"  {label:<58} {figure[0]:6.3f}x   (rounds {figure[1]}){note}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each measurement")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="marketlake-bench-verify-"))
    env = {
        "MARKETLAKE_DUCKDB_MEMORY_LIMIT": MEMORY_LIMIT,
        "MARKETLAKE_KEEP_VERSIONS": str(2 * args.repeat + 2),
    }
    lake = work / "lake"
    try:
        print(f"data: {args.symbols} symbols x {args.years} years -> {work}", flush=True)
        days = make_raw(lake, args.symbols, args.years)
        landed = land_records(lake, "2025-01-01")
        raw_bytes = sum(p.stat().st_size for p in (lake / "raw").rglob("*.csv"))
        print(
            f"      {args.symbols * len(days):,} raw rows in {landed:,} objects "
            f"({raw_bytes / 2**20:.0f} MB), each with its landing record",
            flush=True,
        )

        fulls, verify_fulls, hashes = [], [], []
        for round_ in range(args.repeat):
            print(
                f"round {round_ + 1}/{args.repeat}: full build, its verification, "
                "the publish's hashing",
                flush=True,
            )
            fulls.append(measure("build", str(lake), "full", env=env)["seconds"])
            full_check = measure("verify_full", str(lake))
            verify_fulls.append(full_check["timed"])
            hashed = measure("publish_hash", str(lake))
            hashes.append(hashed["timed"])

        queries, reader_checks, reused_checks = [], [], []
        for round_ in range(args.repeat):
            print(f"round {round_ + 1}/{args.repeat}: query, the reader's check", flush=True)
            queries.append(query_seconds(lake))
            reader = measure("reader_check", str(lake), "first")
            reader_checks.append(reader["timed"])
            reused_checks.append(measure("reader_check", str(lake), "later")["timed"])

        add_day(lake, args.symbols, NEXT_DAY)
        land_records(lake, NEXT_DAY.isoformat())
        incs, verify_incs = [], []
        for round_ in range(args.repeat):
            print(f"round {round_ + 1}/{args.repeat}: incremental day, its check", flush=True)
            inc_check = measure("verify_incremental", str(lake), NEXT_DAY.isoformat())
            verify_incs.append(inc_check["timed"])
            incs.append(measure("build", str(lake), "incremental", env=env)["seconds"])
            measure("rollback", str(lake), env=env)

        print()
        print(
            line(
                "full build's verification / full build",
                ratio(verify_fulls, fulls),
                f": {int(full_check['raw']):,} raw objects, {int(full_check['files'])} files",
            )
        )
        print(
            line(
                "incremental day's verification / incremental build",
                ratio(verify_incs, incs),
                f": {int(inc_check['raw']):,} raw objects, {int(inc_check['files'])} files "
                f"of {int(inc_check['years'])} lookback year(s)",
            )
        )
        print(
            line(
                "first reader's check after a build / `marketlake query`",
                ratio(reader_checks, queries),
                f": {int(reader['files'])} files hashed",
            )
        )
        print(
            line(
                "later reader's check (digests reused) / `marketlake query`",
                ratio(reused_checks, queries),
                ": files unchanged since they were hashed",
            )
        )
        print(
            line(
                "publish's hashing (partition_files) / full build",
                ratio(hashes, fulls),
                f": {int(hashed['files'])} files, {hashed['mb']:.0f} MB",
            )
        )
        print(
            f"  seconds (medians): full build {statistics.median(fulls):.2f}, its verification "
            f"{statistics.median(verify_fulls):.3f}, publish hashing "
            f"{statistics.median(hashes):.3f}; incremental {statistics.median(incs):.2f}, its "
            f"verification {statistics.median(verify_incs):.3f}; query "
            f"{statistics.median(queries):.2f}, reader's check "
            f"{statistics.median(reader_checks):.3f} (reused: "
            f"{statistics.median(reused_checks):.3f})"
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
    else:
        main()
