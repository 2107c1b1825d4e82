"""The build's partitioned Parquet write with DuckDB's default flush threshold and with the
engine's (one row group per partition): ratios measured side by side in one run.

    .venv/bin/python bench/bench_parquet_write.py [--rows 5000000] [--repeat 3]

A table as wide as daily_prices (symbol, date, 5 bar columns and 20 doubles; 10 years of
2,516 sessions per symbol, symbol by symbol as the metrics emit them) is written partitioned
by year with the engine's COPY options, under the 1 GB memory limit the build benchmark
uses, once per setting per round, interleaved.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
from bench_build import ratio

from marketlake.engines.duckdb import PARQUET_ROW_GROUP_ROWS

DUCKDB_DEFAULT = 524_288
SESSIONS = 2_516  # per symbol: 10 years of trading days, spread over 10 calendar years


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="marketlake-write-"))
    # The source table lives in a database file, as the build's bars do not fill its memory.
    con = duckdb.connect(str(scratch / "source.duckdb"), config={"memory_limit": "1GB"})
    doubles = ", ".join(f"random() * {k + 1} AS m{k}" for k in range(20))
    con.execute(
        # Symbol by symbol, each in date order: the order the metrics' window emits rows in,
        # so every year partition fills at once.
        f"CREATE TABLE t AS SELECT 'S' || (i // {SESSIONS}) AS symbol, "
        f"DATE '2015-01-01' + CAST((i % {SESSIONS}) * 1.45 AS INTEGER) AS trade_date, "
        f"random() AS open, random() AS high, random() AS low, random() AS close, "
        f"CAST(i AS BIGINT) AS volume, {doubles} FROM range({args.rows}) AS r(i)"
    )
    con.execute("CHECKPOINT")
    options = (
        f"FORMAT parquet, COMPRESSION snappy, DICTIONARY_SIZE_LIMIT 1000, "
        f"ROW_GROUP_SIZE {PARQUET_ROW_GROUP_ROWS}, PARTITION_BY (year)"
    )
    times: dict[int, list[float]] = {DUCKDB_DEFAULT: [], PARQUET_ROW_GROUP_ROWS: []}
    try:
        for round_ in range(args.repeat):
            for threshold, seconds in times.items():
                con.execute(f"SET partitioned_write_flush_threshold = {threshold}")
                out = Path(scratch) / "out"
                started = time.perf_counter()
                con.execute(
                    f"COPY (SELECT *, year(trade_date) AS year FROM t) TO '{out}' ({options})"
                )
                seconds.append(time.perf_counter() - started)
                shutil.rmtree(out)
            print(f"round {round_ + 1}/{args.repeat} done", flush=True)
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    engine, default = times[PARQUET_ROW_GROUP_ROWS], times[DUCKDB_DEFAULT]
    median, rounds = ratio(engine, default)
    print(
        f"  partitioned write, flush every {PARQUET_ROW_GROUP_ROWS:,} rows / DuckDB's "
        f"{DUCKDB_DEFAULT:,}: {median:.2f}x "
        f"(rounds {rounds}; medians {statistics.median(engine):.2f} s / "
        f"{statistics.median(default):.2f} s)"
    )


if __name__ == "__main__":
    main()
