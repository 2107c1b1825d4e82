"""What the roles' policies must never grant, read from the HCL. Whether they grant what the
code needs is proven by `make rehearse`: every AWS call the Lambda and the Glue job make is
recorded and evaluated against the role's policy as deployed (infra/aws_calls.py)."""

from __future__ import annotations

import datetime as dt
import fnmatch

from infra_contract import (
    allow_statements,
    granted_actions,
    interp,
    resources_for,
    terraform,
)

from marketlake import lock
from marketlake.lake import audit as runlog
from marketlake.lake import earnings, raw
from marketlake.lake.state import landed_key
from marketlake.storage import LocalStore
from marketlake.wap import pipeline as wap
from marketlake.wap import versions

# runner -> (its role, the policy document of that role)
RUNNERS = {
    "lambda": ("ingest", "ingest"),
    "glue": ("glue_job", "glue_job"),
}


def test_each_runner_runs_as_its_role_with_that_policy():
    tf = terraform()
    assert tf.resource("aws_lambda_function", "ingest")["role"] == "${aws_iam_role.ingest.arn}"
    assert tf.resource("aws_glue_job", "wap")["role_arn"] == "${aws_iam_role.glue_job.arn}"
    assert tf.resource("aws_glue_crawler", "raw")["role"] == "${aws_iam_role.crawler.arn}"
    for role, document in RUNNERS.values():
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
    # It deletes nothing but the lake's lock, on release.
    assert resources_for("ingest", "s3:DeleteObject") == [
        f"${{aws_s3_bucket.lake.arn}}/{lock.LOCK_KEY}"
    ]


def test_the_ingests_audit_objects_are_written_by_the_lambda_and_read_by_the_views(tmp_path):
    """Keys the ingest's own writers make (its run log, the bars it quarantined): the Lambda
    may put them, and the Glue job (whose Athena queries read the views over them) and
    Grafana may get them."""
    store = LocalStore(tmp_path)
    moment = dt.datetime(2024, 7, 3, 21, 0, tzinfo=dt.timezone.utc)
    quarantined = runlog.write_ingest_quarantine(
        store, [{"symbol": "NVDA", "reason": "open is not positive"}], "ingest", "x", "k", moment
    )
    logged = f"{runlog.INGEST_RUNS_PREFIX}/{runlog.new_run_id(moment)}.parquet"
    for key in (quarantined, logged):
        assert covers(resources_for("ingest", "s3:PutObject"), key), f"the Lambda writes {key}"
        assert covers(resources_for("glue_job", "s3:GetObject"), key), f"the build reads {key}"
        grafana = resources_for("grafana_lake_read", "s3:GetObject")
        assert covers(grafana, key), f"Grafana's Athena queries read {key}"


def test_the_lambda_may_land_and_quarantine_earnings_and_the_build_read_them():
    """The keys ingest's earnings writers make (lake/earnings.py): the raw object, its landed
    record, a quarantined answer's rows."""
    day = dt.date(2024, 7, 3)
    raw_key = earnings.EARNINGS.key(day, "NVDA")
    keys = (raw_key, landed_key(raw_key), earnings.EARNINGS.quarantine_key(day, "NVDA", "x"))
    for key in keys:
        for action in ("s3:PutObject", "s3:GetObject"):
            assert covers(resources_for("ingest", action), key), (
                f"the Lambda may not {action} {key}"
            )
    for key in keys[:2]:
        assert covers(resources_for("glue_job", "s3:GetObject"), key), f"the build reads {key}"


def test_both_runners_may_take_renew_and_release_the_lakes_lock():
    """store_lock creates state/lock.json (PutObject), reads it when taken (GetObject) and
    deletes it on release (DeleteObject, which S3 authorizes with GetObject when it carries
    If-Match). Granted on that one key: a wider grant on state/ would let the Lambda delete
    the ingest state."""
    for role, document in RUNNERS.values():
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            granted = resources_for(document, action)
            assert covers(granted, lock.LOCK_KEY), f"{role} may not {action} {lock.LOCK_KEY}"
    (statement,) = [s for s in allow_statements("ingest") if s.get("sid") == "TheLakesLock"]
    assert statement["resources"] == [f"${{aws_s3_bucket.lake.arn}}/{lock.LOCK_KEY}"]


def test_the_lambda_starts_only_its_workflow_and_reads_only_its_secret():
    tf = terraform()
    (workflow_arn,) = resources_for("ingest", "glue:StartWorkflowRun")
    assert workflow_arn.endswith(":workflow/${local.workflow_name}")
    assert tf.resource("aws_glue_workflow", "build")["name"] == "${local.workflow_name}"
    # The chosen provider's key, no other (secrets.tf).
    assert resources_for("ingest", "secretsmanager:GetSecretValue") == [
        "${local.api_key_secret_arn}"
    ]
    assert tf.locals["api_key_secret_arn"] == (
        '${var.data_provider == "polygon" ? one(aws_secretsmanager_secret.polygon[*].arn) : '
        "aws_secretsmanager_secret.alphavantage.arn}"
    )


def test_the_build_never_writes_raw_and_stays_in_its_workgroup_and_topic():
    written = resources_for("glue_job", "s3:PutObject")
    assert not covers(written, raw.raw_key(dt.date(2024, 7, 3), "NVDA")), (
        "raw CSV is never edited: the build must not be able to write it"
    )
    assert resources_for("glue_job", "athena:StartQueryExecution") == [
        "${aws_athena_workgroup.build.arn}"
    ]
    assert resources_for("glue_job", "sns:Publish") == ["${aws_sns_topic.alerts.arn}"]
