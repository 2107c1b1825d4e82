"""A daily build's read of the raw zone as its history of daily landings grows: the view over
every day's objects (`*/*.csv`, pruned by ingest_date) against the build's view of the days
since its first unread one (DuckDBEngine.register_raw(..., since=)). Ratios side by side.

    .venv/bin/python bench/bench_raw_listing.py [--days 100] [--symbols 2000] [--repeat 3]

The raw zone holds DAYS daily landings of one small object per symbol, as the daily ingest
writes them; each measurement reads the newest day's objects as the build does (count the
rows of ingest_date >= that day), in a fresh engine, interleaved.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_build import add_day, ratio

from marketlake.engines.duckdb import DuckDBEngine
from marketlake.lake.raw import RAW_PREFIX


def land(lake: Path, days: int, symbols: int) -> str:
    """DAYS daily landings of every symbol's bar, as the daily ingest writes them."""
    first = dt.date(2024, 1, 2)
    for k in range(days):
        add_day(lake, symbols, first + dt.timedelta(days=k))
    return (first + dt.timedelta(days=days - 1)).isoformat()


def read_newest(lake: Path, catalog: Path, newest: str, since: str | None) -> float:
    """Seconds to register the raw view and read the newest day, in a fresh engine on a
    catalog that already holds the raw view (as after the first build)."""
    with DuckDBEngine(lake, catalog) as engine:
        started = time.perf_counter()
        engine.register_raw("raw_daily_prices", RAW_PREFIX.rstrip("/"), since=since)
        rows = engine.fetch_df(
            f"SELECT count(*) AS n FROM raw_daily_prices WHERE ingest_date >= '{newest}'"
        )["n"].iloc[0]
        seconds = time.perf_counter() - started
    if rows == 0:
        raise SystemExit("the newest day's objects were not read")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lake = Path(tempfile.mkdtemp(prefix="marketlake-raw-"))
    try:
        print(f"raw zone: {args.days} days x {args.symbols} objects -> {lake}", flush=True)
        newest = land(lake, args.days, args.symbols)
        catalog = lake / "catalog.duckdb"
        every, since = [], []
        for _ in range(args.repeat):
            every.append(read_newest(lake, catalog, newest, None))
            since.append(read_newest(lake, catalog, newest, newest))
        median, rounds = ratio(since, every)
        print(
            f"  a daily build's raw read, view since its day / view over every day: "
            f"{median:.2f}x (rounds {rounds}; "
            f"medians {statistics.median(since):.2f} s / {statistics.median(every):.2f} s)"
        )
    finally:
        shutil.rmtree(lake, ignore_errors=True)


if __name__ == "__main__":
    main()
