"""The ingest Lambda's peak memory on a whole-market weekday (issue 21, item 8 "Scale").

    .venv/bin/python bench/bench_lambda_market_day.py [--tickers 12000] [--repeat 3]

The deployed Lambda has 512 MB (terraform/variables.tf lambda_memory_mb). This runs its code,
marketlake.aws.lambda_ingest.run, as the function would on a weekday with
MARKETLAKE_TICKERS=ALL: in a fresh process, against S3 on a moto server and a Polygon
stand-in (tests/integration/polygon_fake_server.py) with TICKERS symbols, both in this
parent process so their memory is not counted. The lake already holds the day before (a
first run, not measured), so the state carries every symbol, as it does in production.

It prints the measured run's peak memory (max RSS), beside a process that only imports
what the Lambda imports (what any run costs before its first request), and the share of
512 MB. Each run's process is new, so its peak is its own. Read the figures as what they
are: one machine's RSS of the same code; the Lambda runtime adds its own few MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

LAMBDA_MB = 512
BUCKET = "marketlake-bench-lambda"
KEY = "BENCHKEY0001"
DAY_BEFORE = dt.date(2024, 6, 13)
WEEKDAY = dt.date(2024, 6, 14)

# The child: the Lambda's run() on one day, then its peak memory as JSON on the last line.
CHILD = """
import json, resource, sys, time
import boto3
from marketlake.aws import lambda_ingest

class Context:
    def get_remaining_time_in_millis(self):
        return 900_000

mode = sys.argv[1]
started = time.perf_counter()
summary = {}
if mode == "run":
    s3 = boto3.client("s3")
    summary = lambda_ingest.run(
        {"as_of": sys.argv[2]}, Context(), s3=s3, secrets=object(), glue=object()
    )
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"peak_mb": peak / 1024, "seconds": time.perf_counter() - started,
                  "new_bars": summary.get("new_bars"), "requests": summary.get("requests")}))
"""


def child(mode: str, day: dt.date, environ: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, day.isoformat()],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the Lambda run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=12_000)
    parser.add_argument("--repeat", type=int, default=3)
    args, _ = parser.parse_known_args()  # make bench passes the build benches' flags too

    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    from polygon_fake_server import FakePolygon

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MARKETLAKE_", "POLYGON_"))},
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "LAKE_BUCKET": BUCKET,
        "MARKETLAKE_PROVIDER": "polygon",
        "MARKETLAKE_TICKERS": "ALL",
        "MARKETLAKE_HISTORY_DAYS": "1",
        "POLYGON_API_KEY": KEY,
        "POLYGON_CALLS_PER_MINUTE": "0",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    try:
        with FakePolygon(KEY, tickers=args.tickers, start=dt.date(2024, 1, 2)) as polygon:
            environ["POLYGON_BASE_URL"] = polygon.url
            imports = [child("import", WEEKDAY, environ) for _ in range(args.repeat)]
            days = []
            for _ in range(args.repeat):
                s3.create_bucket(Bucket=BUCKET)
                child("run", DAY_BEFORE, environ)  # the lake holds the day before
                before = polygon.count("grouped")
                days.append(child("run", WEEKDAY, environ))
                if polygon.count("grouped") != before + 1:
                    raise SystemExit("the weekday did not make exactly one grouped request")
                _empty(s3)
    finally:
        server.stop()
    peak = statistics.median(d["peak_mb"] for d in days)
    base = statistics.median(d["peak_mb"] for d in imports)
    print(f"A whole-market weekday in the ingest Lambda's code: {args.tickers:,} tickers")
    print(f"  bars landed: {days[0]['new_bars']:,} with {days[0]['requests']} requests")
    rounds = ", ".join(f"{d['peak_mb']:.0f}" for d in days)
    print(f"  peak memory (max RSS), median of {len(days)}: {peak:.0f} MB ({rounds})")
    print(f"  of which importing what the Lambda imports: {base:.0f} MB")
    share = peak / LAMBDA_MB
    verdict = "PASS" if peak < LAMBDA_MB else "FAIL"
    print(f"  against the function's {LAMBDA_MB} MB: {share:.2f} ({verdict}: target < 1)")


def _empty(s3) -> None:
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET)
    for page in pages:
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=BUCKET, Key=item["Key"], VersionId=item["VersionId"])
    s3.delete_bucket(Bucket=BUCKET)


if __name__ == "__main__":
    main()
