"""Which AWS SDK the ingest Lambda imported, for the first log line of a run.

The Lambda zip carries its own boto3/botocore (requirements/lambda-sdk.txt), because AWS
documents no SDK version for a Python runtime ("Runtime-included SDK versions": it "depends
on the runtime version and your AWS Region"), and the lake's state needs S3 conditional
writes (botocore >= 1.35.69; storage.require_conditional_writes checks the client). The log
shows whether the zip's SDK or another one is in use.
"""

from __future__ import annotations


def sdk_versions() -> dict[str, str]:
    """boto3's and botocore's versions and where they were imported from, for the first log
    line of a run: it shows whether the zip's SDK or another one is in use."""
    import boto3
    import botocore

    return {
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "botocore_path": str(botocore.__file__),
    }
