"""Every AWS API the code calls is granted to the role that runs it, and nothing more broad:
the calls are collected with `ast` over each entry point's real import closure (boto3 client
methods, checked against botocore's bundled service models), then mapped to IAM actions."""

from __future__ import annotations

import fnmatch

import pytest
from infra_contract import (
    GLUE_SCRIPT,
    LAMBDA_HANDLER,
    allow_statements,
    aws_calls,
    granted_actions,
    interp,
    resources_for,
    terraform,
)

from marketlake.lake import audit as runlog
from marketlake.lake import raw, state
from marketlake.wap import pipeline as wap
from marketlake.wap import versions

# boto3 method -> IAM action. A call that is missing here fails test_every_call_is_mapped.
IAM_ACTION = {
    ("s3", "get_object"): "s3:GetObject",
    ("s3", "head_object"): "s3:GetObject",
    ("s3", "put_object"): "s3:PutObject",
    ("s3", "delete_objects"): "s3:DeleteObject",
    ("s3", "list_objects"): "s3:ListBucket",
    ("s3", "list_objects_v2"): "s3:ListBucket",
    ("secretsmanager", "get_secret_value"): "secretsmanager:GetSecretValue",
    ("glue", "start_workflow_run"): "glue:StartWorkflowRun",
    ("glue", "get_table"): "glue:GetTable",
    ("glue", "get_tables"): "glue:GetTables",
    ("glue", "create_table"): "glue:CreateTable",
    ("glue", "update_table"): "glue:UpdateTable",
    ("glue", "delete_table"): "glue:DeleteTable",
    ("glue", "get_partitions"): "glue:GetPartitions",
    ("glue", "batch_create_partition"): "glue:BatchCreatePartition",
    ("glue", "batch_update_partition"): "glue:BatchUpdatePartition",
    ("glue", "batch_delete_partition"): "glue:BatchDeletePartition",
    ("athena", "start_query_execution"): "athena:StartQueryExecution",
    ("athena", "get_query_execution"): "athena:GetQueryExecution",
    ("athena", "get_query_results"): "athena:GetQueryResults",
    ("athena", "stop_query_execution"): "athena:StopQueryExecution",
    ("sns", "publish"): "sns:Publish",
}

# entry point -> (the resource that runs it, its role, the policy document of that role)
RUNNERS = {
    "lambda": (LAMBDA_HANDLER, "ingest", "ingest"),
    "glue": (GLUE_SCRIPT, "glue_job", "glue_job"),
}


def actions_needed(entry) -> set[str]:
    return {IAM_ACTION[call] for call in aws_calls(entry) if call in IAM_ACTION}


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_every_call_is_mapped(runner):
    entry, _, _ = RUNNERS[runner]
    calls = aws_calls(entry)
    assert calls, f"found no AWS call in {entry.name}'s closure: the collector is broken"
    unmapped = calls - set(IAM_ACTION)
    assert not unmapped, f"add the IAM action of {sorted(unmapped)} to IAM_ACTION"


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_every_action_the_code_needs_is_granted_to_its_role(runner):
    entry, role, document = RUNNERS[runner]
    missing = actions_needed(entry) - granted_actions(document)
    assert not missing, (
        f"{entry.name} calls APIs needing {sorted(missing)}, which the {role} role's "
        f"policy (aws_iam_policy_document.{document}) does not grant"
    )


def test_each_runner_runs_as_its_role_with_that_policy():
    tf = terraform()
    assert tf.resource("aws_lambda_function", "ingest")["role"] == "${aws_iam_role.ingest.arn}"
    assert tf.resource("aws_glue_job", "wap")["role_arn"] == "${aws_iam_role.glue_job.arn}"
    assert tf.resource("aws_glue_crawler", "raw")["role"] == "${aws_iam_role.crawler.arn}"
    for _, role, document in RUNNERS.values():
        attached = [
            body
            for body in tf.of_type("aws_iam_role_policy").values()
            if body["role"] == f"${{aws_iam_role.{role}.id}}"
        ]
        assert [b["policy"] for b in attached] == [
            f"${{data.aws_iam_policy_document.{document}.json}}"
        ]


def test_no_role_is_granted_a_wildcard_action():
    tf = terraform()
    for name, body in tf.of_type("aws_iam_role_policy").items():
        document = interp(body["policy"]).split(".")[2]
        for action in granted_actions(document):
            assert action != "*" and not action.endswith(":*"), (
                f"aws_iam_role_policy.{name} allows {action}"
            )
    for name, body in tf.of_type("aws_iam_role_policy_attachment").items():
        assert body["policy_arn"].endswith("policy/service-role/AmazonGrafanaAthenaAccess"), (
            f"aws_iam_role_policy_attachment.{name}: only the Grafana Athena policy is managed"
        )


def covers(patterns: list[str], key: str) -> bool:
    lake = "${aws_s3_bucket.lake.arn}/"
    return any(fnmatch.fnmatchcase(key, p.removeprefix(lake)) for p in patterns if lake in p)


def test_the_lambda_writes_only_its_zones():
    written = resources_for("ingest", "s3:PutObject")
    read = resources_for("ingest", "s3:GetObject")
    keys = [
        raw.raw_key(__import__("datetime").date(2024, 7, 3), "NVDA"),
        f"{raw.QUARANTINE_PREFIX}ingest_date=2024-07-03/NVDA.20240703T220000.csv",
        state.STATE_KEY,
        f"{state.DIGESTS_PREFIX}NVDA.json",
        f"{runlog.INGEST_RUNS_PREFIX}/20240703T220000000Z-ab12.parquet",
    ]
    for key in keys:
        assert covers(written, key) and covers(read, key), f"the Lambda cannot write {key}"
    # aws.run reads the build registry to restart a build an earlier run could not start.
    assert covers(read, versions.registry_key(wap.TABLE))
    for key in (
        f"{wap.CURATED_PREFIX}/version=x/year=2024/a.parquet",
        f"{runlog.PIPELINE_RUNS_PREFIX}/x.parquet",
        f"{runlog.DQ_RESULTS_PREFIX}/x.parquet",
        versions.registry_key(wap.TABLE),
        "reference/xnys_sessions/data.parquet",
    ):
        assert not covers(written, key), f"the Lambda may write {key}, which is not its zone"
    statements = allow_statements("ingest")
    assert not [a for s in statements for a in s["actions"] if a.startswith("athena:")]
    assert not [r for s in statements for r in s["resources"] if "curated" in r]
    assert [a for s in statements for a in s["actions"] if a.startswith("glue:")] == [
        "glue:StartWorkflowRun"
    ]
    assert "s3:DeleteObject" not in granted_actions("ingest")


def test_the_lambda_starts_only_its_workflow_and_reads_only_its_secret():
    tf = terraform()
    (workflow_arn,) = resources_for("ingest", "glue:StartWorkflowRun")
    assert workflow_arn.endswith(":workflow/${local.workflow_name}")
    assert tf.resource("aws_glue_workflow", "build")["name"] == "${local.workflow_name}"
    assert resources_for("ingest", "secretsmanager:GetSecretValue") == [
        "${aws_secretsmanager_secret.alphavantage.arn}"
    ]


def test_the_build_writes_its_zones():
    written = resources_for("glue_job", "s3:PutObject")
    deleted = resources_for("glue_job", "s3:DeleteObject")
    for key in (
        f"{wap.CURATED_PREFIX}/version=x/year=2024/a.parquet",
        *(f"{prefix}/x.parquet" for prefix, _ in runlog.AUDIT_TABLES.values()),
        versions.registry_key(wap.TABLE),
        state.STATE_KEY,  # the build clears the rebuild flag there
        "reference/xnys_sessions/data.parquet",  # AthenaEngine.register_frame
        "tmp/athena/run/unread_raw/0.parquet",  # AthenaEngine.materialize scratch
    ):
        assert covers(written, key) and covers(deleted, key), f"the build cannot write {key}"
    read = resources_for("glue_job", "s3:GetObject")
    assert covers(read, raw.raw_key(__import__("datetime").date(2024, 7, 3), "NVDA"))
    assert not covers(written, raw.raw_key(__import__("datetime").date(2024, 7, 3), "NVDA")), (
        "raw CSV is never edited: the build must not be able to write it"
    )
    assert resources_for("glue_job", "athena:StartQueryExecution") == [
        "${aws_athena_workgroup.build.arn}"
    ]
    assert resources_for("glue_job", "sns:Publish") == ["${aws_sns_topic.alerts.arn}"]
