"""marketlake.aws.runtime: whether the imported botocore can send S3 conditional writes, read
from the S3 model it ships. The old-SDK case is a real botocore loading an S3 model without
the parameters (botocore reads AWS_DATA_PATH before its own data), as a botocore older than
1.35.69 would ship it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import botocore
import pytest

from marketlake.aws import runtime


@pytest.fixture(autouse=True)
def fresh_answer():
    runtime.botocore_supports_conditional_writes.cache_clear()
    yield
    runtime.botocore_supports_conditional_writes.cache_clear()


def s3_model() -> dict:
    folder = Path(botocore.__file__).parent / "data" / "s3" / "2006-03-01"
    plain = folder / "service-2.json"
    if plain.is_file():
        return json.loads(plain.read_text(encoding="utf-8"))
    return json.loads(gzip.decompress((folder / "service-2.json.gz").read_bytes()))


def test_the_botocore_the_project_pins_has_both_parameters():
    assert runtime.botocore_supports_conditional_writes() is True
    assert runtime.conditional_writes_refusal() is None
    found = runtime.sdk_versions()
    assert found["botocore"] == botocore.__version__
    assert found["botocore_path"] == botocore.__file__


@pytest.mark.parametrize("dropped", [("IfMatch",), ("IfMatch", "IfNoneMatch")])
def test_a_botocore_without_them_is_refused_in_one_line(tmp_path, monkeypatch, dropped):
    model = s3_model()
    members = model["shapes"]["PutObjectRequest"]["members"]
    assert set(dropped) <= set(members)  # the real model has them: this run removes them
    for name in dropped:
        del members[name]
    folder = tmp_path / "s3" / "2006-03-01"
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model), encoding="utf-8")
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))

    assert runtime.botocore_supports_conditional_writes() is False
    refusal = runtime.conditional_writes_refusal()
    assert refusal is not None and "\n" not in refusal
    assert f"botocore {botocore.__version__}" in refusal
    assert "botocore >= 1.35.69" in refusal and "make package" in refusal
