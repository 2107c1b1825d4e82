"""The lake refusing a call is no symbol's bad day: the storage layer turns the refusal into
LakeUnreachable (naming the path or object and the remedy), and the ingest stops on it.

These tests run as root here, where chmod does not refuse anything: a file standing where the
lake needs a folder is the real refusal (ENOTDIR); EACCES and ENOSPC come from a patched
os.replace with the OSError shape the kernel gives. S3's KMS refusals, which moto does not
emulate, come through botocore's Stubber with the codes S3 answers.
"""

from __future__ import annotations

import datetime as dt
import errno
import os

import boto3
import pytest
import requests
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.stub import Stubber

from marketlake.errors import LakeUnreachable, MarketlakeError
from marketlake.ingest.runner import run_ingest
from marketlake.lake.state import STATE_KEY, load_state
from marketlake.providers.base import ProviderDefaults
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.refusals import refusal
from marketlake.storage import LocalStore, S3Store

AS_OF = dt.datetime(2024, 7, 3, 22, 0, tzinfo=dt.timezone.utc)
LANDED = "state/raw_landed/ingest_date=2024-07-03.json"


class Counting(ProviderDefaults):
    """The synthetic market, recording each symbol asked."""

    name = "synthetic"

    def __init__(self) -> None:
        self.inner = SyntheticProvider()
        self.calls: list[str] = []

    def fetch_daily(self, symbol, since, until):
        self.calls.append(symbol)
        return self.inner.fetch_daily(symbol, since, until)


def block_landed_records(store: LocalStore) -> str:
    """A file where the lake keeps its raw_landed folder; its path."""
    blocker = store.root / "state" / "raw_landed"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    return str(blocker)


def test_a_file_where_the_lake_needs_a_folder_names_that_file(lake_store):
    blocker = block_landed_records(lake_store)
    for call in (
        lambda: lake_store.put_bytes(LANDED, b"{}"),
        lambda: lake_store.get_bytes(LANDED),
        lambda: lake_store.get_tagged(LANDED),
    ):
        with pytest.raises(LakeUnreachable) as caught:
            call()
        assert caught.value.resource == blocker
        assert str(caught.value).startswith(f"{blocker}: ")
        assert "a file where the lake needs a folder" in str(caught.value)


@pytest.mark.parametrize(
    "code, remedy",
    [(errno.EACCES, "chmod -R u+rwX"), (errno.ENOSPC, "full"), (errno.EROFS, "read-only")],
)
def test_the_file_system_refusing_a_write_names_the_path_and_what_to_do(
    lake_store, monkeypatch, code, remedy
):
    def refuse(src, dst):
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(LakeUnreachable) as caught:
        lake_store.put_bytes(STATE_KEY, b"{}")
    assert caught.value.resource == str(lake_store.root / STATE_KEY)
    assert os.strerror(code) in str(caught.value) and remedy in str(caught.value)


def test_an_unwritable_landed_record_stops_the_run_at_the_first_symbol(lake_store, lake_settings):
    blocker = block_landed_records(lake_store)
    provider = Counting()

    with pytest.raises(LakeUnreachable) as caught:
        run_ingest(lake_settings(tickers="INTC,AMD,NVDA"), lake_store, provider, AS_OF)

    assert caught.value.resource == blocker
    assert provider.calls == ["INTC"]  # the others were not asked for bars the lake can't take
    state = load_state(lake_store)  # saved on the way out: the lake still took that
    assert state.lake_kind == "synthetic" and state.watermark("INTC") is None


class Refusing(LocalStore):
    """A local lake whose role may not write some keys, as S3 answers a denied PutObject."""

    def __init__(self, root, refused: tuple[str, ...]) -> None:
        super().__init__(root)
        self.refused = refused

    def put_if(self, key, data, tag):
        if key.startswith(self.refused):
            raise LakeUnreachable(f"s3://lake/{key}", "PutObject refused (AccessDenied)", "grant")
        super().put_if(key, data, tag)


def test_a_refused_save_on_the_way_out_never_hides_what_stopped_the_run(tmp_path, lake_settings):
    store = Refusing(tmp_path / "lake", ("state/raw_landed/", STATE_KEY))
    provider = Counting()

    with pytest.raises(LakeUnreachable) as caught:
        run_ingest(lake_settings(tickers="INTC,AMD"), store, provider, AS_OF)

    assert caught.value.resource == f"s3://lake/{LANDED}"
    assert provider.calls == ["INTC"]


@pytest.fixture
def s3_lake(moto_aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket="lake")
    yield client


def test_a_bucket_that_is_not_there_is_named_with_the_remedy(s3_lake):
    store = S3Store("no-such-lake", "prod", client=s3_lake)
    with pytest.raises(LakeUnreachable) as caught:
        store.list_objects("state/")
    assert caught.value.resource == "s3://no-such-lake/prod/state/"
    assert "NoSuchBucket" in str(caught.value) and "does not exist" in str(caught.value)


@pytest.mark.parametrize(
    "code, status, message, expect",
    [
        ("KMS.DisabledException", 400, "arn:aws:kms:us-east-1:1:key/k is disabled.", "KMS key"),
        ("KMS.NotFoundException", 400, "Invalid keyId alias/lake", "KMS key"),
        (
            "AccessDenied",
            403,
            "User: arn:aws:sts::1:assumed-role/ingest/f is not authorized to perform: "
            "kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:1:key/k",
            "kms:GenerateDataKey on it",
        ),
        ("AccessDenied", 403, "Access Denied", "grant s3:PutObject on it"),
        ("ExpiredToken", 400, "The provided token has expired.", "credentials"),
    ],
)
def test_s3_refusals_name_the_object_and_the_remedy(code, status, message, expect):
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    with Stubber(client) as stub:
        stub.add_client_error("put_object", code, message, http_status_code=status)
        with pytest.raises(LakeUnreachable) as caught:
            S3Store("lake", client=client).put_bytes(STATE_KEY, b"{}")
    assert caught.value.resource == f"s3://lake/{STATE_KEY}"
    assert code in str(caught.value) and expect in str(caught.value)


def test_a_denied_head_without_a_body_is_a_refusal_not_a_missing_object():
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    with Stubber(client) as stub:
        stub.add_client_error("head_object", "403", "Forbidden", http_status_code=403)
        with pytest.raises(LakeUnreachable, match="grant s3:GetObject"):
            S3Store("lake", client=client).exists(STATE_KEY)


def test_no_credentials_at_all_is_a_refusal_before_any_request(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookup
    client = boto3.session.Session().client("s3", region_name="us-east-1")
    with pytest.raises(LakeUnreachable, match="no valid AWS credentials"):
        S3Store("lake", client=client).get_bytes(STATE_KEY)


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    answer = {"Error": {"Code": code, "Message": message}}
    answer["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(answer, "PutObject")


@pytest.mark.parametrize(
    "error, kind",
    [
        (client_error("AccessDenied", "Access Denied", 403), "access"),
        (client_error("AccessDeniedException", "not authorized", 400), "access"),
        (client_error("AccessDeniedException", "Access to KMS is not allowed", 400), "kms"),
        (client_error("KMS.KMSInvalidStateException", "pending deletion"), "kms"),
        (client_error("DecryptionFailure", "can't decrypt"), "kms"),
        (client_error("InvalidAccessKeyId"), "credentials"),
        (client_error("SignatureDoesNotMatch"), "credentials"),
        (NoCredentialsError(), "credentials"),
        (client_error("NoSuchBucket", status=404), "missing"),
        # A symbol's or a moment's trouble: not a refusal of the run.
        (client_error("NoSuchKey", status=404), None),
        (client_error("PreconditionFailed", status=412), None),
        (client_error("SlowDown", "Please reduce your request rate.", 503), None),
        (client_error("InternalError", status=500), None),
        (requests.HTTPError("500 Server Error", response=requests.Response()), None),
        (PermissionError(errno.EACCES, "Permission denied"), None),
    ],
)
def test_what_counts_as_a_refusal(error, kind):
    assert refusal(error) == kind


@pytest.mark.parametrize(
    "code, kind",
    [("AccessDenied", LakeUnreachable), ("InternalError", MarketlakeError)],
)
def test_keys_that_delete_objects_refuses_in_a_200_answer_are_never_passed_over(
    s3_lake, monkeypatch, code, kind
):
    store = S3Store("lake", client=s3_lake)
    store.put_bytes("tmp/athena/run/a.parquet", b"x")
    store.put_bytes("tmp/athena/run/b.parquet", b"y")
    # DeleteObjects answers 200 and lists what it refused under Errors (Quiet mode).
    refused = {"Key": "tmp/athena/run/b.parquet", "Code": code, "Message": "no"}
    monkeypatch.setattr(s3_lake, "delete_objects", lambda **_: {"Errors": [refused]})

    with pytest.raises(kind) as caught:
        store.delete_prefix("tmp/athena/run/")

    message = str(caught.value)
    assert message.startswith("s3://lake/tmp/athena/run/b.parquet: DeleteObjects refused 1 of 2")
    assert "\n" not in message
    assert isinstance(caught.value, LakeUnreachable) == (code == "AccessDenied")
