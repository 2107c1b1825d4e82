"""The commands that write on the deployed lake: `marketlake --home s3://bucket import`,
`ingest`, `build` (the Glue job followed, or its code --here), `rollback` and `verify`, on
moto's S3 and Glue with FakeAthena for Athena, and the lake's lock in the bucket.

Glue's runtime is stood in for by JobRunningGlue: moto records the job run and its state,
and the job's own entry point (marketlake.aws.glue_job) runs in-process with the run's
arguments when it starts, as the rehearsal does; a job that raises ends FAILED with its line
as Glue's ErrorMessage."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from test_cli_remote import (  # noqa: F401  (environment: autouse, it applies here too)
    DESCRIPTOR,
    built,
    cli,
    deploy,
    environment,
    lake,
    one_error_line,
)
from test_glue_job import (
    BUCKET,
    DATABASE,
    REGION,
    SECOND_BARS,
    SECOND_INGEST,
    WORKGROUP,
    Lake,
)
from test_glue_job import ingested as ingested_at

from marketlake import lakes
from marketlake.aws import glue_job
from marketlake.engines.athena import AthenaEngine
from marketlake.lake.state import load_state
from marketlake.lock import LOCK_KEY, store_lock
from marketlake.wap.versions import load_registry

JOB = DESCRIPTOR["glue_job"]
WORKFLOW = DESCRIPTOR["glue_workflow"]


class JobRunningGlue:
    """moto's Glue client, whose start_job_run also runs the job's code (moto keeps the
    run's state and arguments; Glue would run the script)."""

    def __init__(self, made: Lake) -> None:
        self.made = made
        self.glue = boto3.client("glue", region_name=REGION)
        self.failures: dict[str, str] = {}
        self.started: list[dict] = []

    def __getattr__(self, name):
        return getattr(self.glue, name)

    def start_job_run(self, JobName: str, Arguments: dict | None = None, **rest):
        answer = self.glue.start_job_run(JobName=JobName, Arguments=Arguments or {}, **rest)
        run_id = answer["JobRunId"]
        run = self.glue.get_job_run(JobName=JobName, RunId=run_id)["JobRun"]
        self.started.append(run["Arguments"])
        argv = ["wap_job.py", "--JOB_RUN_ID", run_id]
        for key, value in run["Arguments"].items():
            argv += [key, value]
        made = self.made
        try:
            glue_job.run(argv, athena=made.athena, glue=made.glue, s3=made.s3, sns=made.sns)
        except Exception as exc:  # Glue shows the job's last error line
            self.failures[run_id] = f"{type(exc).__name__}: {exc}"
        return answer

    def get_job_run(self, JobName: str, RunId: str, **rest):
        answer = self.glue.get_job_run(JobName=JobName, RunId=RunId, **rest)
        if RunId in self.failures:
            answer["JobRun"]["JobRunState"] = "FAILED"
            answer["JobRun"]["ErrorMessage"] = self.failures[RunId]
        return answer


@pytest.fixture
def remote(lake, monkeypatch):  # noqa: F811  (the fixture imported above)
    """The lake of test_cli_remote with the deployed job and workflow in moto's Glue."""
    lake.glue.create_job(
        Name=JOB,
        Role="arn:aws:iam::123456789012:role/marketlake-glue-job",
        Command={"Name": "pythonshell", "ScriptLocation": f"s3://{BUCKET}/wap_job.py"},
        DefaultArguments={
            "--lake_bucket": BUCKET,
            "--glue_database": DATABASE,
            "--athena_workgroup": WORKGROUP,
            "--alerts_topic_arn": lake.topic,
        },
        ExecutionProperty={"MaxConcurrentRuns": 1},
    )
    lake.glue.create_workflow(Name=WORKFLOW)
    glue = JobRunningGlue(lake)
    lake.runner = glue
    plain = lakes.client

    def client(service, region):
        return glue if service == "glue" else plain(service, region)

    monkeypatch.setattr(lakes, "client", client)
    return lake


def workflow_runs(made: Lake) -> list:
    return made.glue.get_workflow_runs(Name=WORKFLOW)["Runs"]


def bars_file(tmp_path, name: str = "ZZZ.csv", rows: int = 3):
    lines = ["date,open,high,low,close,volume"]
    day = dt.date(2024, 1, 2)
    while len(lines) <= rows:
        if day.weekday() < 5:
            lines.append(f"{day},10,11,9,10.5,1000")
        day += dt.timedelta(days=1)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


# -- import ----------------------------------------------------------------------------------


def test_import_lands_in_the_bucket_and_starts_the_deployed_build(remote, tmp_path):
    deploy(remote)
    path = bars_file(tmp_path)
    result = cli("import", str(path))
    assert result.exit_code == 0, result.output
    assert "import: ZZZ: 3 bar(s) landed (2024-01-02 .. 2024-01-04)" in result.stdout
    assert f"started Glue workflow {WORKFLOW}" in result.stdout
    raw = remote.keys("raw/daily_prices/")
    assert len(raw) == 1 and raw[0].endswith("/ZZZ.csv")
    assert remote.keys("state/raw_landed/")  # recorded, as every landing is
    assert len(workflow_runs(remote)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ZZZ.csv"]  # no local lake
    assert LOCK_KEY not in remote.keys("state/")  # released


def test_import_no_build_says_how_to_build(remote, tmp_path):
    deploy(remote)
    result = cli("import", str(bars_file(tmp_path)), "--no-build")
    assert result.exit_code == 0, result.output
    assert f"next: marketlake --home s3://{BUCKET}/ build" in result.stdout
    assert workflow_runs(remote) == []


def test_import_of_splits_lands_in_the_bucket(remote, tmp_path):
    deploy(remote)
    path = tmp_path / "ZZZ.csv"
    path.write_text("date,split_factor\n2024-01-03,2\n")
    result = cli("import", "--splits", str(path), "--no-build")
    assert result.exit_code == 0, result.output
    assert "import: ZZZ: 1 splits row(s) landed" in result.stdout
    assert remote.keys("raw/splits/")


def test_a_bad_file_lands_nothing_in_the_bucket(remote, tmp_path):
    deploy(remote)
    path = tmp_path / "ZZZ.csv"
    path.write_text("date,open,high\n2024-01-02,1,2\n")
    line = one_error_line(cli("import", str(path)))
    assert "ZZZ.csv" in line
    assert remote.keys("raw/") == [] and workflow_runs(remote) == []


def test_import_while_another_command_holds_the_lake_is_refused(remote, tmp_path):
    deploy(remote)
    with store_lock(remote.store, "glue job marketlake-wap run jr_9"):
        line = one_error_line(cli("import", str(bars_file(tmp_path))))
    assert "jr_9" in line
    assert remote.keys("raw/") == []


# -- ingest ----------------------------------------------------------------------------------


def test_ingest_without_a_vendor_key_is_refused_before_anything_lands(remote, monkeypatch):
    for name in ("ALPHAVANTAGE_API_KEY", "POLYGON_API_KEY", "MARKETLAKE_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    deploy(remote)
    line = one_error_line(cli("ingest", "--tickers", "AAA"))
    assert "needs a vendor key" in line and "--provider synthetic" in line
    assert remote.keys("raw/") == [] and remote.keys("state/") == ["state/deployment.json"]


def test_ingest_continues_from_the_lambdas_state_and_starts_the_build(remote, monkeypatch):
    for name in ("ALPHAVANTAGE_API_KEY", "POLYGON_API_KEY", "MARKETLAKE_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    built(remote)  # AAA and BBB at 2024-01-31 in the Lambda's state
    result = cli(
        "ingest", "--provider", "synthetic", "--tickers", "AAA,BBB", "--as-of", "2024-02-07"
    )
    assert result.exit_code == 0, result.output
    assert "new bars: 10 (AAA 5, BBB 5)" in result.stdout  # Feb 1-7 only: from its watermark
    state = load_state(remote.store)
    assert state.symbols["AAA"].watermark == "2024-02-07"
    assert f"started Glue workflow {WORKFLOW}" in result.stdout
    assert len(workflow_runs(remote)) == 1


# -- build -------------------------------------------------------------------------------------


def test_build_starts_the_job_and_follows_it_to_what_it_published(remote, monkeypatch):
    monkeypatch.setattr("marketlake.cli.remote.FOLLOW_SECONDS", 0)
    built(remote)
    first = load_registry(remote.store, "daily_prices").current
    remote.land(SECOND_INGEST, SECOND_BARS, ingested_at(SECOND_INGEST))
    result = cli("build")
    assert result.exit_code == 0, result.output
    current = load_registry(remote.store, "daily_prices").current
    assert current != first
    assert f"started Glue job {JOB} run jr_" in result.stdout
    assert f"build: run {current} published to daily_prices" in result.stdout
    assert remote.runner.started[0].get("--full_build") is None  # incremental


def test_build_full_asks_the_job_for_a_full_rebuild(remote, monkeypatch):
    monkeypatch.setattr("marketlake.cli.remote.FOLLOW_SECONDS", 0)
    built(remote)
    result = cli("build", "--full")
    assert result.exit_code == 0, result.output
    assert remote.runner.started[0]["--full_build"] == "true"
    assert "(a full rebuild)" in result.stdout


def test_a_failed_job_is_one_line_with_glues_error(remote, monkeypatch):
    monkeypatch.setattr("marketlake.cli.remote.FOLLOW_SECONDS", 0)
    built(remote)
    remote.s3.delete_object(Bucket=BUCKET, Key=remote.keys("raw/daily_prices/")[0])
    line = one_error_line(cli("build", "--full"))
    assert "ended FAILED" in line and f"Glue job {JOB}" in line
    assert "status" in line


def test_build_while_the_job_runs_is_refused(remote):
    from moto.moto_api import state_manager

    built(remote)
    # A run that stays STARTING however often it is looked at (moto advances it on reads).
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 1000})
    try:
        remote.glue.start_job_run(JobName=JOB)
        line = one_error_line(cli("build"))
    finally:
        state_manager.unset_transition("glue::job_run")
    assert "already running" in line and JOB in line


def test_build_while_a_rollback_holds_the_lake_is_refused_before_the_job(remote):
    built(remote)
    with store_lock(remote.store, "marketlake rollback by ann on laptop (pid 7)"):
        line = one_error_line(cli("build"))
    assert "rollback by ann" in line
    assert remote.runner.started == []


def test_build_here_runs_the_jobs_code_with_its_arguments(remote):
    built(remote)
    first = load_registry(remote.store, "daily_prices").current
    remote.land(SECOND_INGEST, SECOND_BARS, ingested_at(SECOND_INGEST))
    before = len(remote.athena.statements)
    result = cli("build", "--here")
    assert result.exit_code == 0, result.output
    current = load_registry(remote.store, "daily_prices").current
    assert current != first and f"build: run {current}" in result.stdout
    workgroups = {wg for _, wg in remote.athena.contexts()[before:]}
    assert workgroups == {WORKGROUP}  # the job's build workgroup, not the query one
    assert not any(t.startswith("tmp_") for t in remote.tables())  # scratch dropped
    assert LOCK_KEY not in remote.keys("state/")


def test_build_on_an_empty_deployed_lake_says_to_ingest_first(remote):
    deploy(remote)
    line = one_error_line(cli("build"))
    assert "nothing to build" in line and "ingest" in line


# -- rollback ----------------------------------------------------------------------------------


def second_version(made: Lake) -> tuple[str, str]:
    built(made)
    first = load_registry(made.store, "daily_prices").current
    made.land(SECOND_INGEST, SECOND_BARS, ingested_at(SECOND_INGEST))
    result, _ = made.build(dt.datetime(2024, 2, 8, 23, tzinfo=dt.timezone.utc), "second")
    return first, result.run_id


def version_table(made: Lake, run_id: str) -> str:
    partitions = load_registry(made.store, "daily_prices").get(run_id).partitions
    return AthenaEngine.version_table("daily_prices", partitions)


def test_rollback_switches_the_view_and_the_registry(remote):
    first, second = second_version(remote)
    assert remote.version_table() == version_table(remote, second)
    newest = "SELECT max(trade_date) AS d FROM daily_prices"
    assert str(remote.read(newest)["d"][0]) == "2024-02-07"
    result = cli("rollback")
    assert result.exit_code == 0, result.output
    assert f"daily_prices now reads run {first}" in result.stdout
    assert load_registry(remote.store, "daily_prices").current == first
    assert remote.version_table() == version_table(remote, first)
    assert str(remote.read(newest)["d"][0]) == "2024-01-31"
    status = cli("status")
    assert status.exit_code == 0 and "rolled_back" in status.stdout


def test_rollback_to_a_run(remote):
    _, second = second_version(remote)
    cli("rollback")
    result = cli("rollback", "--to", second)
    assert result.exit_code == 0, result.output
    assert load_registry(remote.store, "daily_prices").current == second


def test_rollback_while_a_build_holds_the_lake_is_refused(remote):
    _, second = second_version(remote)
    with store_lock(remote.store, "glue job marketlake-wap run jr_42"):
        line = one_error_line(cli("rollback"))
    assert "jr_42" in line
    assert load_registry(remote.store, "daily_prices").current == second


def test_rollback_with_no_lake_yet_is_one_line(remote):
    deploy(remote)
    assert "no lake yet" in one_error_line(cli("rollback"))


# -- verify, and what stays local ----------------------------------------------------------


def test_verify_reads_the_bucket_and_names_a_damaged_object(remote):
    built(remote)
    clean = cli("verify")
    assert clean.exit_code == 0, clean.output
    assert "no damage found" in clean.stdout
    key = remote.keys("raw/daily_prices/")[0]
    body = remote.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    remote.s3.put_object(Bucket=BUCKET, Key=key, Body=body.replace(b",1", b",2", 1))
    damaged = cli("verify")
    assert damaged.exit_code == 1
    assert key in damaged.stdout


# -- tickers ---------------------------------------------------------------------------------


def test_tickers_on_s3_change_the_buckets_state_under_its_lock(remote):
    built(remote)  # the Lambda's state: AAA and BBB, no list of tickers recorded
    listed = cli("tickers", "list")
    assert listed.exit_code == 0, listed.output
    assert "AAA" in listed.stdout and "BBB" in listed.stdout
    added = cli("tickers", "add", "CCC")
    assert added.exit_code == 0, added.output
    assert "Terraform's `tickers`" in added.stdout  # the Lambda's are not these
    assert "CCC" in (load_state(remote.store).universe or [])
    assert LOCK_KEY not in remote.keys("state/")
    with store_lock(remote.store, "glue job marketlake-wap run jr_7"):
        assert "jr_7" in one_error_line(cli("tickers", "remove", "CCC"))
    assert "CCC" in (load_state(remote.store).universe or [])


def test_a_purge_on_s3_holds_for_the_deployed_build(remote, monkeypatch):
    monkeypatch.setattr("marketlake.cli.remote.FOLLOW_SECONDS", 0)
    built(remote)
    purged = cli("tickers", "remove", "BBB", "--purge")
    assert purged.exit_code == 0, purged.output
    assert f"next: marketlake --home s3://{BUCKET}/ build" in purged.stdout
    assert "BBB" in load_state(remote.store).purged
    result = cli("build")
    assert result.exit_code == 0, result.output
    symbols = remote.read("SELECT DISTINCT symbol FROM daily_prices ORDER BY symbol")
    assert list(symbols["symbol"]) == ["AAA"]
    assert remote.keys("raw/daily_prices/")  # raw kept, for audit
