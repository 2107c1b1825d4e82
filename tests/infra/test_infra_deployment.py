"""The deployment descriptor (terraform/deployment.tf) against what the CLI reads from it
(marketlake.lakes): same keys, the resources the CLI must reach, written by the deploy only."""

from __future__ import annotations

import fnmatch

from infra_contract import resources_for, terraform

from marketlake import lakes

# Each key -> the Terraform value it must hold: the CLI queries in the enforcing workgroup
# (not the build's) and starts the workflow the Lambda starts.
EXPECTED = {
    "region": "${var.region}",
    "glue_database": "${aws_glue_catalog_database.lake.name}",
    "athena_workgroup": "${aws_athena_workgroup.lake.name}",
    "glue_job": "${aws_glue_job.wap.name}",
    "glue_workflow": "${aws_glue_workflow.build.name}",
    "raw_crawler": "${aws_glue_crawler.raw.name}",
}


def test_the_descriptor_holds_exactly_what_the_cli_reads():
    descriptor = terraform().locals["deployment_descriptor"]
    assert set(descriptor) == set(lakes.DESCRIPTOR_KEYS)
    assert descriptor["format"] == lakes.DESCRIPTOR_FORMAT
    assert {k: v for k, v in descriptor.items() if k != "format"} == EXPECTED


def test_the_descriptor_is_written_into_the_lake_where_the_cli_looks():
    body = terraform().resource("aws_s3_object", "deployment")
    assert body["bucket"] == "${aws_s3_bucket.lake.id}"
    assert body["key"] == lakes.DESCRIPTOR_KEY
    assert body["content"] == "${jsonencode(local.deployment_descriptor)}"
    assert body["kms_key_id"] == "${aws_kms_key.main.arn}"


def test_the_query_workgroup_named_there_enforces_its_configuration():
    workgroup = terraform().resource("aws_athena_workgroup", "lake")
    assert workgroup["configuration"][0]["enforce_workgroup_configuration"] is True


def _covers(patterns: list[str], key: str) -> bool:
    lake = "${aws_s3_bucket.lake.arn}/"
    return any(fnmatch.fnmatchcase(key, p.removeprefix(lake)) for p in patterns if lake in p)


def test_neither_the_job_nor_the_lambda_can_change_the_descriptor():
    # Their policies stay as they were: no write of state/* reaches the descriptor.
    for document in ("ingest", "glue_job"):
        for action in ("s3:PutObject", "s3:DeleteObject"):
            granted = resources_for(document, action)
            assert not _covers(granted, lakes.DESCRIPTOR_KEY), (
                f"{document} may {action} {lakes.DESCRIPTOR_KEY}"
            )


def test_no_policy_mentions_the_descriptor():
    tf = terraform()
    for (kind, name), body in tf.data.items():
        if kind == "aws_iam_policy_document":
            assert "deployment" not in str(body), f"data.{kind}.{name} names the descriptor"
