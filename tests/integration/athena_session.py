"""A boto3 Session whose Athena is FakeAthena, for awswrangler (marketlake.lakes.session).

awswrangler makes its own clients, through `session.client(service_name=..., endpoint_url=...,
use_ssl=..., config=..., verify=...)` (awswrangler/_utils.py `client`), and reads the
session's region_name and credentials. This is a real boto3 Session, so those are boto3's
own: only `client("athena")` answers differently. Every other service's client is boto3's,
which moto answers inside mock_aws."""

from __future__ import annotations

import boto3


class AthenaSession(boto3.Session):
    def __init__(self, athena, region_name: str | None = None) -> None:
        super().__init__(region_name=region_name)
        self.athena = athena
        self.services: list[str] = []  # every client asked for, in order

    def client(self, service_name, *args, **kwargs):
        self.services.append(service_name)
        if service_name == "athena":
            return self.athena
        return super().client(service_name, *args, **kwargs)


RESULTS_BUCKET = "marketlake-athena-results-test"


def query_workgroup(athena, s3, name: str) -> str:
    """The workgroup `query` runs in, as terraform/athena.tf makes it: it enforces its
    configuration and its results go to their own bucket. Returns its output location."""
    location = f"s3://{RESULTS_BUCKET}/results/"
    s3.create_bucket(Bucket=RESULTS_BUCKET)
    athena.create_work_group(
        Name=name,
        Configuration={
            "EnforceWorkGroupConfiguration": True,
            "ResultConfiguration": {
                "OutputLocation": location,
                "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
            },
        },
    )
    return location
