"""A failure that is no symbol's fails the ingest Lambda loudly, on moto: a bucket policy
that denies a call the code makes (moto 5 enforces a bucket policy's explicit Deny on object
GET and PUT, answering a bodiless 403), a secret with no value, a secret that is not there.
A symbol's own bad day (a garbled answer) still stays that symbol's.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import os
import sys
from pathlib import Path

import boto3
import pandas as pd
import pytest
from av_fake_server import HTML_502, BySymbol, FakeAlphaVantage, Reply, bars_on, daily_reply
from botocore.stub import Stubber
from moto import mock_aws
from unreachable import closed_port_url

from marketlake.aws import lambda_ingest as aws
from marketlake.errors import ConfigError, LakeUnreachable, Unreachable
from marketlake.lake import actions
from marketlake.lake.state import STATE_KEY, IngestState
from marketlake.providers.base import ServerUnreachable
from marketlake.sessions import sessions_between
from marketlake.storage import S3Store
from marketlake.wap.versions import Registry, Version, update_registry

LAMBDA_DIR = Path(__file__).resolve().parents[2] / "lambdas" / "ingest"
KEY = "KEYzq81x7TEST"
BUCKET = "marketlake-lake-infra"
SECRET_ID = "marketlake/alphavantage"
WORKFLOW = "marketlake-build"
AS_OF = "2024-07-03"
LANDED = f"s3://{BUCKET}/state/raw_landed/ingest_date={AS_OF}.json"
SESSION = dt.date(2024, 7, 3)
BARS = bars_on(sessions_between(dt.date(2024, 2, 1), SESSION))


class Context:
    """The Lambda context the handler's logger and time budget read."""

    function_name = "marketlake-ingest"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:marketlake-ingest"
    aws_request_id = "0f5d8a44-6a3c-4c0e-9d51-0d8a3b0a7c11"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@pytest.fixture(scope="module")
def handler_module():
    sys.path.insert(0, str(LAMBDA_DIR))
    try:
        spec = importlib.util.spec_from_file_location(
            "infra_failures_handler", LAMBDA_DIR / "handler.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(LAMBDA_DIR))


class Cloud:
    def __init__(self, module, server, logs) -> None:
        self.module, self.server, self.logs = module, server, logs
        self.s3, self.glue, self.secrets = (
            boto3.client(n) for n in ("s3", "glue", "secretsmanager")
        )

    def invoke(self) -> dict:
        return self.module.handler({"as_of": AS_OF}, Context())

    def deny(self, action: str, prefix: str) -> None:
        """An explicit Deny of `action` on the lake's keys under `prefix`, for everyone."""
        statement = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": action,
            "Resource": f"arn:aws:s3:::{BUCKET}/{prefix}*",
        }
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        self.s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))

    def workflow_runs(self) -> list:
        return self.glue.get_workflow_runs(Name=WORKFLOW)["Runs"]

    def state(self) -> IngestState:
        return IngestState.from_json(
            self.s3.get_object(Bucket=BUCKET, Key=STATE_KEY)["Body"].read()
        )

    def errors(self) -> list[str]:
        lines = [json.loads(line) for line in self.logs.getvalue().splitlines() if line.strip()]
        return [line["message"] for line in lines if line["level"] == "ERROR"]


@pytest.fixture
def cloud(handler_module, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("MARKETLAKE_", "ALPHAVANTAGE_", "AWS_", "LAKE_", "GLUE_")):
            monkeypatch.delenv(name)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(aws, "_SECRET_CACHE", {})
    logs = io.StringIO()
    monkeypatch.setattr(handler_module.logger.registered_handler, "stream", logs)
    with mock_aws(), FakeAlphaVantage() as server:
        boto3.setup_default_session()
        cloud = Cloud(handler_module, server, logs)
        cloud.s3.create_bucket(Bucket=BUCKET)
        cloud.secrets.create_secret(Name=SECRET_ID, SecretString=KEY)
        cloud.glue.create_workflow(Name=WORKFLOW)
        env = {
            "LAKE_BUCKET": BUCKET,
            "ALPHAVANTAGE_SECRET_ID": SECRET_ID,
            "ALPHAVANTAGE_BASE_URL": server.url,
            "ALPHAVANTAGE_CALLS_PER_MINUTE": "6000",
            "ALPHAVANTAGE_BACKOFF_SECONDS": "0.01",
            "ALPHAVANTAGE_MAX_RETRIES": "1",
            "MARKETLAKE_TICKERS": "AAA,BBB,CCC",
            "MARKETLAKE_ACTIONS_EVERY_DAYS": "0",
            "GLUE_WORKFLOW_NAME": WORKFLOW,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        server.default = BySymbol({}, fallback=daily_reply(BARS))
        yield cloud
        boto3.DEFAULT_SESSION = None


@pytest.mark.parametrize("action", ["s3:PutObject", "s3:GetObject"])
def test_a_denied_raw_landed_record_fails_the_invocation_naming_the_object(cloud, action):
    cloud.deny(action, "state/raw_landed/")

    with pytest.raises(LakeUnreachable) as caught:
        cloud.invoke()

    message = str(caught.value)
    assert message.startswith(f"{LANDED}: ") and action in message
    assert caught.value.resource == LANDED
    # The run stopped at the first symbol: no more of the day's quota went on a lake that
    # cannot take the bars, and no build was started.
    assert [q["symbol"] for q in cloud.server.requests] == ["AAA"]
    assert cloud.workflow_runs() == []
    # What could be saved was: the request spent; no watermark moved past unrecorded bars.
    state = cloud.state()
    assert state.quota_used == 1 and state.watermark("AAA") is None
    # One ERROR line, naming the object first, before the runtime reports the exception.
    assert cloud.errors() == [message]


def test_once_the_grant_is_back_a_symbols_bad_day_stays_that_symbols(cloud):
    cloud.deny("s3:PutObject", "state/raw_landed/")
    with pytest.raises(LakeUnreachable):
        cloud.invoke()

    cloud.s3.delete_bucket_policy(Bucket=BUCKET)
    cloud.server.requests.clear()
    cloud.server.default.queues["BBB"] = [Reply(HTML_502, content_type="text/html")]
    summary = cloud.invoke()

    assert summary["fetched"] == ["AAA", "CCC"] and summary["failed"] == ["BBB"]
    assert summary["workflow_run_id"] == cloud.workflow_runs()[0]["WorkflowRunId"]
    assert cloud.state().watermark("AAA") == SESSION


def test_a_denied_read_of_a_split_is_not_taken_for_a_damaged_one(cloud):
    """With no new bars, the Lambda reads the splits to see whether a build is due; a damaged
    split starts the build (which names it), but a refused read fails the invocation."""
    assert cloud.invoke()["new_bars"] > 0
    store = S3Store(BUCKET, client=cloud.s3)
    built = Version("R1", "2024-07-03T23:00:00+00:00", "full", "sql", {}, AS_OF)
    registry = Registry("daily_prices", current="R1", versions=[built])
    update_registry(store, registry.table, lambda _stored: registry)
    split = pd.DataFrame({"date": [dt.date(2024, 6, 10)], "value": [4.0]})
    actions.land_actions(
        store, actions.SPLITS, "AAA", split, "import", SESSION, "2024-07-03 23:30:00.000"
    )
    cloud.deny("s3:GetObject", "raw/splits/")

    with pytest.raises(LakeUnreachable) as caught:
        cloud.invoke()

    assert caught.value.resource == f"s3://{BUCKET}/{actions.SPLITS.key(SESSION, 'AAA')}"
    assert len(cloud.workflow_runs()) == 1  # the first invocation's, no other


def test_a_secret_with_no_value_fails_naming_the_secret_and_how_to_set_it(cloud):
    cloud.secrets.delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    cloud.secrets.create_secret(Name=SECRET_ID)  # created, never given a value

    with pytest.raises(ConfigError) as caught:
        cloud.invoke()

    message = str(caught.value)
    assert message.startswith(f"secret {SECRET_ID}: ")
    assert "ResourceNotFoundException" in message and "AWSCURRENT" in message
    assert f"aws secretsmanager put-secret-value --secret-id {SECRET_ID}" in message
    assert "\n" not in message
    assert cloud.errors() == [message]
    assert cloud.server.requests == [] and cloud.workflow_runs() == []


def test_a_secret_that_is_not_there_fails_naming_it(cloud, monkeypatch):
    monkeypatch.setenv("ALPHAVANTAGE_SECRET_ID", "marketlake/nowhere")
    with pytest.raises(ConfigError, match=r"^secret marketlake/nowhere: .*put-secret-value"):
        cloud.invoke()
    assert cloud.server.requests == []


@pytest.mark.parametrize(
    "code, message, remedy",
    [
        (
            "AccessDeniedException",
            "is not authorized to perform: secretsmanager:GetSecretValue",
            "grant secretsmanager:GetSecretValue on it",
        ),
        ("AccessDeniedException", "Access to KMS is not allowed", "allow kms:Decrypt on it"),
        (
            "DecryptionFailure",
            "Secrets Manager can't decrypt the protected secret text",
            "allow kms:Decrypt on it",
        ),
    ],
)
def test_a_secret_the_role_may_not_read_is_named_with_the_grant_it_needs(code, message, remedy):
    # moto does not enforce secret or key policies: botocore's Stubber gives the error shape
    # Secrets Manager answers.
    client = boto3.client(
        "secretsmanager", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    with Stubber(client) as stub:
        stub.add_client_error("get_secret_value", code, message, http_status_code=400)
        with pytest.raises(Unreachable) as caught:
            aws.api_key_from_secret("marketlake/denied", client)
    assert caught.value.resource == "secret marketlake/denied"
    assert code in str(caught.value) and remedy in str(caught.value)


def test_a_workflow_that_is_not_there_fails_naming_it_after_the_bars_landed(cloud):
    cloud.glue.delete_workflow(Name=WORKFLOW)

    with pytest.raises(Unreachable) as caught:
        cloud.invoke()

    assert caught.value.resource == f"Glue workflow {WORKFLOW}"
    assert "GLUE_WORKFLOW_NAME" in str(caught.value)
    assert cloud.state().watermark("AAA") == SESSION  # the bars landed; only the build waits
    assert cloud.errors() == [str(caught.value)]


def test_a_refused_workflow_start_fails_naming_the_grant(cloud, monkeypatch):
    import botocore.client
    from botocore.exceptions import ClientError

    real = botocore.client.BaseClient._make_api_call

    def refuse_the_start(client, operation, params):
        if operation == "StartWorkflowRun":
            error = {"Code": "AccessDeniedException", "Message": "not authorized"}
            raise ClientError({"Error": error}, operation)
        return real(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refuse_the_start)

    with pytest.raises(Unreachable) as caught:
        cloud.invoke()

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"Glue workflow {WORKFLOW}: StartWorkflowRun refused")
    assert "glue:StartWorkflowRun" in message and "start-workflow-run" in message
    assert cloud.workflow_runs() == []


def test_alpha_vantage_unreachable_fails_the_invocation_with_one_line(cloud, monkeypatch):
    url = closed_port_url()
    monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", url)
    # No retry: the handler sleeps on the real clock (the retries are tested on a simulated
    # one in test_unreachable_server.py).
    monkeypatch.setenv("ALPHAVANTAGE_MAX_RETRIES", "0")

    with pytest.raises(ServerUnreachable) as caught:
        cloud.invoke()

    message = str(caught.value)
    assert message == (
        f"cannot reach ALPHAVANTAGE_BASE_URL ({url}): connection failed: Connection refused; "
        "check the network or the setting"
    )
    assert cloud.errors() == [message]
    assert cloud.workflow_runs() == []
    listed = cloud.s3.list_objects_v2(Bucket=BUCKET, Prefix="raw/").get("Contents", [])
    assert listed == []
    state = cloud.state()
    assert state.quota_used == 0 and state.deferred == [] and state.symbols == {}
