"""Derived bucket names stay within S3's 63 characters, or the plan fails naming the cause.

terraform_data.bucket_names depends on variables only, so real Terraform plans it offline
(-target, no AWS call): the refusal is what a user would see from make plan."""

from __future__ import annotations

import os
import shutil

import pytest
import tf
from infra_contract import TERRAFORM, terraform

needs_terraform = pytest.mark.skipif(
    shutil.which(os.environ.get("TF", "terraform")) is None or tf.find_mirror() is None,
    reason="needs Terraform on PATH and a mirror of hashicorp/aws (make validate says the same)",
)
ACCOUNT_ID = "123456789012"  # every AWS account id has 12 digits


def derived_names(name_prefix: str, region: str) -> list[str]:
    formats = terraform().locals["bucket_name_formats"]
    return [
        template.replace("${var.name_prefix}", name_prefix)
        .replace("${var.region}", region)
        .replace("%s", ACCOUNT_ID)
        for template in formats.values()
    ]


def test_the_buckets_use_the_checked_formats_and_wait_for_the_check():
    tf_ = terraform()
    assert tf_.locals["lake_bucket_name"] == (
        "${format(local.bucket_name_formats.lake, local.account_id)}"
    )
    assert tf_.locals["results_bucket_name"] == (
        "${format(local.bucket_name_formats.athena_results, local.account_id)}"
    )
    for name in ("lake", "athena_results"):
        bucket = tf_.resource("aws_s3_bucket", name)
        assert bucket["depends_on"] == ["${terraform_data.bucket_names}"]
    # The longest name the variables' own validations allow can pass 63: the check is needed.
    assert max(map(len, derived_names("a" * 21, "ap-southeast-2"))) > 63
    assert max(map(len, derived_names("marketlake", "us-east-1"))) <= 63


def plan(workdir, name_prefix: str, region: str) -> tuple[int, str]:
    env = tf.environment(workdir / "cli", tf.find_mirror())
    return tf.run(
        [
            "plan",
            "-input=false",
            "-refresh=false",
            "-target=terraform_data.bucket_names",
            f"-var=name_prefix={name_prefix}",
            f"-var=region={region}",
        ],
        workdir / "terraform",
        env,
        ok=(0, 1),
    )


@needs_terraform
def test_a_name_prefix_too_long_for_its_region_fails_the_plan(tmp_path):
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".terraform*", "grafana"))
    env = tf.environment(tmp_path / "cli", tf.find_mirror())
    tf.run(["init", "-input=false", "-backend=false"], copy, env)

    code, output = plan(tmp_path, "marketlake-research-x", "ap-southeast-2")
    assert code == 1
    message = " ".join(output.split())
    assert "Resource precondition failed" in message
    assert (
        'name_prefix "marketlake-research-x" with region ap-southeast-2 makes a 64-character '
        "bucket name; S3 allows 63: shorten name_prefix by 1." in message
    )
    assert len(max(derived_names("marketlake-research-x", "ap-southeast-2"), key=len)) == 64

    code, output = plan(tmp_path, "marketlake-research", "ap-southeast-2")  # 62 characters
    assert code == 0, tf.first_error(output)
    assert "terraform_data.bucket_names will be created" in output
