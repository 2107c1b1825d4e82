"""The rehearsal's IAM check: calls recorded by role, turned into the requests AWS
authorizes, and evaluated against the role's policies as the emulator holds them."""

from __future__ import annotations

import json

import aws_calls
import boto3
import pytest

REGION = "us-east-1"
BUCKET = "marketlake-lake-123456789012-us-east-1"


def kms_bucket() -> str:
    key = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key,
                    }
                }
            ]
        },
    )
    return key


def account() -> aws_calls.Account:
    return aws_calls.Account(REGION, "123456789012", boto3.client)


def test_only_clients_made_while_a_role_is_active_are_recorded_as_that_role(moto_aws):
    kms_bucket()
    before = boto3.client("s3")  # the rehearsal's own client: not the code under test
    recorder = aws_calls.Recorder()
    with recorder.as_role("ingest"):
        inside = boto3.client("s3")
        inside.put_object(Bucket=BUCKET, Key="state/raw_landed/NVDA.json", Body=b"{}")
        before.get_object(Bucket=BUCKET, Key="state/raw_landed/NVDA.json")
        inside.list_objects_v2(Bucket=BUCKET, Prefix="raw/")
    after = boto3.client("s3")
    after.get_object(Bucket=BUCKET, Key="state/raw_landed/NVDA.json")
    assert [(c.role, c.service, c.operation) for c in recorder.calls] == [
        ("ingest", "s3", "PutObject"),
        ("ingest", "s3", "ListObjectsV2"),
    ]
    assert recorder.calls[0].params["Key"] == "state/raw_landed/NVDA.json"


def test_s3_calls_become_their_actions_with_the_bucket_key_and_the_prefix(moto_aws):
    key = kms_bucket()
    requests = aws_calls.requests_for(
        account(), aws_calls.Call("r", "s3", "GetObject", {"Bucket": BUCKET, "Key": "raw/a.csv"})
    )
    assert [(r.action, r.resource) for r in requests] == [
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/raw/a.csv"),
        ("kms:Decrypt", key),
    ]
    listed = aws_calls.requests_for(
        account(), aws_calls.Call("r", "s3", "ListObjectsV2", {"Bucket": BUCKET, "Prefix": "raw/"})
    )
    assert [(r.action, r.resource, dict(r.context)) for r in listed] == [
        ("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": "raw/"})
    ]
    bare = aws_calls.requests_for(
        account(), aws_calls.Call("r", "s3", "ListObjectsV2", {"Bucket": BUCKET})
    )
    assert dict(bare[0].context) == {}  # no prefix: the key is absent, not empty


def test_a_conditional_delete_naming_an_etag_needs_get_object_too(moto_aws):
    kms_bucket()
    key = "state/lock.json"

    def actions(**params) -> list[tuple[str, str]]:
        call = aws_calls.Call("r", "s3", "DeleteObject", {"Bucket": BUCKET, "Key": key, **params})
        return [(r.action, r.resource) for r in aws_calls.requests_for(account(), call)]

    arn = f"arn:aws:s3:::{BUCKET}/{key}"
    assert actions() == [("s3:DeleteObject", arn)]
    assert actions(IfMatch="*") == [("s3:DeleteObject", arn)]
    assert actions(IfMatch='"0a1b"') == [("s3:DeleteObject", arn), ("s3:GetObject", arn)]


def test_glue_catalog_calls_are_authorized_on_catalog_database_and_table():
    requests = aws_calls.requests_for(
        account(),
        aws_calls.Call("r", "glue", "GetPartitions", {"DatabaseName": "lake", "TableName": "t"}),
    )
    prefix = "arn:aws:glue:us-east-1:123456789012:"
    assert [r.resource for r in requests] == [
        prefix + "catalog",
        prefix + "database/lake",
        prefix + "table/lake/t",
    ]
    assert {r.action for r in requests} == {"glue:GetPartitions"}


def test_a_call_with_no_mapping_fails_loudly():
    with pytest.raises(LookupError, match=r"no IAM mapping for glue\.GetJob"):
        aws_calls.requests_for(account(), aws_calls.Call("r", "glue", "GetJob", {"JobName": "j"}))


def inline_role(iam, name: str, statements: list[dict]) -> None:
    iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    iam.put_role_policy(
        RoleName=name,
        PolicyName="inline",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )


def test_a_call_the_role_lacks_is_denied_naming_role_action_and_resource(moto_aws):
    key = kms_bucket()
    iam = boto3.client("iam")
    granted = [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{BUCKET}/raw/*", f"arn:aws:s3:::{BUCKET}/state/x.json"],
        },
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key},
    ]
    inline_role(iam, "ingest", granted)
    attached = iam.create_policy(
        PolicyName="attached",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Action": "s3:Put*",
                        "Resource": f"arn:aws:s3:::{BUCKET}/raw/blocked/*",
                    }
                ],
            }
        ),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="ingest", PolicyArn=attached)
    policies = {"ingest": aws_calls.role_policies(iam, "ingest")}
    assert len(policies["ingest"]) == 2  # the inline and the attached one

    def put(key_name: str) -> aws_calls.Call:
        return aws_calls.Call("ingest", "s3", "PutObject", {"Bucket": BUCKET, "Key": key_name})

    checked, denials = aws_calls.check(
        [
            put("raw/daily_prices/ingest_date=2026-12-04/NVDA.csv"),
            put("state/raw_landed/NVDA"),
            put("raw/blocked/NVDA.csv"),
        ],
        policies,
        account(),
    )
    assert checked == 6  # three PutObjects, each with its GenerateDataKey
    assert [str(d) for d in denials] == [
        f"role ingest may not s3:PutObject on arn:aws:s3:::{BUCKET}/state/raw_landed/NVDA "
        "(for s3.PutObject: no statement allows it)",
        f"role ingest may not s3:PutObject on arn:aws:s3:::{BUCKET}/raw/blocked/NVDA.csv "
        "(for s3.PutObject: explicitly denied by statement #1.0)",
    ]


def test_athena_calls_are_recorded_with_their_workgroup_and_the_results_it_writes(moto_aws):
    kms_bucket()
    athena_client = boto3.client("athena")
    athena_client.create_work_group(
        Name="build",
        Configuration={"ResultConfiguration": {"OutputLocation": f"s3://{BUCKET}/tmp/athena/"}},
    )

    class Fake:
        def start_query_execution(self, **kwargs):
            return {"QueryExecutionId": "q1"}

        def get_query_execution(self, **kwargs):
            return {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}

        def get_paginator(self, operation):
            class Pages:
                def paginate(self, **kwargs):
                    yield {"ResultSet": {"Rows": []}}

            return Pages()

    recorder = aws_calls.Recorder()
    athena = recorder.athena(Fake(), "wap-job")
    athena.start_query_execution(QueryString="SELECT 1", WorkGroup="build")
    athena.get_query_execution(QueryExecutionId="q1")
    list(athena.get_paginator("get_query_results").paginate(QueryExecutionId="q1"))
    assert [(c.operation, c.params["WorkGroup"]) for c in recorder.calls] == [
        ("StartQueryExecution", "build"),
        ("GetQueryExecution", "build"),
        ("GetQueryResults", "build"),
    ]
    started = aws_calls.requests_for(account(), recorder.calls[0])
    assert [(r.action, r.resource) for r in started][:3] == [
        ("athena:StartQueryExecution", "arn:aws:athena:us-east-1:123456789012:workgroup/build"),
        ("s3:GetBucketLocation", f"arn:aws:s3:::{BUCKET}"),
        ("s3:PutObject", f"arn:aws:s3:::{BUCKET}/tmp/athena/q1.csv"),
    ]


def test_the_proof_by_removal_drops_every_line_that_mentions_the_grant(tmp_path):
    import emulated

    (tmp_path / "ingest.tf").write_text(
        'resources = [\n  "${lake}/state/recent_bars/*",\n  "${lake}/state/raw_landed/*",\n]\n'
    )
    (tmp_path / "glue.tf").write_text('x = "${lake}/state/raw_landed/*" # build\ny = 1\n')
    (tmp_path / "notes.txt").write_text("raw_landed\n")  # not Terraform: left alone
    assert emulated.without_lines(tmp_path, "raw_landed") == 2
    assert "raw_landed" not in (tmp_path / "ingest.tf").read_text()
    assert (tmp_path / "glue.tf").read_text() == "y = 1\n"
    assert (tmp_path / "notes.txt").read_text() == "raw_landed\n"
    assert emulated.without_lines(tmp_path, "raw_landed") == 0
