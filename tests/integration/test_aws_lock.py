"""The scheduled runs take the lake's lock (marketlake.lock.store_lock) on S3: the Glue job
around the build, the ingest Lambda around the ingest. While someone else holds it, each is
refused in one line and writes nothing: no curated version, no registry entry, no request to
the vendor. Over moto and FakeAthena, with the fixtures of test_glue_job and
test_lambda_ingest (their modules are near their size limits).
"""

from __future__ import annotations

import json
import logging
import re
import sys

import boto3
import pytest
import test_glue_job as glue_tests
import test_lambda_ingest as lambda_tests
from moto import mock_aws

from marketlake.aws import glue_job as job
from marketlake.lock import LOCK_KEY, LakeLocked, store_lock, take_lock
from marketlake.storage import S3Store

FIRST_INGEST, FIRST_BARS = glue_tests.FIRST_INGEST, glue_tests.FIRST_BARS
ROLLBACK = "marketlake rollback on laptop.local pid 4242"

# The Lambda's fixtures, used here as they are there.
lambda_module = lambda_tests.lambda_module
cloud = lambda_tests.cloud


@pytest.fixture
def lake(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": glue_tests.REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(sys.modules, "awsglue", None)  # not on Glue: the argparse branch
    monkeypatch.setitem(sys.modules, "awsglue.utils", None)
    with mock_aws():
        yield glue_tests.Lake()


def lock_holder_now(store: S3Store) -> str | None:
    data, _ = store.get_tagged(LOCK_KEY)
    return None if data is None else json.loads(data)["holder"]


# -- the Glue job ---------------------------------------------------------------------------


def test_the_glue_job_is_refused_while_a_rollback_holds_the_lock_and_alerts(lake):
    lake.land(FIRST_INGEST, FIRST_BARS, glue_tests.ingested(FIRST_INGEST))
    with store_lock(lake.store, ROLLBACK, heartbeat=False):
        with pytest.raises(LakeLocked) as refused:
            lake.run_job()
        assert lock_holder_now(lake.store) == ROLLBACK  # the refused job took nothing
    message = str(refused.value)
    assert "\n" not in message
    assert f"is locked by {ROLLBACK} since " in message
    assert "wait for it to finish, then run this again" in message
    # Nothing written: no version, no registry, no run log, no statement sent to Athena.
    assert lake.keys("curated/") == []
    assert lake.keys("state/versions/") == []
    assert lake.keys("audit/") == []
    assert lake.athena.statements == []
    assert "daily_prices" not in lake.tables()
    (alert,) = lake.alerts()
    assert alert["Subject"] == "marketlake: daily_prices build refused, the lake is locked"
    assert alert["Message"] == message

    # Once the rollback is done, the same job builds, and leaves the lock free.
    summary = lake.run_job()
    assert summary["status"] == "published"
    assert lock_holder_now(lake.store) is None


def test_the_glue_job_holds_the_lock_for_the_whole_build_naming_its_run(lake, monkeypatch):
    lake.land(FIRST_INGEST, FIRST_BARS, glue_tests.ingested(FIRST_INGEST))
    seen = []
    real_build = job.run_build

    def build(settings, store, engine, **kwargs):
        seen.append(lock_holder_now(store))
        with pytest.raises(LakeLocked):  # a rollback started now is refused
            take_lock(store, ROLLBACK)
        return real_build(settings, store, engine, **kwargs)

    monkeypatch.setattr(job, "run_build", build)
    summary = lake.run_job("--JOB_NAME", "marketlake-build")
    assert seen == [f"glue job marketlake-build run jr_0123 (build {summary['run_id']})"]
    assert lock_holder_now(lake.store) is None


def test_the_job_exits_1_with_one_error_line_when_refused(lake, caplog):
    logged = caplog.at_level(logging.ERROR, logger="marketlake.job")
    with store_lock(lake.store, ROLLBACK, heartbeat=False), logged:
        assert job.main(lake.argv()) == 1
    (line,) = [r.getMessage() for r in caplog.records if r.name == "marketlake.job"]
    assert line.startswith(f"the lake s3://{glue_tests.BUCKET}/ is locked by {ROLLBACK}")
    assert len(lake.alerts()) == 1


def test_the_holder_outside_glue_names_the_host_and_process():
    holder = job.lock_holder(["wap_job.py", "--lake_bucket", "b"], "R1")
    assert holder.startswith("marketlake glue build R1 on ") and " pid " in holder
    assert job.lock_holder(["x", "--JOB_RUN_ID=jr_7"], "R2") == "glue job run jr_7 (build R2)"


# -- the ingest Lambda ----------------------------------------------------------------------


def test_the_ingest_lambda_is_refused_while_a_build_holds_the_lock(cloud):
    store = S3Store(lambda_tests.BUCKET, client=cloud.s3)
    build = "glue job marketlake-build run jr_9 (build R9)"
    with store_lock(store, build, heartbeat=False):
        with pytest.raises(LakeLocked, match=re.escape(f"is locked by {build} since")):
            cloud.invoke()
        assert lock_holder_now(store) == build
    assert cloud.server.requests == []  # not one request of the day's quota spent
    assert cloud.object_keys("raw/") == []
    assert cloud.object_keys("state/") == []
    assert cloud.workflow_runs() == []
    errors = [line for line in cloud.log_lines() if line["level"] == "ERROR"]
    (error,) = errors
    assert error["message"].startswith(f"the lake s3://{lambda_tests.BUCKET}/ is locked by")

    summary = cloud.invoke()  # the build is done: the next invocation ingests
    assert summary["fetched"] == ["AAA", "BBB", "CCC"]
    assert lock_holder_now(store) is None


def test_the_lambda_holds_the_lock_while_it_lands_and_frees_it_before_the_build(cloud):
    store = S3Store(lambda_tests.BUCKET, client=cloud.s3)
    while_landing, at_workflow_start = set(), []

    def landing(params, **kwargs):
        if params["Key"].startswith("raw/"):
            while_landing.add(lock_holder_now(store))

    def starting(**kwargs):
        at_workflow_start.append(lock_holder_now(store))

    events = boto3.DEFAULT_SESSION.events
    events.register("provide-client-params.s3.PutObject", landing)
    events.register("before-call.glue.StartWorkflowRun", starting)
    summary = cloud.invoke()
    assert summary["workflow_run_id"]
    request = lambda_tests.FakeContext().aws_request_id
    assert while_landing == {f"ingest lambda marketlake-ingest request {request}"}
    assert at_workflow_start == [None]  # the build the workflow runs takes it next
