"""The one check that the SDK can send S3 conditional writes (storage.require_conditional_writes,
which the Lambda runs before it spends any quota), and the SDK versions the Lambda logs. The
old-SDK case is a real botocore loading an S3 model without the parameters (botocore reads
AWS_DATA_PATH before its own data), as a botocore older than 1.35.69 would ship it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import boto3
import botocore
import pytest

from marketlake.aws import runtime
from marketlake.errors import ConfigError
from marketlake.storage import require_conditional_writes


def s3_client():
    # A new session reads AWS_DATA_PATH afresh; boto3's default session would keep its loader.
    return boto3.session.Session().client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def s3_model() -> dict:
    folder = Path(botocore.__file__).parent / "data" / "s3" / "2006-03-01"
    plain = folder / "service-2.json"
    if plain.is_file():
        return json.loads(plain.read_text(encoding="utf-8"))
    return json.loads(gzip.decompress((folder / "service-2.json.gz").read_bytes()))


def test_the_botocore_the_project_pins_has_both_parameters():
    require_conditional_writes(s3_client())  # raises when they are missing
    found = runtime.sdk_versions()
    assert found["botocore"] == botocore.__version__
    assert found["botocore_path"] == botocore.__file__


@pytest.mark.parametrize(
    ("shape", "dropped"),
    [
        ("PutObjectRequest", ("IfMatch",)),
        ("PutObjectRequest", ("IfMatch", "IfNoneMatch")),
        ("DeleteObjectRequest", ("IfMatch",)),  # the lake's lock is released with it
    ],
)
def test_a_botocore_without_them_is_refused_in_one_line(tmp_path, monkeypatch, shape, dropped):
    model = s3_model()
    members = model["shapes"][shape]["members"]
    assert set(dropped) <= set(members)  # the real model has them: this run removes them
    for name in dropped:
        del members[name]
    folder = tmp_path / "s3" / "2006-03-01"
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model), encoding="utf-8")
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))

    with pytest.raises(ConfigError) as refused:
        require_conditional_writes(s3_client())
    refusal = str(refused.value)
    assert "\n" not in refusal
    assert f"botocore {botocore.__version__}" in refusal
    assert "1.35.69" in refusal and "make package" in refusal
