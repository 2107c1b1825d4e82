"""The lake as an S3 bucket (and optional key prefix): conditional writes for state, and S3's
refusals named with the object and the remedy."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from marketlake.errors import ConfigError, LakeUnreachable, MarketlakeError
from marketlake.refusals import error_summary, refusal
from marketlake.storage import Change, ObjectInfo, WriteConflict, _check_key, update_bytes

CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")

# The IAM action of an S3 operation whose name is not the action's (the rest: s3:<operation>).
_S3_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "DeleteObjects": "s3:DeleteObject",
}
# What to do about each kind of refusal (marketlake.refusals): said once, with the object.
_S3_REMEDIES = {
    "credentials": "no valid AWS credentials: set AWS_PROFILE or renew the session "
    "(aws sso login), then run this again",
    "access": "grant {action} on it to the role or user running marketlake, and check that no "
    "bucket policy or SCP denies it",
    "kms": "S3 cannot use the bucket's KMS key: enable it, and allow kms:Decrypt and "
    "kms:GenerateDataKey on it to the role running marketlake (its policy and the key's)",
    "missing": "the bucket does not exist: check LAKE_BUCKET (or --home), or deploy the stack",
}


def s3_unreachable(exc: BaseException, uri: str) -> LakeUnreachable | None:
    """The LakeUnreachable an S3 call's error means for the object at `uri`, or None."""
    kind = refusal(exc)
    if kind is None:
        return None
    operation = getattr(exc, "operation_name", "")
    action = _S3_ACTIONS.get(operation, f"s3:{operation}")
    return LakeUnreachable(uri, error_summary(exc), _S3_REMEDIES[kind].format(action=action))


def require_conditional_writes(client) -> None:
    """S3's If-Match on PutObject (and on DeleteObject, which releases the lake's lock) came in
    botocore releases of late 2024 (1.35.69 has both). An older SDK (an old Lambda runtime or
    Glue image) would refuse the parameter on every state write; say so once, plainly."""
    model = client.meta.service_model
    put = model.operation_model("PutObject").input_shape.members
    delete = model.operation_model("DeleteObject").input_shape.members  # the lock's release
    if "IfMatch" not in put or "IfNoneMatch" not in put or "IfMatch" not in delete:
        import botocore

        raise ConfigError(
            f"botocore {botocore.__version__} has no S3 conditional writes (PutObject "
            "IfMatch/IfNoneMatch, DeleteObject IfMatch), which the lake's state and lock need: "
            "use boto3/botocore 1.35.69 "
            "or newer (make package bundles them into the Lambda zip, from "
            "requirements/lambda-sdk.txt, and the Glue job's wheels, from "
            "requirements/glue-job.lock.txt)"
        )


def etag_digest(etag: str) -> str:
    """An S3 object's digest (S3Store.digests)."""
    return "etag:" + etag.strip('"')


class S3Store:
    """A bucket (and optional key prefix) as the lake. A PUT is atomic on S3: readers see the
    old object or the new one, never a part."""

    def __init__(self, bucket: str, prefix: str = "", client=None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _key(self, key: str) -> str:
        _check_key(key)
        return self.prefix + key

    @contextlib.contextmanager
    def _reaching(self, key: str) -> Iterator[None]:
        """A refusal (access, KMS, credentials, no bucket) becomes LakeUnreachable naming the
        object and the remedy; a conflict, a missing key or a 500 pass as they are."""
        try:
            yield
        except Exception as exc:
            refused = s3_unreachable(exc, self.uri(key))
            if refused is None:
                raise
            raise refused from exc

    def put_bytes(self, key: str, data: bytes) -> str:
        with self._reaching(key):
            answer = self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return etag_digest(answer["ETag"])

    def digests(self, prefix: str, reuse: bool = False) -> dict[str, str]:
        """ETags from the listing: no object is read. S3 gives an object a new ETag whenever
        its bytes are written, and checks them against their checksum on every read."""
        return {info.key: etag_digest(info.version) for info in self.list_objects(prefix)}

    def get_tagged(self, key: str) -> tuple[bytes | None, str | None]:
        with self._reaching(key):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except self.client.exceptions.NoSuchKey:
                return None, None
            return answer["Body"].read(), answer["ETag"]

    def put_if(self, key: str, data: bytes, tag: str | None) -> str:
        """A conditional PUT: If-Match on the ETag read, or If-None-Match: * to create."""
        require_conditional_writes(self.client)
        condition = {"IfNoneMatch": "*"} if tag is None else {"IfMatch": tag}
        with self._reaching(key), self._conflicts(key, "write"):
            answer = self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, **condition
            )
        return answer["ETag"]

    def delete_if(self, key: str, tag: str) -> None:
        """A conditional DELETE (If-Match), which S3 general purpose buckets honour since
        2025-09; on a versioned bucket it leaves a delete marker, as any delete does."""
        require_conditional_writes(self.client)
        with self._reaching(key), self._conflicts(key, "delete"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key), IfMatch=tag)

    @contextlib.contextmanager
    def _conflicts(self, key: str, what: str) -> Iterator[None]:
        try:
            yield
        except self.client.exceptions.ClientError as exc:
            error = exc.response.get("Error", {}).get("Code")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            # 412: the object is not the one read (or exists, for a create); 409: another
            # conditional write to it is in flight; 404 NoSuchKey: deleted since read.
            if error in CONFLICT_CODES or status in (409, 412):
                raise WriteConflict(f"{key}: {error} on a conditional {what}") from None
            raise

    def update_bytes(self, key: str, change: Change) -> bytes | None:
        return update_bytes(self, key, change)

    def get_bytes(self, key: str) -> bytes:
        with self._reaching(key):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except self.client.exceptions.NoSuchKey:
                raise KeyError(key) from None
            return answer["Body"].read()

    def exists(self, key: str) -> bool:
        with self._reaching(key):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            except self.client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
            return True

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        with self._reaching(prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    found.append(ObjectInfo(key, int(item["Size"]), item["ETag"].strip('"')))
        return sorted(found, key=lambda info: info.key)

    def list_prefixes(self, prefix: str) -> list[str]:
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix, Delimiter="/")
        with self._reaching(prefix):
            for page in pages:
                for item in page.get("CommonPrefixes", []):
                    found.append(item["Prefix"][len(self.prefix + prefix) :].rstrip("/"))
        return sorted(found)

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list_objects(prefix)]
        with self._reaching(prefix):
            for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at most
                batch = [{"Key": self.prefix + k} for k in keys[start : start + 1000]]
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
                # DeleteObjects answers 200 and lists each refused key: never pass over them.
                if answer.get("Errors"):
                    first = answer["Errors"][0]
                    where = self.uri(first["Key"][len(self.prefix) :])
                    problem = (
                        f"DeleteObjects refused {len(answer['Errors'])} of {len(batch)} "
                        f"object(s) ({first.get('Code')}: {first.get('Message')})"
                    )
                    if first.get("Code") == "AccessDenied":
                        raise LakeUnreachable(
                            where, problem, "grant s3:DeleteObject on it to the role that runs this"
                        )
                    raise MarketlakeError(f"{where}: {problem}; run the command again")
        return len(keys)

    def make_durable(self, prefix: str) -> None:
        """Nothing to do: S3 has stored an object durably when its PUT returns."""
