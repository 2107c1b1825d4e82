"""The rehearsal's Glue checks (infra/weekday.py check_workflow and crawl) against moto: they
pass for the deployed shape (the workflow starts the job alone; the crawler is a weekly
schema check of the Terraform-defined raw table) and fail, naming why, for anything else."""

from __future__ import annotations

import types

import aws_calls
import boto3
import pytest
import weekday

from marketlake.lake import raw

weekday.sys.path.insert(0, str(weekday.TESTS_INTEGRATION))
import athena_fake  # noqa: E402  (the path above)

BUCKET, DATABASE, WORKFLOW, JOB = "lake", "marketlake", "marketlake-build", "marketlake-wap"
ROLE = "arn:aws:iam::123456789012:role/glue"
HEADER = ",".join(raw.RAW_COLUMNS)


@pytest.fixture
def deployed(moto_aws):
    """What `make deploy` leaves, as boto3 calls: the raw table, the weekly crawler, the
    workflow with its one trigger; one workflow run, as the Lambda starts it."""
    glue, s3 = boto3.client("glue"), boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    glue.create_database(DatabaseInput={"Name": DATABASE})
    glue.create_table(DatabaseName=DATABASE, TableInput=athena_fake.raw_table_input(BUCKET))
    create_crawler(glue)
    glue.create_job(
        Name=JOB, Role=ROLE, Command={"Name": "pythonshell", "ScriptLocation": "s3://x/y"}
    )
    glue.create_workflow(Name=WORKFLOW, MaxConcurrentRuns=1)
    glue.create_trigger(
        Name="marketlake-start-build",
        WorkflowName=WORKFLOW,
        Type="ON_DEMAND",
        Actions=[{"JobName": JOB}],
    )
    run = glue.start_workflow_run(Name=WORKFLOW)["RunId"]
    yield types.SimpleNamespace(
        glue=glue,
        s3=s3,
        endpoint=None,  # moto in-process: boto3's own endpoints
        env={"GLUE_WORKFLOW_NAME": WORKFLOW},
        outputs={"glue_database": DATABASE},
        summary={"workflow_run_id": run},
    )


def raw_table() -> str:
    return athena_fake.RAW_TABLE


def create_crawler(glue, **change) -> None:
    """The crawler as terraform/glue.tf makes it, less the classifier (moto has none), with
    `change` (moto has no UpdateCrawler: a changed crawler is made anew)."""
    glue.create_crawler(
        **{
            "Name": "marketlake-raw-crawler",
            "Role": ROLE,
            "DatabaseName": DATABASE,
            "Targets": {"CatalogTargets": [{"DatabaseName": DATABASE, "Tables": [raw_table()]}]},
            "Schedule": weekday.EXPECTED_CRAWL_SCHEDULE,
            "SchemaChangePolicy": {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
            "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVERYTHING"},
            **change,
        }
    )


def land(s3, day: str, symbol: str, header: str = HEADER) -> str:
    key = f"{raw.RAW_PREFIX}ingest_date={day}/{symbol}.csv"
    row = f"{symbol},{day},1,2,0.5,1.5,100,synthetic,{day} 22:00:00.000"
    s3.put_object(Bucket=BUCKET, Key=key, Body=f"{header}\r\n{row}\r\n".encode())
    return key


def partitions(glue) -> list[str]:
    found = glue.get_partitions(DatabaseName=DATABASE, TableName=raw_table())["Partitions"]
    return sorted(p["Values"][0] for p in found)


def test_the_workflow_starts_the_job_alone(deployed):
    assert weekday.check_workflow(deployed, deployed.summary) == JOB


def test_a_crawler_on_the_daily_path_fails_the_check(deployed):
    deployed.glue.create_trigger(
        Name="crawled-then-build",
        WorkflowName=WORKFLOW,
        Type="CONDITIONAL",
        Predicate={
            "Logical": "ANY",
            "Conditions": [
                {
                    "LogicalOperator": "EQUALS",
                    "CrawlerName": "marketlake-raw-crawler",
                    "CrawlState": "SUCCEEDED",
                }
            ],
        },
        Actions=[{"JobName": JOB}],
    )
    with pytest.raises(AssertionError, match="one ON_DEMAND trigger"):
        weekday.check_workflow(deployed, deployed.summary)


def test_a_trigger_elsewhere_that_starts_the_crawler_fails_the_check(deployed):
    deployed.glue.create_trigger(
        Name="nightly-crawl", Type="ON_DEMAND", Actions=[{"CrawlerName": "marketlake-raw-crawler"}]
    )
    with pytest.raises(AssertionError, match="nightly-crawl"):
        weekday.check_workflow(deployed, deployed.summary)


def test_the_weekly_check_adds_what_the_table_lacks_and_finds_no_difference(deployed):
    land(deployed.s3, "2024-01-02", "NVDA")
    land(deployed.s3, "2024-01-03", "NVDA")
    calls = aws_calls.Recorder()
    assert weekday.crawl(deployed, calls) == raw_table()
    assert partitions(deployed.glue) == ["2024-01-02", "2024-01-03"]
    # The crawl's own calls are recorded as the crawler's role, for the IAM check.
    made = {(c.role, c.service, c.operation) for c in calls.calls}
    assert {("glue", "s3", "ListObjectsV2"), ("glue", "glue", "GetTable")} <= made
    assert weekday.crawl(deployed, calls) == raw_table()  # again: the partitions exist already


def test_a_raw_object_with_other_columns_is_reported_and_not_applied(deployed):
    land(deployed.s3, "2024-01-02", "NVDA")
    changed = land(deployed.s3, "2024-01-03", "AMD", header=HEADER + ",vwap")
    with pytest.raises(AssertionError, match=rf"{changed}: columns .*'vwap'"):
        weekday.crawl(deployed, aws_calls.Recorder())
    table = deployed.glue.get_table(DatabaseName=DATABASE, Name=raw_table())["Table"]
    columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    assert columns == raw.RAW_COLUMNS  # logged, never applied
    assert partitions(deployed.glue) == ["2024-01-02"]


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"Schedule": "cron(0 6 * * ? *)"}, "runs on"),
        (
            {
                "SchemaChangePolicy": {
                    "UpdateBehavior": "UPDATE_IN_DATABASE",
                    "DeleteBehavior": "LOG",
                }
            },
            "would change",
        ),
        (
            {"Targets": {"CatalogTargets": [{"DatabaseName": DATABASE, "Tables": ["other"]}]}},
            "checks",
        ),
    ],
)
def test_a_crawler_that_is_not_the_weekly_check_fails(deployed, change, reason):
    deployed.glue.delete_crawler(Name="marketlake-raw-crawler")
    create_crawler(deployed.glue, **change)
    with pytest.raises(AssertionError, match=reason):
        weekday.crawl(deployed, aws_calls.Recorder())
