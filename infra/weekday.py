"""The rehearsal's weekday: what the emulator says was deployed, the schedule, the ingest
Lambda run in-process against a loopback Alpha Vantage, the Glue workflow, crawler and job,
and the published result (`make rehearse`, infra/rehearse.py)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import math
import runpy
import sys
import time
from pathlib import Path
from unittest import mock

from emulated import REPO, aws_environment, client, patched_environ

TESTS_INTEGRATION = REPO / "tests" / "integration"  # the Athena and Alpha Vantage stand-ins
SEED = 7  # the stand-in's synthetic market
TEST_KEY = "REHEARSALKEY0001"  # put into the deployed secret; the stand-in accepts only it
EXPECTED_SCHEDULE = "cron(0 22 ? * MON-FRI *)"


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
    TIME_SERIES_DAILY answers, SPLITS, DIVIDENDS and EARNINGS in the vendor's shapes, and the
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
        if function == "EARNINGS":
            return av.Reply(av.earnings_json(symbol, earnings_of(provider, symbol, as_of)))
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


def earnings_of(provider, symbol: str, as_of: dt.date, restated: bool = True) -> list:
    """The synthetic quarters as EARNINGS lists them (no estimate: "None"): restated, as
    Alpha Vantage's are, for every split after the report up to `as_of` (the EPS of a quarter
    reported before a 10:1 split divided by 10), or as reported."""
    from marketlake.lake.actions import number_text

    splits = actions_of(provider, "splits", symbol, as_of) if restated else []
    quarters = []
    for fiscal, reported, eps in provider.fetch_earnings(symbol, as_of).itertuples(index=False):
        day = dt.date.fromisoformat(reported)
        factor = math.prod(f for ex, f in splits if day < ex <= as_of)
        quarters.append((fiscal, reported, number_text(float(eps) / factor), "None"))
    return quarters


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


def check_code(deployed: Deployed) -> None:
    """The deployed function runs handler.handler from dist/aws's zip."""
    check(deployed.function["Handler"] == "handler.handler", "handler is not handler.handler")
    built = (REPO / "dist" / "aws" / "ingest_lambda.zip").read_bytes()
    digest = base64.b64encode(hashlib.sha256(built).digest()).decode()
    check(deployed.function["CodeSha256"] == digest, "the deployed zip is not dist/aws's")


def invoke(deployed: Deployed, env: dict, event: dict, as_of: dt.date, log: Path) -> tuple:
    """lambdas/ingest/handler.py, in-process, with the deployed function's environment (plus
    `env`: the stand-in's URL) and context; returns (its summary, its log)."""
    env = {**deployed.env, **env, **aws_environment(deployed.endpoint)}
    # The caller's own settings (a developer's key) must not reach the handler.
    mine = ("MARKETLAKE_", "ALPHAVANTAGE_", "POLYGON_", "LAKE_", "GLUE_")
    with patched_environ(env, mine):
        import boto3

        boto3.setup_default_session()
        handler_dir = REPO / "lambdas" / "ingest"
        sys.path.insert(0, str(handler_dir))
        logs = io.StringIO()
        try:
            with contextlib.redirect_stdout(logs):  # powertools logs JSON to stdout
                module = runpy.run_path(str(handler_dir / "handler.py"))
                # Powertools keeps the stream of the logger's first creation: an earlier
                # invocation's buffer, from the second on.
                module["logger"].registered_handler.stream = logs
                summary = module["handler"](
                    {**event, "as_of": as_of.isoformat()}, LambdaContext(deployed.function)
                )
        finally:
            sys.path.remove(str(handler_dir))
            boto3.DEFAULT_SESSION = None
            with log.open("a") as out:
                out.write(f"--- the Lambda's log ({as_of})\n{logs.getvalue()}\n")
    text = logs.getvalue()
    check(TEST_KEY not in text, "the Lambda's log holds the API key")
    check('"ingest finished"' in text, "the Lambda logged no summary")
    return summary, text


def run_lambda(deployed: Deployed, event: dict, as_of: dt.date, log: Path) -> dict:
    check_code(deployed)
    deployed.secrets.put_secret_value(
        SecretId=deployed.env["ALPHAVANTAGE_SECRET_ID"], SecretString=TEST_KEY
    )
    with alpha_vantage_stand_in(as_of) as server:
        summary, _ = invoke(deployed, {"ALPHAVANTAGE_BASE_URL": server.url}, event, as_of, log)
        asked = {query["symbol"] for query in server.requests}
    tickers = deployed.env["MARKETLAKE_TICKERS"].split(",")
    check(asked == set(tickers), f"the Lambda asked for {sorted(asked)}, deployed {tickers}")
    check(not summary["failed"], f"symbols failed: {summary['failed']}")
    check(summary["new_bars"] > 0, "the Lambda landed no bars")
    return summary


def check_workflow(deployed: Deployed, summary: dict) -> str:
    """The workflow run the Lambda started, and what it runs (from the emulator's triggers):
    one ON_DEMAND trigger that starts the WAP job, and no crawler anywhere on the daily
    path. Returns the job's name."""
    name = deployed.env["GLUE_WORKFLOW_NAME"]
    workflow = deployed.glue.get_workflow(Name=name, IncludeGraph=True)["Workflow"]
    check(workflow["Name"] == name, f"workflow {name} is not deployed")
    runs = deployed.glue.get_workflow_runs(Name=name)["Runs"]
    check(
        [r["WorkflowRunId"] for r in runs] == [summary["workflow_run_id"]],
        f"workflow {name} has runs {[r['WorkflowRunId'] for r in runs]}, "
        f"the Lambda reported {summary['workflow_run_id']}",
    )
    everything = deployed.glue.get_triggers()["Triggers"]
    ours = [t for t in everything if t.get("WorkflowName") == name]
    check(
        len(ours) == 1 and ours[0]["Type"] == "ON_DEMAND",
        f"workflow {name} should have one ON_DEMAND trigger, has {ours}",
    )
    actions = ours[0]["Actions"]
    check(
        len(actions) == 1 and "JobName" in actions[0] and "CrawlerName" not in actions[0],
        f"workflow {name} should start the WAP job alone, starts {actions}",
    )
    # No trigger of the account starts a crawler or waits on one: the crawler runs on its
    # own weekly schedule (crawl below). AWS also lists a workflow's nodes; the emulator
    # gives no graph, so the triggers are the proof there.
    crawling = [
        t["Name"]
        for t in everything
        if any("CrawlerName" in a for a in t.get("Actions", []))
        or any("CrawlerName" in c for c in t.get("Predicate", {}).get("Conditions", []))
    ]
    check(not crawling, f"triggers {crawling} put a crawler on the daily path")
    nodes = workflow.get("Graph", {}).get("Nodes", [])
    check(
        all(node.get("Type") != "CRAWLER" for node in nodes),
        f"workflow {name} has a crawler node: {nodes}",
    )
    return actions[0]["JobName"]


EXPECTED_CRAWL_SCHEDULE = "cron(0 6 ? * SUN *)"


def crawl(deployed: Deployed, calls) -> str:
    """The weekly schema check, played once by the tests' stand-in against the table
    Terraform defined: the deployed crawler must target that table (a catalog target, on
    its schedule, logging schema changes), and the raw objects the Lambda wrote must have
    the table's columns; `calls` records the crawl's AWS calls as the crawler's role.
    Returns the table's name."""
    from athena_fake import RAW_TABLE, crawl_raw

    database = deployed.outputs["glue_database"]
    names = deployed.glue.list_crawlers()["CrawlerNames"]
    crawlers = [deployed.glue.get_crawler(Name=n)["Crawler"] for n in names]
    ours = [
        c
        for c in crawlers
        if any(t.get("DatabaseName") == database for t in c["Targets"].get("CatalogTargets", []))
    ]
    check(len(ours) == 1, f"{len(ours)} crawlers have a catalog target in {database}")
    crawler = ours[0]
    (target,) = crawler["Targets"]["CatalogTargets"]
    check(target["Tables"] == [RAW_TABLE], f"the crawler checks {target['Tables']}")
    check(not crawler["Targets"].get("S3Targets"), "the crawler also crawls S3 paths of its own")
    schedule = crawler.get("Schedule", {}).get("ScheduleExpression")
    check(
        schedule == EXPECTED_CRAWL_SCHEDULE,
        f"the crawler runs on {schedule!r}, expected {EXPECTED_CRAWL_SCHEDULE!r}",
    )
    policy = crawler.get("SchemaChangePolicy", {})
    check(
        policy == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
        f"the crawler would change the table: {policy}",
    )
    # The table exists before any crawl: Terraform made it.
    table = deployed.glue.get_table(DatabaseName=database, Name=RAW_TABLE)["Table"]
    location = table["StorageDescriptor"]["Location"]
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    # The crawler reads S3 and writes the catalog as its role: its calls are checked too.
    with calls.as_role(crawler["Role"].rsplit("/", 1)[-1]):
        glue, s3 = client("glue", deployed.endpoint), client("s3", deployed.endpoint)
        differences = crawl_raw(glue, s3, bucket, database, prefix)
    check(not differences, "the raw objects differ from the table: " + "; ".join(differences))
    return RAW_TABLE


def check_installable(deployed: Deployed, uris: list, names: list, built: dict) -> None:
    """The deployed wheels are dist/aws's, and install in the job's order with no index."""
    import tempfile

    import glue_wheels  # the install checks of make package, on what was deployed

    with tempfile.TemporaryDirectory() as tmp:
        wheels = [Path(tmp) / name for name in names]
        for uri, wheel in zip(uris, wheels):
            wheel.write_bytes(deployed.object_bytes(uri))
            check(wheel.read_bytes() == built[wheel.name].read_bytes(), f"{uri} is not dist/aws's")
        problems = glue_wheels.closure_errors(wheels)
        python39 = not problems and glue_wheels.python39()  # pip's own, where there is one
        said = python39 and glue_wheels.offline_install_errors(wheels, python39)
        check(not problems and not said, f"the job's wheels need an index: {problems} {said}")


def run_glue_job(
    deployed: Deployed, job_name: str, athena, log: Path, check_wheels: bool = True
) -> None:
    """glue/wap_job.py as Glue would start it: argv from the job's DefaultArguments, the
    script and the wheels read back from S3; Athena is the DuckDB-backed fake. A later run
    of the same deployment may skip the wheels' install check (`check_wheels`)."""
    job = deployed.glue.get_job(JobName=job_name)["Job"]
    check(job["Command"]["Name"] == "pythonshell", f"job command is {job['Command']['Name']}")
    script = deployed.object_bytes(job["Command"]["ScriptLocation"])
    check(script == (REPO / "glue" / "wap_job.py").read_bytes(), "the deployed script differs")
    arguments = job["DefaultArguments"]
    # Every module the job installs is a wheel under artifacts/glue/, byte for byte what make
    # package built, and they install with no index: nothing names a module for PyPI.
    prefix = f"s3://{arguments['--lake_bucket']}/artifacts/glue/"
    for name in ("--additional-python-modules", "--extra-py-files"):
        for entry in filter(None, arguments.get(name, "").split(",")):
            check(entry.startswith(prefix), f"{name} names {entry}, not a wheel under {prefix}")
    uris = arguments["--extra-py-files"].split(",")
    dist = REPO / "dist" / "aws"
    built = {p.name: p for p in [*dist.glob("marketlake-*.whl"), *dist.glob("glue-wheels/*.whl")]}
    names = [uri.rsplit("/", 1)[-1] for uri in uris]
    check(sorted(names) == sorted(built), f"the job installs {names}, not {sorted(built)}")
    if check_wheels:
        check_installable(deployed, uris, names, built)
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


def query_engine(deployed: Deployed, athena):
    """An AthenaEngine in the dashboards' workgroup, as Grafana queries the lake."""
    from marketlake.engines.athena import AthenaEngine

    return AthenaEngine(
        deployed.outputs["glue_database"],
        deployed.outputs["athena_workgroup"],
        f"s3://{deployed.outputs['lake_bucket']}",
        run_id="rehearsal",
        athena=athena,
        glue=deployed.glue,
        sleep=lambda seconds: None,
    )


def check_result(deployed: Deployed, athena, summary: dict) -> int:
    """daily_prices and every view, queried as Grafana would: the query workgroup."""
    from marketlake.providers.synthetic import SyntheticProvider

    engine = query_engine(deployed, athena)
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
    check_earnings(engine, provider, summary, lo, hi)
    for view in sorted((REPO / "sql" / "views").glob("*.sql")):
        engine.fetch_df(f"SELECT count(*) AS n FROM {view.stem}")  # every view runs
    return rows


def check_earnings(engine, provider, summary: dict, lo: dt.date, hi: dt.date) -> None:
    """The earnings went Lambda -> raw/earnings -> the Glue job -> daily_prices: every report
    of the stand-in published in the window shows on the first bar after it, and the trailing
    P/E is there (the stand-in's history holds four quarters before the window)."""
    # As reported, each on the share basis of the first session after it: the stand-in
    # served them restated for splits up to the fetch, and the lake must undo exactly that.
    expected = {}
    for symbol in summary["fetched"]:
        splits = actions_of(provider, "splits", symbol, hi)
        for _, reported, eps, _ in earnings_of(provider, symbol, hi, restated=False):
            day = dt.date.fromisoformat(reported)
            if lo <= day < hi:
                expected[(symbol, day)] = (float(eps), splits)
    shown = engine.fetch_df(
        "SELECT symbol, trade_date, eps_reported_date, eps_quarter FROM daily_prices "
        f"WHERE eps_quarter IS NOT NULL AND eps_reported_date >= DATE '{lo.isoformat()}'"
    )
    check(
        len(shown) == len(expected),
        f"daily_prices shows {len(shown)} reports, the stand-in published {len(expected)}",
    )
    check(
        bool(expected), "the stand-in published no report in the window: the check proves nothing"
    )
    for symbol, trade_date, reported, eps in shown.itertuples(index=False):
        day, session = (dt.date.fromisoformat(str(d)[:10]) for d in (reported, trade_date))
        as_reported, splits = expected.get((symbol, day), (math.nan, []))
        want = as_reported / math.prod(f for ex, f in splits if day < ex <= session)
        check(
            math.isclose(float(eps), want, rel_tol=1e-9),
            f"{symbol}'s report of {day} shows EPS {eps} on {session}, the stand-in's is {want}",
        )
    with_pe = engine.fetch_df("SELECT count(pe_ratio_ttm) AS n FROM daily_prices")
    check(int(with_pe["n"][0]) > 0, "daily_prices has no pe_ratio_ttm: earnings did not arrive")


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
