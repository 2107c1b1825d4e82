"""The deployed lake the CLI reaches with --home s3://bucket[/prefix]: the bucket as an
S3Store, and Athena (with the Glue catalog) as its engine, named by the deployment descriptor
Terraform writes into the bucket (terraform/deployment.tf), so the user types only the bucket.
Credentials come from the usual AWS chain; the region from the descriptor."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

from marketlake.config import S3Lake
from marketlake.engines.athena import AthenaEngine
from marketlake.errors import MarketlakeError
from marketlake.lake.state import STATE_KEY
from marketlake.storage import S3Store
from marketlake.wap.build import TABLE
from marketlake.wap.versions import registry_key

DESCRIPTOR_KEY = "state/deployment.json"
# Raised when a field's meaning changes; a newer descriptor than this code reads is refused.
DESCRIPTOR_FORMAT = 1


@dataclass(frozen=True)
class Deployment:
    """state/deployment.json: what the CLI needs from the bucket alone (its keys are these
    fields plus "format"; tests/infra/test_infra_deployment.py holds Terraform to them)."""

    region: str
    glue_database: str
    athena_workgroup: str
    glue_job: str
    glue_workflow: str
    raw_crawler: str


DESCRIPTOR_KEYS = ("format", *(f.name for f in fields(Deployment)))


def client(service: str, region: str | None):
    """A boto3 client (tests put FakeAthena in its place: moto's Athena runs no SQL)."""
    import boto3

    return boto3.client(service, region_name=region or None)


@dataclass
class RemoteLake:
    url: S3Lake
    deployment: Deployment
    store: S3Store

    def engine(self) -> AthenaEngine:
        """Athena in the deployment's workgroup and database, reading only (no run)."""
        region = self.deployment.region
        return AthenaEngine(
            self.deployment.glue_database,
            self.deployment.athena_workgroup,
            self.store.uri().rstrip("/"),
            "cli",
            athena=client("athena", region),
            glue=client("glue", region),
            s3_store=self.store,
            poll_seconds=0.5,
        )

    def is_empty(self) -> bool:
        """No lake yet: nothing ingested (no state) and nothing built (no registry)."""
        return not self.store.exists(STATE_KEY) and not self.store.exists(registry_key(TABLE))


def parse_descriptor(data: bytes, where: str) -> Deployment:
    redeploy = "run `make deploy` again to rewrite it"
    try:
        body = json.loads(data)
    except ValueError:
        raise MarketlakeError(f"{where} is not JSON; {redeploy}") from None
    if not isinstance(body, dict):
        raise MarketlakeError(f"{where} is not a JSON object; {redeploy}")
    if body.get("format") != DESCRIPTOR_FORMAT:
        raise MarketlakeError(
            f"{where} has format {body.get('format')!r}; this marketlake reads format "
            f"{DESCRIPTOR_FORMAT}: use the marketlake release that deployed the lake, or "
            f"{redeploy}"
        )
    missing = [k for k in DESCRIPTOR_KEYS[1:] if not isinstance(body.get(k), str) or not body[k]]
    if missing:
        raise MarketlakeError(f"{where} lacks {', '.join(missing)}; {redeploy}")
    return Deployment(**{k: body[k] for k in DESCRIPTOR_KEYS[1:]})


def open_remote(url: S3Lake) -> RemoteLake:
    """The deployed lake at `url`, from its descriptor. An unreachable bucket is a
    LakeUnreachable naming it and the remedy; a bucket without the descriptor is not a
    deployed marketlake lake."""
    # The descriptor holds the region: until it is read, the environment's (S3 redirects a
    # GetObject to the bucket's region either way).
    store = S3Store(url.bucket, url.prefix, client=client("s3", None))
    data, _ = store.get_tagged(DESCRIPTOR_KEY)
    if data is None:
        raise MarketlakeError(
            f"{url} is not a deployed marketlake lake: it has no {DESCRIPTOR_KEY}, which "
            "`make deploy` writes; run `make deploy`, or check the bucket name"
        )
    deployment = parse_descriptor(data, store.uri(DESCRIPTOR_KEY))
    store = S3Store(url.bucket, url.prefix, client=client("s3", deployment.region))
    return RemoteLake(url, deployment, store)
