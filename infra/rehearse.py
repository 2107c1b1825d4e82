"""`make rehearse`: the whole deploy against a local AWS emulator, with no AWS account.

  1. start moto's server (pinned in constraints.txt) on a free port of 127.0.0.1;
  2. publish stand-ins for the two public Lambda layers into it;
  3. terraform apply of terraform/ from a generated, git-ignored working copy (.rehearsal/)
     whose override points the aws provider at the emulator and works around its gaps;
  4. one weekday through what was deployed, every setting read back from the emulator:
     the schedule (GetSchedule), the ingest Lambda's handler run in-process with the
     environment Terraform gave the function and the key from the deployed secret, against
     a loopback Alpha Vantage stand-in; the Glue workflow run it starts, the crawler's pass,
     the Glue job's entry point with the job's DefaultArguments, and daily_prices and every
     view queried through the project's DuckDB-backed Athena fake;
  5. a second plan, which may show only the differences the emulator is known to cause;
  6. terraform destroy.

Every stage prints its seconds; a failure names the stage and the first error. The emulator
and the stand-ins are stopped on exit, failure included. Run with the project's venv Python
after `make package` (the Makefile target does both).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import runpy
import shutil
import signal
import socket
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

import tf

REPO = tf.REPO
WORK = REPO / ".rehearsal"  # git-ignored; recreated on every run
TESTS_INTEGRATION = REPO / "tests" / "integration"  # the Athena and Alpha Vantage stand-ins
REGION = "us-east-1"
SEED = 7  # the stand-in's synthetic market
TEST_KEY = "REHEARSALKEY0001"  # put into the deployed secret; the stand-in accepts only it
SERVICES = (
    *("athena", "cloudwatch", "events", "logs", "glue", "grafana", "iam", "kms", "lambda"),
    *("s3", "scheduler", "secretsmanager", "sns", "sqs", "sts"),
)
EXPECTED_SCHEDULE = "cron(0 22 ? * MON-FRI *)"

# Where the emulator differs from AWS, handled in the override (never in terraform/).
# Each entry: what the override says, and why.
GAPS = {
    "glue_classifier": (
        'resource "aws_glue_classifier" "raw_csv" {\n  count = 0\n}\n\n'
        'resource "aws_glue_crawler" "raw" {\n  classifiers = []\n}\n',
        "moto has not implemented Glue CreateClassifier (it answers 500); the crawler is "
        "played by athena_fake.crawl_raw, which reads the CSV the way the classifier says",
    ),
    "tls_only_bucket_policy": (
        'resource "aws_s3_bucket_policy" "tls_only" {\n  for_each = {}\n}\n',
        "moto evaluates the TLS-only bucket policy without understanding aws:SecureTransport, "
        "so it denies every object PUT, TLS or not",
    ),
}
# What a second plan after apply shows only because the emulator does not model a field:
# address -> (the attributes that may differ, why). Any other change fails the rehearsal.
EXPECTED_DRIFT = {
    "aws_glue_trigger.start_crawl": (
        {"enabled"},
        "moto reports an ON_DEMAND trigger as disabled; AWS has no state to keep for it",
    ),
    'aws_s3_bucket_notification.this["lake"]': (
        {"eventbridge"},
        "moto does not return the bucket's EventBridge notification setting",
    ),
    'aws_s3_bucket_notification.this["athena_results"]': (
        {"eventbridge"},
        "moto does not return the bucket's EventBridge notification setting",
    ),
    "aws_lambda_function.ingest": (
        {"dead_letter_config"},
        "moto does not return the function's dead-letter queue",
    ),
    "aws_iam_role_policy.scheduler": (
        {"policy (known after apply)"},
        "knock-on of the Lambda's drift: its document names the function, so it is re-read at "
        "apply and the policy shows as known after apply; the text is the same",
    ),
    "aws_glue_job.wap": (
        {"execution_class"},
        "moto returns execution_class STANDARD for a Python shell job, which has none",
    ),
}


class StageFailed(Exception):
    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage


def say(text: str) -> None:
    print(f"rehearse: {text}", flush=True)


# -- the emulator -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def emulator(log: Path):
    """moto's server on 127.0.0.1:<free port>, in a thread of this process: it cannot
    outlive the rehearsal, however the rehearsal ends. Its request log goes to `log`."""
    from moto.server import ThreadedMotoServer

    handler = logging.FileHandler(log, mode="w")
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(handler)
    werkzeug.propagate = False
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise StageFailed("emulator", f"moto not answering on {url}") from None
                time.sleep(0.2)
        yield url
    finally:
        server.stop()
        werkzeug.removeHandler(handler)
        handler.close()


# What a user's shell may hold that would change what the rehearsal applies or where.
FOREIGN_TERRAFORM = ("TF_VAR_", "TF_CLI_ARGS", "TF_WORKSPACE", "TF_DATA_DIR", "AWS_")


def rehearsal_environment(work: Path, mirror, endpoint: str) -> dict:
    ours = aws_environment(endpoint)
    env = tf.environment(work / ".tfcli", mirror, ours)
    for name in list(env):
        if name.startswith(FOREIGN_TERRAFORM) and name not in ours:
            del env[name]
    return env


def aws_environment(endpoint: str) -> dict:
    """Test credentials and every boto3 client pointed at the emulator."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }


@contextlib.contextmanager
def patched_environ(values: dict, clear_prefixes: tuple = ()):
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name.startswith(clear_prefixes):
                del os.environ[name]
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def client(service: str, endpoint: str):
    import boto3

    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def stand_in_layers(endpoint: str) -> dict:
    """Publish empty layers in place of the public ones (other accounts' layers don't exist in
    the emulator); the real contents (pandas, powertools) are in this venv for the run."""
    lam = client("lambda", endpoint)
    arns = {}
    for variable, name in (
        ("sdk_pandas_layer_arn", "rehearsal-AWSSDKPandas-Python311"),
        ("powertools_layer_arn", "rehearsal-AWSLambdaPowertoolsPythonV3-python311-x86_64"),
    ):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("python/README.txt", f"stand-in for {name}\n")
        published = lam.publish_layer_version(
            LayerName=name,
            Content={"ZipFile": buffer.getvalue()},
            CompatibleRuntimes=["python3.11"],
        )
        arns[variable] = published["LayerVersionArn"]
    return arns


# -- the working copy -------------------------------------------------------------------------


def override_text(endpoint: str) -> str:
    endpoints = "\n".join(f'    {name} = "{endpoint}"' for name in SERVICES)
    gaps = "\n".join(f"# gap {name}: {why}\n{text}" for name, (text, why) in GAPS.items())
    return (
        "# Generated by infra/rehearse.py for `make rehearse`; never part of terraform/.\n"
        "# State stays in this folder, whatever backend the module is given.\n"
        'terraform {\n  backend "local" {}\n}\n\n'
        "# The aws provider talks to moto's server on loopback with test credentials, and\n"
        "# retries little: an unimplemented call should fail fast, not back off for minutes.\n"
        'provider "aws" {\n'
        '  access_key                  = "testing"\n'
        '  secret_key                  = "testing"\n'
        "  skip_credentials_validation = true\n"
        "  skip_metadata_api_check     = true\n"
        "  s3_use_path_style           = true\n"
        "  max_retries                 = 2\n"
        "  endpoints {\n"
        f"{endpoints}\n"
        "  }\n"
        "}\n\n" + gaps
    )


def working_copy(endpoint: str, variables: dict) -> Path:
    """terraform/ copied to .rehearsal/ (one level under the repo, as terraform/ is, so the
    module's ${path.module}/.. is still the repository), plus the override and the vars."""
    if WORK.exists():
        shutil.rmtree(WORK)
    shutil.copytree(
        REPO / "terraform",
        WORK,
        ignore=shutil.ignore_patterns(
            ".terraform",
            "*.tfstate*",
            ".terraform.lock.hcl",
            "grafana",
            "*.tfvars",
            "*.tfvars.json",
        ),
    )
    (WORK / "rehearse_override.tf").write_text(override_text(endpoint))
    (WORK / "rehearse.auto.tfvars.json").write_text(json.dumps(variables, indent=2) + "\n")
    return WORK


# -- the weekday ------------------------------------------------------------------------------


class Deployed:
    """What the emulator says was deployed (nothing here is read from the HCL)."""

    def __init__(self, endpoint: str, outputs: dict) -> None:
        self.endpoint = endpoint
        self.outputs = outputs
        self.s3 = client("s3", endpoint)
        self.glue = client("glue", endpoint)
        self.lam = client("lambda", endpoint)
        self.scheduler = client("scheduler", endpoint)
        self.secrets = client("secretsmanager", endpoint)
        self.sqs = client("sqs", endpoint)
        self.function = self.lam.get_function_configuration(
            FunctionName=outputs["ingest_function_name"]
        )
        self.env = dict(self.function["Environment"]["Variables"])

    def object_bytes(self, uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_schedule(deployed: Deployed) -> dict:
    """The weekday schedule's cron, target and dead-letter queue; returns its event."""
    function_arn = deployed.function["FunctionArn"]
    listed = deployed.scheduler.list_schedules()["Schedules"]
    ours = [s for s in listed if s.get("Target", {}).get("Arn") == function_arn]
    check(len(ours) == 1, f"{len(ours)} schedules target {function_arn}, expected 1")
    schedule = deployed.scheduler.get_schedule(
        Name=ours[0]["Name"], GroupName=ours[0].get("GroupName", "default")
    )
    check(
        schedule["ScheduleExpression"] == EXPECTED_SCHEDULE,
        f"schedule is {schedule['ScheduleExpression']!r}, expected {EXPECTED_SCHEDULE!r}",
    )
    check(schedule.get("ScheduleExpressionTimezone") == "UTC", "schedule is not in UTC")
    target = schedule["Target"]
    check(target["Arn"] == function_arn, f"schedule targets {target['Arn']}")
    dlq = target.get("DeadLetterConfig", {}).get("Arn", "")
    queue_name = dlq.rsplit(":", 1)[-1]
    check(bool(dlq), "schedule has no dead-letter queue")
    url = deployed.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    attributes = deployed.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    check(attributes["Attributes"]["QueueArn"] == dlq, f"dead-letter queue {dlq} is not deployed")
    return json.loads(target.get("Input") or "{}")


def last_weekday(today: dt.date) -> dt.date:
    """The weekday the schedule last fired on (22:00 UTC, after the close)."""
    day = today - dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def alpha_vantage_stand_in(as_of: dt.date):
    """The loopback Alpha Vantage of the tests, serving the synthetic market: compact
    TIME_SERIES_DAILY answers, SPLITS and DIVIDENDS in the vendor's shapes, and the
    invalid-key refusal unless the deployed key."""
    sys.path.insert(0, str(TESTS_INTEGRATION))
    import av_fake_server as av

    from marketlake.providers.synthetic import SyntheticProvider

    provider = SyntheticProvider(seed=SEED)

    def answer(query: dict):
        if query.get("apikey") != TEST_KEY:
            return av.Reply(av.ERROR_INVALID_KEY)
        symbol, function = query["symbol"], query.get("function")
        if function in ("SPLITS", "DIVIDENDS"):
            events = actions_of(provider, function.lower(), symbol, as_of)
            shape = av.splits_json if function == "SPLITS" else av.dividends_json
            return av.Reply(shape(symbol, events))
        if function != "TIME_SERIES_DAILY":
            return av.Reply(av.ERROR_UNKNOWN_FUNCTION)
        return av.Reply(av.daily_json(symbol, compact_bars(provider, symbol, as_of)))

    server = av.FakeAlphaVantage()
    server.default = answer
    return server


def compact_bars(provider, symbol: str, as_of: dt.date) -> list:
    """What outputsize=compact answers: the last 100 sessions."""
    frame = provider.fetch_daily(symbol, as_of - dt.timedelta(days=150), as_of)
    return [
        (row.trade_date, row.open, row.high, row.low, row.close, int(row.volume))
        for row in frame.tail(100).itertuples()
    ]


def actions_of(provider, kind: str, symbol: str, as_of: dt.date) -> list:
    frame = provider.fetch_actions(kind, symbol, as_of)
    return [(row.date, float(row.value)) for row in frame.itertuples()]


class LambdaContext:
    """What the Lambda runtime passes, from the deployed function's configuration."""

    def __init__(self, function: dict) -> None:
        self.function_name = function["FunctionName"]
        self.function_version = function.get("Version", "$LATEST")
        self.memory_limit_in_mb = function["MemorySize"]
        self.invoked_function_arn = function["FunctionArn"]
        self.aws_request_id = "rehearsal-0001"
        self._deadline = time.monotonic() + function["Timeout"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def run_lambda(deployed: Deployed, event: dict, as_of: dt.date, log: Path) -> dict:
    check(deployed.function["Handler"] == "handler.handler", "handler is not handler.handler")
    built = (REPO / "dist" / "aws" / "ingest_lambda.zip").read_bytes()
    digest = base64.b64encode(hashlib.sha256(built).digest()).decode()
    check(deployed.function["CodeSha256"] == digest, "the deployed zip is not dist/aws's")
    deployed.secrets.put_secret_value(
        SecretId=deployed.env["ALPHAVANTAGE_SECRET_ID"], SecretString=TEST_KEY
    )
    with alpha_vantage_stand_in(as_of) as server:
        env = dict(deployed.env, ALPHAVANTAGE_BASE_URL=server.url)
        env.update(aws_environment(deployed.endpoint))
        with patched_environ(env, ("MARKETLAKE_", "ALPHAVANTAGE_", "LAKE_", "GLUE_")):
            import boto3

            boto3.setup_default_session()
            handler_dir = REPO / "lambdas" / "ingest"
            sys.path.insert(0, str(handler_dir))
            logs = io.StringIO()
            try:
                with contextlib.redirect_stdout(logs):  # powertools logs JSON to stdout
                    handler = runpy.run_path(str(handler_dir / "handler.py"))["handler"]
                    summary = handler(
                        {**event, "as_of": as_of.isoformat()}, LambdaContext(deployed.function)
                    )
            finally:
                sys.path.remove(str(handler_dir))
                boto3.DEFAULT_SESSION = None
                with log.open("a") as out:
                    out.write(f"--- the Lambda's log\n{logs.getvalue()}\n")
        asked = {query["symbol"] for query in server.requests}
    tickers = deployed.env["MARKETLAKE_TICKERS"].split(",")
    check(asked == set(tickers), f"the Lambda asked for {sorted(asked)}, deployed {tickers}")
    check(TEST_KEY not in logs.getvalue(), "the Lambda's log holds the API key")
    check('"ingest finished"' in logs.getvalue(), "the Lambda logged no summary")
    check(not summary["failed"], f"symbols failed: {summary['failed']}")
    check(summary["new_bars"] > 0, "the Lambda landed no bars")
    return summary


def check_workflow(deployed: Deployed, summary: dict) -> tuple[str, str]:
    """The workflow run the Lambda started, and the crawler and job it runs (from its
    triggers): crawl first, then the job on the crawl's SUCCEEDED."""
    name = deployed.env["GLUE_WORKFLOW_NAME"]
    runs = deployed.glue.get_workflow_runs(Name=name)["Runs"]
    check(
        [r["WorkflowRunId"] for r in runs] == [summary["workflow_run_id"]],
        f"workflow {name} has runs {[r['WorkflowRunId'] for r in runs]}, "
        f"the Lambda reported {summary['workflow_run_id']}",
    )
    triggers = [
        t for t in deployed.glue.get_triggers()["Triggers"] if t.get("WorkflowName") == name
    ]
    start = [t for t in triggers if t["Type"] == "ON_DEMAND"]
    then = [t for t in triggers if t["Type"] == "CONDITIONAL"]
    check(len(start) == 1 and len(then) == 1, f"workflow {name} triggers: {triggers}")
    crawler = start[0]["Actions"][0]["CrawlerName"]
    condition = then[0]["Predicate"]["Conditions"][0]
    check(
        condition.get("CrawlerName") == crawler and condition.get("CrawlState") == "SUCCEEDED",
        f"the job does not wait for {crawler} to succeed: {condition}",
    )
    return crawler, then[0]["Actions"][0]["JobName"]


def crawl(deployed: Deployed, crawler_name: str) -> str:
    """The crawler's pass, by the tests' stand-in, at the target the deployed crawler has."""
    from athena_fake import crawl_raw

    crawler = deployed.glue.get_crawler(Name=crawler_name)["Crawler"]
    path = crawler["Targets"]["S3Targets"][0]["Path"]
    bucket, _, prefix = path.removeprefix("s3://").partition("/")
    table = crawler.get("TablePrefix", "") + prefix.rstrip("/").rsplit("/", 1)[-1]
    check(table == "raw_daily_prices", f"the crawler would name its table {table}")
    crawl_raw(deployed.glue, deployed.s3, bucket, crawler["DatabaseName"], prefix)
    return table


def run_glue_job(deployed: Deployed, job_name: str, athena, log: Path) -> None:
    """glue/wap_job.py as Glue would start it: argv from the job's DefaultArguments, the
    script and the wheel read back from S3; Athena is the DuckDB-backed fake."""
    job = deployed.glue.get_job(JobName=job_name)["Job"]
    check(job["Command"]["Name"] == "pythonshell", f"job command is {job['Command']['Name']}")
    script = deployed.object_bytes(job["Command"]["ScriptLocation"])
    check(script == (REPO / "glue" / "wap_job.py").read_bytes(), "the deployed script differs")
    arguments = job["DefaultArguments"]
    wheel = deployed.object_bytes(arguments["--extra-py-files"])
    built = next((REPO / "dist" / "aws").glob("marketlake-*.whl")).read_bytes()
    check(wheel == built, "the deployed wheel is not dist/aws's")
    argv = [str(REPO / "glue" / "wap_job.py")]
    for name, value in arguments.items():
        argv += [name, value]
    real_client = __import__("boto3").client

    def client_for(service, *args, **kwargs):
        return athena if service == "athena" else real_client(service, *args, **kwargs)

    with (
        patched_environ(aws_environment(deployed.endpoint)),
        mock.patch("boto3.client", client_for),
        mock.patch.dict(sys.modules, {"awsglue": None, "awsglue.utils": None}),  # not on Glue
        mock.patch.object(sys, "argv", argv),
        mock.patch("time.sleep", lambda seconds: None),  # the fake answers at once
    ):
        logs = io.StringIO()
        root = logging.getLogger()
        kept = root.handlers[:]
        root.handlers[:] = [logging.StreamHandler(logs)]  # the job's basicConfig keeps it
        try:
            runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as exc:
            check(exc.code in (0, None), f"the Glue job exited {exc.code}: {logs.getvalue()}")
        finally:
            root.handlers[:] = kept
            with log.open("a") as out:
                out.write(f"--- the Glue job's log\n{logs.getvalue()}\n")


def check_result(deployed: Deployed, athena, summary: dict) -> int:
    """daily_prices and every view, queried as Grafana would: the query workgroup."""
    from marketlake.engines.athena import AthenaEngine
    from marketlake.providers.synthetic import SyntheticProvider

    engine = AthenaEngine(
        deployed.outputs["glue_database"],
        deployed.outputs["athena_workgroup"],
        f"s3://{deployed.outputs['lake_bucket']}",
        run_id="rehearsal",
        athena=athena,
        glue=deployed.glue,
        sleep=lambda seconds: None,
    )
    counts = engine.fetch_df(
        "SELECT count(*) AS n, count(DISTINCT symbol) AS symbols FROM daily_prices"
    )
    rows, symbols = int(counts["n"][0]), int(counts["symbols"][0])
    landed = summary["new_bars"]
    check(rows == landed, f"daily_prices has {rows} rows, the Lambda landed {landed} bars")
    check(symbols == len(summary["fetched"]), f"daily_prices has {symbols} symbols")
    # The corporate actions went through the same wiring: every dividend of the stand-in
    # within the published sessions is on its ex-date's row.
    span = engine.fetch_df("SELECT min(trade_date) AS lo, max(trade_date) AS hi FROM daily_prices")
    lo, hi = (dt.date.fromisoformat(str(span[c][0])[:10]) for c in ("lo", "hi"))
    provider = SyntheticProvider(seed=SEED)
    expected = sum(
        lo <= day <= hi
        for symbol in summary["fetched"]
        for day, _ in actions_of(provider, "dividends", symbol, hi)
    )
    paid = engine.fetch_df("SELECT count(*) AS n FROM daily_prices WHERE dividend > 0")
    check(
        int(paid["n"][0]) == expected,
        f"daily_prices has {int(paid['n'][0])} dividend rows, the stand-in paid {expected}",
    )
    check(expected > 0, "the stand-in paid no dividend in the window: the check proves nothing")
    for view in sorted((REPO / "sql" / "views").glob("*.sql")):
        engine.fetch_df(f"SELECT count(*) AS n FROM {view.stem}")  # every view runs
    return rows


def empty_buckets(deployed: Deployed) -> int:
    """Delete every object version while the buckets are still versioned. A gap of moto
    5.2.5: once destroy has suspended versioning, force_destroy's DeleteObjects fails with a
    500 on a key that has a delete marker (FakeDeleteMarker has no dispose())."""
    removed = 0
    for bucket in (deployed.outputs["lake_bucket"], deployed.outputs["athena_results_bucket"]):
        for page in deployed.s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            doomed = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if doomed:
                answer = deployed.s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed})
                check(not answer.get("Errors"), f"emptying {bucket}: {answer.get('Errors')}")
                removed += len(doomed)
    return removed


# -- Terraform --------------------------------------------------------------------------------


def managed_resources(state_list: str) -> int:
    return sum(
        1 for line in state_list.split() if not (line.startswith("data.") or ".data." in line)
    )


def changed_attributes(change: dict) -> set:
    """The attributes an update changes; one only known after apply is 'NAME (known after
    apply)', so a drift allowed for that reason never lets a known new value through."""
    before = change.get("before") or {}
    after = change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    changed = set()
    for name in set(before) | set(after) | set(unknown):
        if unknown.get(name) is True:
            changed.add(f"{name} (known after apply)")
        elif before.get(name) != after.get(name):
            changed.add(name)
    return changed


def unexpected_changes(plan: dict) -> list[str]:
    """Changes in a second plan that the emulator's known gaps (EXPECTED_DRIFT) do not
    explain: another resource, another action than an update, or another attribute."""
    found = []
    for resource in plan.get("resource_changes", []):
        change = resource["change"]
        actions = change["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        attributes = changed_attributes(change) if actions == ["update"] else {"/".join(actions)}
        allowed, _ = EXPECTED_DRIFT.get(resource["address"], (set(), ""))
        if not attributes <= allowed:
            found.append(f"{resource['address']} ({', '.join(sorted(attributes - allowed))})")
    return found


def main() -> int:
    started = time.monotonic()
    stage = "setup"
    tally = {}
    try:
        tf.terraform_binary()
        mirror = tf.find_mirror()
        dist = REPO / "dist" / "aws"
        if not (dist / "ingest_lambda.zip").is_file() or not list(dist.glob("marketlake-*.whl")):
            raise StageFailed(stage, f"{dist} has no Lambda zip or wheel: run make package first")
        WORK.mkdir(exist_ok=True)
        log = WORK.parent / ".rehearsal.log"
        log.write_text("")
        say(f"terraform: {'aws provider from ' + str(mirror) if mirror else 'registry'}; log {log}")

        def timed(name: str, action):
            nonlocal stage
            stage = name
            t0 = time.monotonic()
            result = action()
            say(f"{name:<10} ok ({time.monotonic() - t0:.0f} s)")
            return result

        with emulator(WORK.parent / ".rehearsal-moto.log") as endpoint:
            say(f"emulator: moto {moto_version()} on {endpoint}")
            layers = timed("layers", lambda: stand_in_layers(endpoint))
            variables = {
                **layers,
                # Premium pacing: the stand-in has no limit, and free-tier pacing (5 a
                # minute) would spend two minutes waiting for the ten default tickers.
                "alphavantage_calls_per_minute": 75,
                "alphavantage_calls_per_day": 0,
                # A throwaway deploy: destroy empties the buckets the weekday filled, as
                # docs/deploying.md says a user does before tearing down.
                "force_destroy_buckets": True,
            }
            work = working_copy(endpoint, variables)
            env = rehearsal_environment(work, mirror, endpoint)
            timed("init", lambda: tf.run(["init", "-input=false"], work, env, log))
            timed(
                "apply",
                lambda: tf.run(["apply", "-auto-approve", "-input=false"], work, env, log),
            )
            _, listed = tf.run(["state", "list"], work, env, log)
            tally["applied"] = managed_resources(listed)
            _, out = tf.run(["output", "-json"], work, env, log)
            outputs = {name: body["value"] for name, body in json.loads(out).items()}

            sys.path.insert(0, str(TESTS_INTEGRATION))
            deployed = timed("read back", lambda: Deployed(endpoint, outputs))
            event = timed("schedule", lambda: check_schedule(deployed))
            # The sessions are New York's: a machine whose date is ahead of it would ask
            # for a day that has not begun there.
            today = dt.datetime.now(ZoneInfo("America/New_York")).date()
            as_of = last_weekday(today + dt.timedelta(days=1))
            summary = timed("lambda", lambda: run_lambda(deployed, event, as_of, log))
            crawler, job = timed("workflow", lambda: check_workflow(deployed, summary))
            tally["runs"] = 1
            timed("crawler", lambda: crawl(deployed, crawler))
            from athena_fake import FakeAthena

            athena = FakeAthena(deployed.glue, deployed.s3)
            timed("glue job", lambda: run_glue_job(deployed, job, athena, log))
            tally["rows"] = timed("result", lambda: check_result(deployed, athena, summary))

            def plan_again() -> None:
                tf.run(
                    ["plan", "-input=false", "-detailed-exitcode", "-out=second.tfplan"],
                    work,
                    env,
                    log,
                    ok=(0, 2),
                )
                _, shown = tf.run(["show", "-json", "second.tfplan"], work, env, log)
                extra = unexpected_changes(json.loads(shown))
                if extra:
                    raise AssertionError(
                        "changes the emulator does not explain: " + ", ".join(extra)
                    )

            timed("plan again", plan_again)

            def destroy() -> int:
                # Counted from the state: the objects Terraform uploaded went with the
                # buckets' emptying, so `destroy` itself reports two fewer.
                emptied = empty_buckets(deployed)
                say(f"destroy: emptied the buckets first ({emptied} object versions)")
                _, before = tf.run(["state", "list"], work, env, log)
                tf.run(["destroy", "-auto-approve", "-input=false"], work, env, log)
                _, left = tf.run(["state", "list"], work, env, log)
                check(managed_resources(left) == 0, f"left after destroy: {left.split()}")
                return managed_resources(before)

            tally["destroyed"] = timed("destroy", destroy)
    except Exception as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"rehearse: FAILED at {stage}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rehearse: interrupted at {stage}; the emulator was stopped", file=sys.stderr)
        return 130
    say(f"done in {time.monotonic() - started:.0f} s")
    print(
        f"rehearsal: {tally['applied']} resources applied, {tally['runs']} workflow run, "
        f"{tally['rows']} rows published, {tally['destroyed']} destroyed"
    )
    return 0


def moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def interrupted(signum, frame):
    raise KeyboardInterrupt  # unwinds through the finally blocks that stop the emulator


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    sys.exit(main())
