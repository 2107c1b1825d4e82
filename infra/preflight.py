"""Fail fast, in one line, when `make plan/deploy/destroy` cannot reach AWS.

Checks what Terraform needs before it starts: the terraform CLI and AWS credentials that
work (sts:GetCallerIdentity). Run with the project's venv Python (boto3 is a dev dependency).
"""

from __future__ import annotations

import os
import shutil
import sys


def main() -> int:
    terraform = os.environ.get("TF", "terraform")
    if shutil.which(terraform) is None:
        print(
            f"error: {terraform} not found: install Terraform >= 1.5 "
            "(https://developer.hashicorp.com/terraform/install) or run make TF=/path/to/terraform",
            file=sys.stderr,
        )
        return 1
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        print("error: boto3 is missing from the venv: run make install", file=sys.stderr)
        return 1
    try:
        identity = boto3.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        print(
            f"error: no working AWS credentials ({type(exc).__name__}): run `aws configure`, "
            "or export AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and AWS_REGION",
            file=sys.stderr,
        )
        return 1
    print(f"deploying as {identity['Arn']} (account {identity['Account']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
