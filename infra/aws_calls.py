"""Every AWS call the deployed code makes during the rehearsal, checked against the policy of
the role that makes it, as deployed (read back from the emulator, never from the HCL).

moto does not enforce IAM, so the rehearsal does: while a stage runs as a role, each boto3
client created in it reports its calls through botocore's `before-parameter-build` event
(operation and parameters, before anything is sent). Each call becomes the IAM requests AWS
would authorize for it:
  - the action and resource ARNs of the API itself (S3 bucket/object, Glue catalog, database
    and table, Athena workgroup, secret, topic, workflow), with the condition keys the stack's
    policies use (`s3:prefix` for ListBucket);
  - what the service does with the caller's credentials on its behalf: KMS for an SSE-KMS
    bucket, an encrypted secret or topic; Athena's reads of the query results it writes to
    S3 for the caller (the data it reads and the catalog it calls are the fake Athena's own
    boto3 calls, recorded the same way).
The policies are evaluated by iam_policy (Allow, Deny, wildcards, condition operators).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import ClassVar
from unittest import mock

import iam_policy

Requests = list[iam_policy.Request]


@dataclasses.dataclass(frozen=True)
class Call:
    role: str  # the role's name
    service: str  # botocore's service name: s3, glue, ...
    operation: str  # the API's name: GetObject, ...
    params: dict


@dataclasses.dataclass(frozen=True)
class Denial:
    role: str
    call: str  # "s3.PutObject"
    request: iam_policy.Request
    reason: str

    def __str__(self) -> str:
        return (
            f"role {self.role} may not {self.request.action} on {self.request.resource} "
            f"(for {self.call}: {self.reason})"
        )


class Account:
    """What turning a call into ARNs needs to know of the deployment: the partition, region
    and account, and which keys encrypt the buckets, secrets and topics (asked once each)."""

    def __init__(self, region: str, account_id: str, clients: Callable[[str], object]) -> None:
        self.region = region
        self.account_id = account_id
        self._client = clients
        self._bucket_keys: dict[str, str | None] = {}
        self._secret: dict[str, tuple[str, str | None]] = {}
        self._topic_keys: dict[str, str | None] = {}
        self._workgroup_output: dict[str, str] = {}

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"

    def key_arn(self, key: str | None) -> str | None:
        """A KMS key id, alias or ARN, as the key's ARN (what key policies and IAM match)."""
        if not key:
            return None
        if key.startswith("arn:") and ":key/" in key:
            return key
        described = self._client("kms").describe_key(KeyId=key)  # type: ignore[attr-defined]
        return described["KeyMetadata"]["Arn"]

    def bucket_key(self, bucket: str) -> str | None:
        """The KMS key of the bucket's default encryption, or None (SSE-S3, none)."""
        if bucket not in self._bucket_keys:
            s3 = self._client("s3")
            try:
                rules = s3.get_bucket_encryption(Bucket=bucket)[  # type: ignore[attr-defined]
                    "ServerSideEncryptionConfiguration"
                ]["Rules"]
            except Exception as exc:
                if "ServerSideEncryptionConfigurationNotFoundError" not in str(exc):
                    raise
                rules = []
            key = None
            for rule in rules:
                default = rule.get("ApplyServerSideEncryptionByDefault", {})
                if default.get("SSEAlgorithm", "").startswith("aws:kms"):
                    key = self.key_arn(default.get("KMSMasterKeyID"))
            self._bucket_keys[bucket] = key
        return self._bucket_keys[bucket]

    def secret(self, secret_id: str) -> tuple[str, str | None]:
        """(ARN, key ARN) of a secret named by name or ARN."""
        if secret_id not in self._secret:
            described = self._client("secretsmanager").describe_secret(  # type: ignore[attr-defined]
                SecretId=secret_id
            )
            self._secret[secret_id] = (described["ARN"], self.key_arn(described.get("KmsKeyId")))
        return self._secret[secret_id]

    def topic_key(self, topic_arn: str) -> str | None:
        if topic_arn not in self._topic_keys:
            attributes = self._client("sns").get_topic_attributes(  # type: ignore[attr-defined]
                TopicArn=topic_arn
            )["Attributes"]
            self._topic_keys[topic_arn] = self.key_arn(attributes.get("KmsMasterKeyId"))
        return self._topic_keys[topic_arn]

    def workgroup_output(self, workgroup: str) -> str:
        """Where Athena writes a query's results in an enforced workgroup."""
        if workgroup not in self._workgroup_output:
            got = self._client("athena").get_work_group(WorkGroup=workgroup)  # type: ignore[attr-defined]
            configuration = got["WorkGroup"]["Configuration"]
            location = configuration.get("ResultConfiguration", {}).get("OutputLocation", "")
            self._workgroup_output[workgroup] = location
        return self._workgroup_output[workgroup]


def _s3_object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _s3_bucket(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def _request(action: str, resource: str, **context) -> iam_policy.Request:
    return iam_policy.Request(action=action, resource=resource, context=context)


def _kms(account: Account, key: str | None, *actions: str) -> Requests:
    return [_request(action, key) for action in actions] if key else []


def _s3(account: Account, operation: str, p: dict) -> Requests:
    bucket = p["Bucket"]
    key = account.bucket_key(bucket)
    if operation in ("GetObject", "HeadObject"):
        # HeadObject is authorized as s3:GetObject; reading an SSE-KMS object needs Decrypt.
        return [
            _request("s3:GetObject", _s3_object(bucket, p["Key"])),
            *_kms(account, key, "kms:Decrypt"),
        ]
    if operation == "PutObject":
        return [
            _request("s3:PutObject", _s3_object(bucket, p["Key"])),
            *_kms(account, key, "kms:GenerateDataKey"),
        ]
    if operation == "CreateMultipartUpload":
        # A multipart upload to an SSE-KMS bucket needs Decrypt too (S3 User Guide,
        # "Uploading and copying objects using multipart upload": permissions).
        return [
            _request("s3:PutObject", _s3_object(bucket, p["Key"])),
            *_kms(account, key, "kms:GenerateDataKey", "kms:Decrypt"),
        ]
    if operation in ("UploadPart", "CompleteMultipartUpload"):
        return [_request("s3:PutObject", _s3_object(bucket, p["Key"]))]
    if operation == "AbortMultipartUpload":
        return [_request("s3:AbortMultipartUpload", _s3_object(bucket, p["Key"]))]
    if operation == "CopyObject":
        source = p["CopySource"]
        if isinstance(source, str):
            source_bucket, _, source_key = source.lstrip("/").partition("/")
        else:
            source_bucket, source_key = source["Bucket"], source["Key"]
        return [
            _request("s3:GetObject", _s3_object(source_bucket, source_key)),
            *_kms(account, account.bucket_key(source_bucket), "kms:Decrypt"),
            _request("s3:PutObject", _s3_object(bucket, p["Key"])),
            *_kms(account, key, "kms:GenerateDataKey"),
        ]
    if operation == "DeleteObject":
        deleted = [_request("s3:DeleteObject", _s3_object(bucket, p["Key"]))]
        # A conditional delete naming an ETag needs s3:GetObject too (S3 User Guide,
        # "Enforce conditional deletes"): the lake's lock is released that way.
        if p.get("IfMatch", "*") != "*":
            deleted.append(_request("s3:GetObject", _s3_object(bucket, p["Key"])))
        return deleted
    if operation == "DeleteObjects":
        return [
            _request("s3:DeleteObject", _s3_object(bucket, item["Key"]))
            for item in p["Delete"]["Objects"]
        ]
    if operation in ("ListObjectsV2", "ListObjects"):
        # A listing without a prefix has no s3:prefix key at all (not an empty one).
        context = {"s3:prefix": p["Prefix"]} if "Prefix" in p else {}
        return [_request("s3:ListBucket", _s3_bucket(bucket), **context)]
    if operation == "ListMultipartUploads":
        return [_request("s3:ListBucketMultipartUploads", _s3_bucket(bucket))]
    if operation == "GetBucketLocation":
        return [_request("s3:GetBucketLocation", _s3_bucket(bucket))]
    raise KeyError(operation)


# Glue's catalog calls are authorized on the catalog, the database and the table(s) (AWS
# Glue Developer Guide, "Specifying AWS Glue resource ARNs").
_GLUE_TABLE_CALLS = {
    "GetTable",
    "CreateTable",
    "UpdateTable",
    "DeleteTable",
    "GetPartition",
    "GetPartitions",
    "BatchGetPartition",
    "CreatePartition",
    "BatchCreatePartition",
    "UpdatePartition",
    "BatchUpdatePartition",
    "DeletePartition",
    "BatchDeletePartition",
}


def _glue(account: Account, operation: str, p: dict) -> Requests:
    action = f"glue:{operation}"
    catalog = account.arn("glue", "catalog")
    if operation == "StartWorkflowRun":
        return [_request(action, account.arn("glue", f"workflow/{p['Name']}"))]
    if operation == "GetDatabase":
        database = account.arn("glue", f"database/{p['Name']}")
        return [_request(action, catalog), _request(action, database)]
    database_name = p["DatabaseName"]
    database = account.arn("glue", f"database/{database_name}")
    if operation == "GetTables":
        tables = account.arn("glue", f"table/{database_name}/*")
        return [_request(action, catalog), _request(action, database), _request(action, tables)]
    if operation in _GLUE_TABLE_CALLS:
        name = p.get("TableName") or p.get("Name") or p["TableInput"]["Name"]
        table = account.arn("glue", f"table/{database_name}/{name}")
        return [_request(action, catalog), _request(action, database), _request(action, table)]
    raise KeyError(operation)


def _secretsmanager(account: Account, operation: str, p: dict) -> Requests:
    if operation != "GetSecretValue":
        raise KeyError(operation)
    arn, key = account.secret(p["SecretId"])
    return [_request("secretsmanager:GetSecretValue", arn), *_kms(account, key, "kms:Decrypt")]


def _sns(account: Account, operation: str, p: dict) -> Requests:
    if operation != "Publish":
        raise KeyError(operation)
    topic = p["TopicArn"]
    # SNS encrypts a message to a topic with a CMK using the publisher's credentials.
    key = account.topic_key(topic)
    return [
        _request("sns:Publish", topic),
        *_kms(account, key, "kms:GenerateDataKey", "kms:Decrypt"),
    ]


def _athena(account: Account, operation: str, p: dict) -> Requests:
    workgroup = p["WorkGroup"]
    requests = [_request(f"athena:{operation}", account.arn("athena", f"workgroup/{workgroup}"))]
    output = account.workgroup_output(workgroup).removeprefix("s3://")
    bucket, _, prefix = output.partition("/")
    query_id = p.get("QueryExecutionId", "query")
    result = f"{prefix.rstrip('/')}/{query_id}.csv".lstrip("/")
    # Athena writes and reads a query's results with the caller's credentials (Athena User
    # Guide, "Access to Amazon S3": the caller needs these on the results location).
    if operation == "StartQueryExecution":
        requests += [
            _request("s3:GetBucketLocation", _s3_bucket(bucket)),
            _request("s3:PutObject", _s3_object(bucket, result)),
            *_kms(account, account.bucket_key(bucket), "kms:GenerateDataKey"),
        ]
    elif operation == "GetQueryResults":
        requests += [
            _request("s3:GetObject", _s3_object(bucket, result)),
            *_kms(account, account.bucket_key(bucket), "kms:Decrypt"),
        ]
    return requests


_SERVICES = {
    "s3": _s3,
    "glue": _glue,
    "secretsmanager": _secretsmanager,
    "sns": _sns,
    "athena": _athena,
}


def requests_for(account: Account, call: Call) -> Requests:
    """The IAM requests AWS authorizes for one call; a call this table does not know fails
    the rehearsal rather than pass unchecked."""
    try:
        return _SERVICES[call.service](account, call.operation, call.params)
    except KeyError as exc:
        raise LookupError(
            f"no IAM mapping for {call.service}.{call.operation} ({exc}): add it to "
            "infra/aws_calls.py so the rehearsal can check it"
        ) from None


class Recorder:
    """Records the calls made while `as_role` is active, by the clients created in it."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._role: str | None = None

    @contextlib.contextmanager
    def as_role(self, role: str) -> Iterator[None]:
        import botocore.session

        real_create = botocore.session.Session.create_client
        recorder = self

        def create_client(session, service_name, *args, **kwargs):
            made = real_create(session, service_name, *args, **kwargs)
            made.meta.events.register("before-parameter-build", recorder._hook(role))
            return made

        self._role = role
        with mock.patch.object(botocore.session.Session, "create_client", create_client):
            try:
                yield
            finally:
                self._role = None

    def _hook(self, role: str):
        def record(params, model, **_):
            self.calls.append(
                Call(role, model.service_model.service_name, model.name, dict(params))
            )

        return record

    def athena(self, fake, role: str):
        """The fake Athena (not a boto3 client) as its caller sees it: every API call is
        recorded for `role`, the workgroup of a query remembered from its start."""
        return _AthenaCalls(fake, self, role)


class _AthenaCalls:
    API: ClassVar[dict[str, str]] = {
        "start_query_execution": "StartQueryExecution",
        "get_query_execution": "GetQueryExecution",
        "stop_query_execution": "StopQueryExecution",
        "get_work_group": "GetWorkGroup",
    }

    def __init__(self, fake, recorder: Recorder, role: str) -> None:
        self._fake = fake
        self._recorder = recorder
        self._role = role
        self._workgroups: dict[str, str] = {}

    def _record(self, operation: str, params: dict) -> None:
        self._recorder.calls.append(Call(self._role, "athena", operation, params))

    def __getattr__(self, name: str):
        target = getattr(self._fake, name)
        if name not in self.API:
            return target

        def call(**kwargs):
            answer = target(**kwargs)
            if name == "start_query_execution":
                workgroup = kwargs.get("WorkGroup") or "primary"
                self._workgroups[answer["QueryExecutionId"]] = workgroup
                params = dict(kwargs, WorkGroup=workgroup, **answer)
            else:
                query = kwargs.get("QueryExecutionId", "")
                params = dict(kwargs, WorkGroup=kwargs.get("WorkGroup") or self._workgroups[query])
            self._record(self.API[name], params)
            return answer

        return call

    def get_paginator(self, operation: str):
        pages = self._fake.get_paginator(operation)
        outer = self

        class Paginator:
            def paginate(self, **kwargs):
                query = kwargs["QueryExecutionId"]
                workgroup = outer._workgroups[query]
                for page in pages.paginate(**kwargs):
                    outer._record("GetQueryResults", dict(kwargs, WorkGroup=workgroup))
                    yield page

        return Paginator()


def role_policies(iam, role_name: str) -> list[dict]:
    """The role's inline and attached policy documents, as the emulator holds them."""
    documents = []
    for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        documents.append(
            iam_policy.parse_document(document) if isinstance(document, str) else document
        )
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(
            PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
        )["PolicyVersion"]["Document"]
        documents.append(
            iam_policy.parse_document(version) if isinstance(version, str) else version
        )
    if not documents:
        raise LookupError(f"role {role_name} has no policy in the emulator")
    return documents


def check(
    calls: list[Call], policies: dict[str, list[dict]], account: Account
) -> tuple[int, list[Denial]]:
    """(requests checked, denials): every call's requests against its role's policies."""
    checked = 0
    denials = []
    for call in calls:
        for request in requests_for(account, call):
            checked += 1
            decision = iam_policy.evaluate(policies[call.role], request)
            if not decision.allowed:
                denials.append(
                    Denial(call.role, f"{call.service}.{call.operation}", request, decision.reason)
                )
    return checked, denials
