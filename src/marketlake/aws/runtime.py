"""What the ingest Lambda needs of the AWS SDK it runs with, checked before it spends any of
the day's API quota.

The lake's state is written with S3 conditional writes (PutObject If-None-Match to create,
If-Match to replace). botocore knows IfNoneMatch on PutObject since 1.35.2 and IfMatch since
1.35.69 (botocore's changelog, .changes/1.35.2.json and .changes/1.35.69.json). An older
botocore refuses both parameters before a request leaves. The Lambda zip carries its own
boto3/botocore (requirements/lambda-sdk.txt), because AWS documents no SDK version for a
Python runtime ("Runtime-included SDK versions": it "depends on the runtime version and your
AWS Region"); this check proves at start which one is imported.
"""

from __future__ import annotations

import functools

CONDITIONAL_WRITE_PARAMETERS = ("IfMatch", "IfNoneMatch")
CONDITIONAL_WRITES_SINCE = "1.35.69"  # the first botocore with both parameters


@functools.lru_cache(maxsize=1)
def botocore_supports_conditional_writes() -> bool:
    """Whether the botocore this process imports can send PutObject's IfMatch and IfNoneMatch.

    Reads the S3 model botocore ships (no credentials, no request): the parameters exist
    exactly when that model declares them, whatever the version string says."""
    import botocore.session

    members = (
        botocore.session.get_session()
        .get_service_model("s3")
        .operation_model("PutObject")
        .input_shape.members
    )
    return all(name in members for name in CONDITIONAL_WRITE_PARAMETERS)


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


def conditional_writes_refusal() -> str | None:
    """None when conditional writes are available; else the one line to fail the run with."""
    if botocore_supports_conditional_writes():
        return None
    found = sdk_versions()
    return (
        f"botocore {found['botocore']} (from {found['botocore_path']}) cannot send S3 "
        f"conditional writes (PutObject IfMatch/IfNoneMatch, botocore >= "
        f"{CONDITIONAL_WRITES_SINCE}), which the lake's state needs: rebuild the Lambda zip "
        "with make package, which bundles boto3/botocore"
    )
