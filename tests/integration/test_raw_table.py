"""The raw table without a crawler on the daily path (moto Glue and S3): the build adds the
partitions of Terraform's raw_daily_prices itself, says what to run when the table is
missing, and the weekly schema check (athena_fake.crawl_raw) then has nothing to add."""

from __future__ import annotations

import boto3
import pytest
from athena_fake import RAW_TABLE, crawl_raw, raw_table_input

from marketlake.engines.athena import AthenaEngine
from marketlake.errors import MarketlakeError
from marketlake.lake import raw
from marketlake.storage import S3Store

BUCKET, DATABASE = "marketlake-raw-test", "marketlake"


@pytest.fixture
def aws(moto_aws):
    glue, s3 = boto3.client("glue"), boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    glue.create_database(DatabaseInput={"Name": DATABASE})
    yield glue, s3


def engine(glue, s3) -> AthenaEngine:
    return AthenaEngine(
        DATABASE,
        "wg",
        f"s3://{BUCKET}",
        run_id="test",
        athena=object(),  # register_raw runs no query
        glue=glue,
        s3_store=S3Store(BUCKET, client=s3),
    )


def land(s3, day: str) -> None:
    header = ",".join(raw.RAW_COLUMNS)
    row = f"NVDA,{day},1,2,0.5,1.5,100,synthetic,{day} 22:00:00.000"
    key = f"{raw.RAW_PREFIX}ingest_date={day}/NVDA.csv"
    s3.put_object(Bucket=BUCKET, Key=key, Body=f"{header}\r\n{row}\r\n".encode())


def test_a_missing_raw_table_names_make_deploy(aws):
    glue, s3 = aws
    land(s3, "2024-01-02")
    with pytest.raises(MarketlakeError, match=r"raw_daily_prices is missing; `make deploy`"):
        engine(glue, s3).register_raw(RAW_TABLE, raw.RAW_PREFIX.rstrip("/"))


def test_the_build_adds_the_partitions_and_the_weekly_check_finds_nothing_to_do(aws):
    glue, s3 = aws
    glue.create_table(DatabaseName=DATABASE, TableInput=raw_table_input(BUCKET))  # as Terraform
    land(s3, "2024-01-02")
    land(s3, "2024-01-03")
    engine(glue, s3).register_raw(RAW_TABLE, raw.RAW_PREFIX.rstrip("/"))
    found = glue.get_partitions(DatabaseName=DATABASE, TableName=RAW_TABLE)["Partitions"]
    assert sorted(p["Values"][0] for p in found) == ["2024-01-02", "2024-01-03"]
    serde = {p["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] for p in found}
    assert serde == {"org.apache.hadoop.hive.serde2.OpenCSVSerde"}  # the table's, copied
    assert crawl_raw(glue, s3, BUCKET, DATABASE) == []
    again = glue.get_partitions(DatabaseName=DATABASE, TableName=RAW_TABLE)["Partitions"]
    assert len(again) == 2
