"""The ingest Lambda (lambdas/ingest/handler.py) under moto (S3, Secrets Manager, Glue), a
fake Lambda context, and the loopback Alpha Vantage and Polygon fakes. No internet, no real
AWS.

The handler runs on the real clock; ALPHAVANTAGE_CALLS_PER_MINUTE=6000 keeps its waits at
10 ms. Events pin the session with "as_of" (real events do not carry it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import io
import json
import os
import re
import sys
from pathlib import Path

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest
from av_fake_server import (
    ERROR_INVALID_SYMBOL,
    INFO_DAILY_LIMIT,
    KEY_ECHO,
    BySymbol,
    FakeAlphaVantage,
    Reply,
    bars_on,
    daily_json,
    daily_reply,
)
from moto import mock_aws
from polygon_fake_server import FakePolygon

from marketlake.aws import lambda_ingest as aws
from marketlake.config import Settings
from marketlake.errors import ConfigError, MarketlakeError
from marketlake.ingest.ratelimit import SimulatedClock
from marketlake.ingest.runner import run_ingest
from marketlake.lake import actions
from marketlake.lake.state import STATE_KEY, IngestState
from marketlake.sessions import parse_as_of, sessions_between
from marketlake.storage import LocalStore, S3Store
from marketlake.wap.restate import applied_actions
from marketlake.wap.versions import Registry, Version, load_registry, update_registry

LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambdas" / "ingest"
KEY = "KEYzq81x7TEST"
BUCKET = "marketlake-lake-test"
SECRET_ID = "marketlake/alphavantage"
WORKFLOW = "marketlake-build"
AS_OF = "2024-07-03"
S1, S2 = dt.date(2024, 7, 3), dt.date(2024, 7, 5)
SESSIONS = sessions_between(dt.date(2024, 1, 1), S2)
COMPACT1 = bars_on([d for d in SESSIONS if d <= S1][-100:])


@pytest.fixture(scope="module")
def lambda_module():
    """lambdas/ingest/handler.py, loaded under its own name (no clash with other handlers)."""
    sys.path.insert(0, str(LAMBDA_DIR))
    try:
        spec = importlib.util.spec_from_file_location(
            "marketlake_ingest_lambda_handler", LAMBDA_DIR / "handler.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(LAMBDA_DIR))


@dataclasses.dataclass
class FakeContext:
    """What the Lambda runtime passes; `remaining` answers get_remaining_time_in_millis."""

    remaining: object = lambda: 900_000
    function_name: str = "marketlake-ingest"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:marketlake-ingest"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining())


@dataclasses.dataclass
class Cloud:
    module: object
    server: FakeAlphaVantage
    s3: object
    glue: object
    secrets: object
    secret_reads: list
    logs: io.StringIO

    def invoke(self, event: dict | None = None, context: FakeContext | None = None) -> dict:
        return self.module.handler(event or {"as_of": AS_OF}, context or FakeContext())

    def object_keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def state(self) -> IngestState:
        return IngestState.from_json(self.get(STATE_KEY))

    def asked(self) -> list[str]:
        return [q["symbol"] for q in self.server.requests]

    def workflow_runs(self) -> list[str]:
        return [r["WorkflowRunId"] for r in self.glue.get_workflow_runs(Name=WORKFLOW)["Runs"]]

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines() if line.strip()]


@pytest.fixture
def cloud(lambda_module, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("MARKETLAKE_", "ALPHAVANTAGE_", "AWS_", "LAKE_", "GLUE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(aws, "_SECRET_CACHE", {})  # a cold start for every test
    logs = io.StringIO()
    handler = lambda_module.logger.registered_handler
    monkeypatch.setattr(handler, "stream", logs)
    with mock_aws(), FakeAlphaVantage() as server:
        boto3.setup_default_session()
        reads: list = []
        boto3.DEFAULT_SESSION.events.register(
            "before-call.secrets-manager.GetSecretValue", lambda **kw: reads.append(1)
        )
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(Name=SECRET_ID, SecretString=KEY)
        glue = boto3.client("glue")
        glue.create_workflow(Name=WORKFLOW)
        env = {
            "LAKE_BUCKET": BUCKET,
            "ALPHAVANTAGE_SECRET_ID": SECRET_ID,
            "ALPHAVANTAGE_BASE_URL": server.url,
            "ALPHAVANTAGE_CALLS_PER_MINUTE": "6000",
            "ALPHAVANTAGE_BACKOFF_SECONDS": "0.01",
            "ALPHAVANTAGE_MAX_RETRIES": "1",
            "MARKETLAKE_TICKERS": "AAA,BBB,CCC",
            # The bars' requests are counted here; splits and dividends are tested apart.
            "MARKETLAKE_ACTIONS_EVERY_DAYS": "0",
            "GLUE_WORKFLOW_NAME": WORKFLOW,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        server.default = BySymbol({}, fallback=daily_reply(COMPACT1))
        yield Cloud(lambda_module, server, s3, glue, secrets, reads, logs)
        boto3.DEFAULT_SESSION = None


def test_raw_objects_land_in_s3_at_the_same_keys_as_the_local_lake(cloud, tmp_path):
    with_bad_bar = json.loads(daily_json("CCC", COMPACT1))
    with_bad_bar["Time Series (Daily)"]["2024-07-01"]["5. volume"] = "-1"
    cloud.server.default.queues["CCC"] = [Reply(with_bad_bar)]

    summary = cloud.invoke()
    assert summary["fetched"] == ["AAA", "BBB", "CCC"]
    assert summary["new_bars"] == 299 and summary["quarantined"] == 1
    assert summary["session"] == "2024-07-03"
    s3_keys = cloud.object_keys()

    settings = Settings.from_env(
        {
            "ALPHAVANTAGE_API_KEY": KEY,
            "ALPHAVANTAGE_BASE_URL": cloud.server.url,
            "MARKETLAKE_TICKERS": "AAA,BBB,CCC",
        },
        home=tmp_path / "lake",
    )
    clock = SimulatedClock()
    store = LocalStore(settings.home)
    run_ingest(settings, store, None, parse_as_of(AS_OF), clock=clock.now, sleep=clock.sleep)
    local_keys = sorted(info.key for info in store.list_objects(""))

    def same_shape(keys):  # quarantine and run-log names carry the run's own time stamp
        return sorted(re.sub(r"(\.|/)[0-9TZ:.\-a-f]{15,}\.", r"\1<stamp>.", k) for k in keys)

    assert "raw/daily_prices/ingest_date=2024-07-03/AAA.csv" in s3_keys
    assert [k for k in s3_keys if k.startswith("raw/")] == [
        f"raw/daily_prices/ingest_date=2024-07-03/{s}.csv" for s in ("AAA", "BBB", "CCC")
    ]
    assert same_shape(s3_keys) == same_shape(local_keys)

    def without_time(data: bytes) -> list[str]:
        return [line.rsplit(",", 1)[0] for line in data.decode().splitlines()]

    for key in (k for k in s3_keys if k.startswith("raw/")):
        assert without_time(cloud.get(key)) == without_time(store.get_bytes(key))
    assert cloud.state().watermark("CCC") == S1


def test_a_quarantined_bar_is_logged_in_the_audit_zone_for_the_dashboard(cloud):
    with_bad_bar = json.loads(daily_json("CCC", COMPACT1))
    with_bad_bar["Time Series (Daily)"]["2024-07-01"]["5. volume"] = "-1"
    cloud.server.default.queues["CCC"] = [Reply(with_bad_bar)]

    assert cloud.invoke()["quarantined"] == 1
    (key,) = cloud.object_keys("audit/ingest_quarantine/")
    (row,) = pq.read_table(io.BytesIO(cloud.get(key))).to_pylist()
    assert (row["stage"], row["source"], row["symbol"]) == ("ingest", "alphavantage", "CCC")
    assert (row["trade_date"], row["volume"]) == (dt.date(2024, 7, 1), "-1")
    assert row["reason"] == "volume is negative"
    assert row["quarantine_key"] in cloud.object_keys("quarantine/daily_prices/")


@pytest.mark.parametrize(
    "secret",
    [KEY, json.dumps({"ALPHAVANTAGE_API_KEY": KEY}), f"  {KEY}\n"],
    ids=["plain", "json", "padded"],
)
def test_the_key_comes_from_secrets_manager_and_is_cached_across_invocations(cloud, secret):
    cloud.secrets.put_secret_value(SecretId=SECRET_ID, SecretString=secret)
    cloud.invoke()
    cloud.invoke({"as_of": "2024-07-05"})  # a second, warm invocation that calls the API
    assert len(cloud.server.requests) == 6
    assert {q["apikey"] for q in cloud.server.requests} == {KEY}
    assert len(cloud.secret_reads) == 1


def test_a_secret_without_a_key_is_a_clear_error(cloud):
    cloud.secrets.put_secret_value(SecretId=SECRET_ID, SecretString='{"other": "x"}')
    with pytest.raises(ConfigError, match="holds no Alpha Vantage key"):
        cloud.invoke()
    assert cloud.server.requests == []


def test_the_event_tickers_override_the_configured_list(cloud):
    summary = cloud.invoke({"tickers": ["ZZZ", "YYY"], "as_of": AS_OF})
    assert cloud.asked() == ["ZZZ", "YYY"]
    assert summary["fetched"] == ["ZZZ", "YYY"]
    assert [k for k in cloud.object_keys("raw/")] == [
        "raw/daily_prices/ingest_date=2024-07-03/YYY.csv",
        "raw/daily_prices/ingest_date=2024-07-03/ZZZ.csv",
    ]


def _build_read_everything(cloud) -> None:
    """What the Glue job leaves behind after it built the raw zone: a published version
    that has read up to the newest ingest_date."""
    store = S3Store(BUCKET, client=cloud.s3)
    registry = Registry("daily_prices", current="R1")
    registry.versions.append(
        Version(
            "R1", "2024-07-03T23:00:00+00:00", "full", "sql", {}, cloud.state().newest_ingest_date
        )
    )
    update_registry(store, registry.table, lambda _stored: registry)


def test_the_glue_workflow_starts_only_when_new_bars_landed(cloud):
    first = cloud.invoke()
    assert first["workflow_run_id"] and first["new_bars"] == 300
    assert cloud.workflow_runs() == [first["workflow_run_id"]]
    _build_read_everything(cloud)

    # Same day again: every symbol is at the last closed session; nothing is asked.
    again = cloud.invoke()
    assert len(cloud.server.requests) == 3
    assert again["workflow_run_id"] is None and again["new_bars"] == 0
    assert cloud.workflow_runs() == [first["workflow_run_id"]]

    # Next session, but the API still sends the same bars: asked, nothing new, no build.
    later = cloud.invoke({"as_of": "2024-07-05"})
    assert len(cloud.server.requests) == 6
    assert later["workflow_run_id"] is None and later["fetched"] == []
    assert cloud.workflow_runs() == [first["workflow_run_id"]]


def test_bars_landed_by_a_run_that_died_before_starting_the_build_get_built(cloud):
    first = cloud.invoke()
    assert first["new_bars"] == 300
    # No build has read them (the first invocation's workflow run never published): the
    # next invocation lands nothing new, yet starts the workflow again.
    again = cloud.invoke()
    assert again["new_bars"] == 0
    assert again["workflow_run_id"] is not None
    assert len(cloud.workflow_runs()) == 2
    _build_read_everything(cloud)
    assert cloud.invoke()["workflow_run_id"] is None


def test_a_split_that_lands_without_new_bars_starts_the_build(cloud):
    """A split can land on a day that brings no bar (a weekday exchange holiday): the build
    must still run, or the adjusted prices stay stale until the next bar."""
    assert cloud.invoke()["new_bars"] == 300
    _build_read_everything(cloud)
    assert cloud.invoke()["workflow_run_id"] is None  # built, and nothing new

    store = S3Store(BUCKET, client=cloud.s3)
    split = pd.DataFrame({"date": [dt.date(2024, 6, 10)], "value": [4.0]})
    landed = actions.land_actions(
        store, actions.SPLITS, "AAA", split, "import", S1, "2024-07-03 23:30:00.000"
    )
    assert landed == 1
    started = cloud.invoke()
    assert started["new_bars"] == 0 and started["workflow_run_id"] is not None
    assert len(cloud.workflow_runs()) == 2

    # Once a version records the split as applied, nothing starts again.
    applied = applied_actions(actions.build_frames(store))
    assert set(applied) == {"AAA"}
    registry = load_registry(store, "daily_prices")
    registry.versions[-1].actions = applied
    update_registry(store, registry.table, lambda _stored: registry)
    assert cloud.invoke()["workflow_run_id"] is None

    # A damaged actions object: the build is started, and stops on it with its name.
    cloud.s3.put_object(
        Bucket=BUCKET, Key=actions.SPLITS.key(S2, "BBB"), Body=b"\xff\xfe not a csv"
    )
    assert cloud.invoke()["workflow_run_id"] is not None
    with pytest.raises(MarketlakeError, match=r"raw/splits/ingest_date=2024-07-05/BBB\.csv"):
        actions.build_frames(store)


def test_running_out_of_time_defers_the_rest_saves_state_and_returns_cleanly(cloud):
    # Plenty of time before the first request, then only 40 s: less than one request (30 s)
    # plus the safety margin (15 s).
    context = FakeContext(remaining=lambda: 900_000 if not cloud.server.requests else 40_000)
    summary = cloud.invoke(context=context)

    assert cloud.asked() == ["AAA"]
    assert summary["fetched"] == ["AAA"] and summary["deferred"] == ["BBB", "CCC"]
    assert summary["skipped"] == [] and summary["quarantined"] == 0
    assert summary["workflow_run_id"] in cloud.workflow_runs()  # AAA's bars are new
    assert cloud.object_keys("raw/") == ["raw/daily_prices/ingest_date=2024-07-03/AAA.csv"]
    state = cloud.state()
    assert state.deferred == ["BBB", "CCC"]
    assert state.watermark("AAA") == S1 and state.quota_used == 1
    json.dumps(summary)  # the return value is what the Lambda runtime serialises

    # The next invocation, with time enough, starts with the deferred symbols.
    summary = cloud.invoke()
    assert cloud.asked() == ["AAA", "BBB", "CCC"]
    assert summary["fetched"] == ["BBB", "CCC"] and summary["deferred"] == []
    assert cloud.state().deferred == []


def test_no_time_at_all_defers_everything_without_a_request(cloud):
    summary = cloud.invoke(context=FakeContext(remaining=lambda: 10_000))
    assert cloud.server.requests == []
    assert summary["deferred"] == ["AAA", "BBB", "CCC"] and summary["workflow_run_id"] is None
    assert cloud.state().deferred == ["AAA", "BBB", "CCC"]


def test_logs_are_structured_json_and_never_hold_the_key(cloud):
    echo_symbol = {"Error Message": f"{ERROR_INVALID_SYMBOL['Error Message']} apikey={KEY_ECHO}"}
    cloud.server.default.queues.update(
        {"BBB": [Reply(echo_symbol)], "CCC": [Reply(INFO_DAILY_LIMIT)]}
    )
    summary = cloud.invoke({"tickers": ["AAA", "BBB", "CCC", "DDD"], "as_of": AS_OF})
    assert summary["fetched"] == ["AAA"] and summary["skipped"] == ["BBB"]
    assert summary["deferred"] == ["CCC", "DDD"]
    assert {q["apikey"] for q in cloud.server.requests} == {KEY}  # it did go out

    lines = cloud.log_lines()  # raises if a line is not JSON
    assert lines
    finished = [line for line in lines if line.get("message") == "ingest finished"]
    assert len(finished) == 1
    record = finished[0]
    assert record["level"] == "INFO" and record["service"] == "marketlake-ingest"
    assert record["function_name"] == "marketlake-ingest"
    assert record["function_request_id"] == FakeContext.aws_request_id
    for field in ("fetched", "skipped", "deferred", "quarantined", "new_bars"):
        assert record[field] == summary[field]

    everything = [cloud.logs.getvalue(), json.dumps(summary)]
    everything += [cloud.get(k).decode("utf-8", "replace") for k in cloud.object_keys()]
    assert [text for text in everything if KEY.lower() in text.lower()] == []


# -- Polygon: the whole market, and a backfill across runs ----------------------------------

POLYGON_SECRET = "marketlake/polygon-api-key"


@pytest.fixture
def polygon_cloud(lambda_module, monkeypatch):
    """moto and the loopback Polygon, with the Lambda configured as terraform/ingest.tf does
    for data_provider = "polygon" and tickers = ["ALL"] (its key in its own secret)."""
    for name in list(os.environ):
        if name.startswith(("MARKETLAKE_", "ALPHAVANTAGE_", "POLYGON_", "AWS_", "LAKE_", "GLUE_")):
            monkeypatch.delenv(name)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(aws, "_SECRET_CACHE", {})
    monkeypatch.setattr(lambda_module.logger.registered_handler, "stream", io.StringIO())
    with mock_aws(), FakePolygon(KEY, tickers=40) as server:
        boto3.setup_default_session()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("secretsmanager").create_secret(Name=POLYGON_SECRET, SecretString=KEY)
        glue = boto3.client("glue")
        glue.create_workflow(Name=WORKFLOW)
        env = {
            "LAKE_BUCKET": BUCKET,
            "GLUE_WORKFLOW_NAME": WORKFLOW,
            "MARKETLAKE_PROVIDER": "polygon",
            "MARKETLAKE_TICKERS": "ALL",
            "MARKETLAKE_HISTORY_DAYS": "14",  # 10 sessions: 2024-06-20 .. 2024-07-03
            "POLYGON_SECRET_ID": POLYGON_SECRET,
            "POLYGON_BASE_URL": server.url,
            "POLYGON_CALLS_PER_MINUTE": "0",
            "POLYGON_MAX_RETRIES": "0",  # one request's worst case: one 30 s timeout
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield Cloud(lambda_module, server, s3, glue, None, [], io.StringIO())
        boto3.DEFAULT_SESSION = None


def _grouped_days(server: FakePolygon) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in server.requests if r.endpoint == "grouped"]


def test_a_backfill_stops_before_the_deadline_and_the_next_run_goes_on_oldest_first(
    polygon_cloud,
):
    """A Lambda run stops before its deadline and leaves the rest of a backfill to the next
    run: the oldest sessions land first, the summary says which wait, and the next
    invocation asks only those, so no session is asked twice and none is missing."""
    cloud, server = polygon_cloud, polygon_cloud.server
    window = [d.isoformat() for d in sessions_between(dt.date(2024, 6, 19), S1)]
    assert len(window) == 10
    # Time for three sessions; then 40 s, less than one request (30 s) + the margin (15 s).
    context = FakeContext(remaining=lambda: 900_000 if server.count("grouped") < 3 else 40_000)
    first = cloud.invoke(context=context)

    assert _grouped_days(server) == window[:3]
    assert first["sessions_waiting"] == window[3:]
    assert first["provider"] == "polygon" and first["new_bars"] == 3 * 40
    assert first["workflow_run_id"] in cloud.workflow_runs()  # what landed gets built
    raw_keys = cloud.object_keys("raw/daily_prices/")
    assert raw_keys == [f"raw/daily_prices/ingest_date={AS_OF}/market~{d}.csv" for d in window[:3]]
    assert cloud.state().market_through == window[2]
    json.dumps(first)  # what the Lambda runtime serialises

    second = cloud.invoke()  # the next run, with time enough
    assert _grouped_days(server) == window  # each session asked once, oldest first
    assert server.count("aggs") == 0  # never one ticker at a time
    assert second["sessions_waiting"] == [] and second["new_bars"] == 7 * 40
    assert cloud.state().market_through == window[-1]
    landed = pd.concat(
        pd.read_csv(io.BytesIO(cloud.get(k))) for k in cloud.object_keys("raw/daily_prices/")
    )
    # No hole: every ticker has every session of the window, once.
    per_symbol = landed.groupby("symbol")["trade_date"].apply(sorted)
    assert len(per_symbol) == 40
    assert all(days == window for days in per_symbol)
