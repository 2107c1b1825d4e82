"""The deployed lake the CLI reaches with --home s3://bucket[/prefix]: the bucket as an
S3Store, and Athena (with the Glue catalog) as its engine, named by the deployment descriptor
Terraform writes into the bucket (terraform/deployment.tf), so the user types only the bucket.
Credentials come from the usual AWS chain; the region from the descriptor."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from marketlake.config import S3Lake, Settings, env_name
from marketlake.engines.athena import AthenaEngine
from marketlake.engines.confined import Show
from marketlake.errors import MarketlakeError, QueryError, Unreachable
from marketlake.lake.state import STATE_KEY
from marketlake.refusals import error_of, error_summary, refusal
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

if TYPE_CHECKING:
    import pandas as pd

# What to do about each kind of refusal (marketlake.refusals) met while querying Athena.
_ATHENA_REMEDIES = {
    "credentials": "no valid AWS credentials: set AWS_PROFILE or renew the session "
    "(aws sso login), then run this again",
    "access": "grant athena:GetWorkGroup, athena:StartQueryExecution, athena:GetQueryExecution "
    "and athena:GetQueryResults on the workgroup, s3:GetObject on its output location and the "
    "Glue reads of the database to the role or user running marketlake",
    "kms": "allow kms:Decrypt on the stack's KMS key (the workgroup encrypts its results with "
    "it) to the role or user running marketlake",
    "missing": "the workgroup's results bucket does not exist: run `make deploy`",
}


def client(service: str, region: str | None):
    """A boto3 client (tests put FakeAthena in its place: moto's Athena runs no SQL)."""
    import boto3

    return boto3.client(service, region_name=region or None)


def session(region: str | None):
    """A boto3 Session for awswrangler, which makes its own clients from it (tests put one in
    its place whose Athena client is FakeAthena)."""
    import boto3

    return boto3.Session(region_name=region or None)


def _show(wr, show: Show, database: str, boto3_session) -> pd.DataFrame:
    """SHOW TABLES / SHOW COLUMNS from Glue, as the local lake answers them: table_name, or
    column_name and data_type (Glue's Hive type names)."""
    import pandas as pd

    if show.table is None:
        tables = wr.catalog.get_tables(database=database, boto3_session=boto3_session)
        names = sorted(str(table["Name"]) for table in tables)
        return pd.DataFrame({"table_name": pd.Series(names, dtype=object)})
    try:
        columns = wr.catalog.table(database, show.table.lower(), boto3_session=boto3_session)
    except Exception as exc:
        if error_of(exc)[0] != "EntityNotFoundException":
            raise
        raise QueryError(
            f"no table {show.table} in Glue database {database}; `SHOW TABLES` lists them"
        ) from None
    return pd.DataFrame(
        {
            "column_name": columns["Column Name"].astype(object),
            "data_type": columns["Type"].astype(object),
        }
    )


@dataclass
class RemoteLake:
    url: S3Lake
    deployment: Deployment
    store: S3Store

    def engine(self, run_id: str = "cli") -> AthenaEngine:
        """Athena in the deployment's (query) workgroup and database: reads, and the view
        and catalog switch of a rollback; `run_id` names the run's scratch tables."""
        region = self.deployment.region
        return AthenaEngine(
            self.deployment.glue_database,
            self.deployment.athena_workgroup,
            self.store.uri().rstrip("/"),
            run_id,
            athena=client("athena", region),
            glue=client("glue", region),
            s3_store=self.store,
            poll_seconds=0.5,
        )

    def query(
        self,
        statement: str,
        described: tuple[str | None, str] | None = None,
        show: Show | None = None,
    ) -> pd.DataFrame:
        """`statement` (checked read-only already) on Athena in the deployment's workgroup and
        database, through awswrangler: it starts the query, waits for it and reads the result
        CSV Athena wrote to the workgroup's output location into pandas. `described` is the
        (database, table) of a DESCRIBE, which Athena answers with text: awswrangler's
        describe_table reads it. `show` (SHOW TABLES / COLUMNS, which Athena answers with text
        too) is read from the Glue catalog, in the local lake's columns (engines.duckdb_show).
        A refusal or a failed query is one line naming the workgroup."""
        import awswrangler as wr  # here, not at the top: it takes a second to import

        workgroup, database = self.deployment.athena_workgroup, self.deployment.glue_database
        boto3_session = session(self.deployment.region)
        try:
            with warnings.catch_warnings():
                # A workgroup without an output location: awswrangler would create a bucket
                # for the results (a write); its warning stops it first.
                warnings.filterwarnings("error", "No `s3_output`", UserWarning)
                if show is not None:
                    return _show(wr, show, show.database or database, boto3_session)
                if described is not None:
                    return wr.athena.describe_table(
                        described[1],
                        database=described[0] or database,
                        workgroup=workgroup,
                        boto3_session=boto3_session,
                        athena_query_wait_polling_delay=0.5,
                    )
                # Not the CTAS or UNLOAD approach: both write tables or files of their own.
                # keep_files: deleting the result would need s3:DeleteObject.
                return wr.athena.read_sql_query(
                    statement,
                    database=database,
                    workgroup=workgroup,
                    ctas_approach=False,
                    unload_approach=False,
                    keep_files=True,
                    boto3_session=boto3_session,
                    athena_query_wait_polling_delay=0.5,
                )
        except wr.exceptions.QueryFailed as exc:
            raise QueryError(
                f"Athena query failed in workgroup {workgroup}: {_first_line(exc)}; correct the "
                f"statement (Athena's Trino SQL, tables of database {database}) and run it again"
            ) from None
        except wr.exceptions.QueryCancelled as exc:
            raise QueryError(
                f"Athena query cancelled in workgroup {workgroup}: {_first_line(exc)}; Athena "
                "cancels a query that would scan past the workgroup's cutoff "
                "(athena_bytes_scanned_cutoff) or run past its timeout: filter on year and "
                "trade_date to scan less"
            ) from None
        except UserWarning:
            raise MarketlakeError(
                f"Athena workgroup {workgroup} has no query result location, where Athena "
                "writes what a query returns; run `make deploy` to set it (terraform/athena.tf)"
            ) from None
        except Exception as exc:
            kind = refusal(exc)
            if kind is None and error_of(exc)[0] == "InvalidRequestException":
                # Athena's answer for a workgroup that is missing or disabled, among others.
                raise MarketlakeError(
                    f"Athena workgroup {workgroup}: {error_summary(exc)}; if the workgroup is "
                    "missing or disabled, run `make deploy`"
                ) from None
            if kind is None:
                raise
            raise Unreachable(
                f"Athena workgroup {workgroup}", error_summary(exc), _ATHENA_REMEDIES[kind]
            ) from None

    def is_empty(self) -> bool:
        """No lake yet: nothing ingested (no state) and nothing built (no registry)."""
        return not self.store.exists(STATE_KEY) and not self.store.exists(registry_key(TABLE))

    def require_lake(self) -> None:
        """For what reads a lake (status, query, rollback): one line when there is none yet."""
        if self.is_empty():
            raise MarketlakeError(
                f"no lake yet at {self.url}: nothing ingested or built; the scheduled ingest "
                f"(or `marketlake --home {self.url} ingest`) starts it, then the Glue "
                f"workflow {self.deployment.glue_workflow} builds it"
            )

    # -- Glue: the deployed build ------------------------------------------------------

    def glue(self):
        return client("glue", self.deployment.region)

    def start_workflow(self) -> str:
        """Start the deployed build (crawler, then the WAP job), as the ingest Lambda does.
        Its run id, or "" when a run is already under way (it builds what landed)."""
        glue = self.glue()
        name = self.deployment.glue_workflow
        try:
            return str(glue.start_workflow_run(Name=name)["RunId"])
        except Exception as exc:
            if type(exc).__name__ == "ConcurrentRunsExceededException":
                return ""
            raise self._refused(f"Glue workflow {name}", exc, "glue:StartWorkflowRun") from exc

    def start_job(self, full: bool) -> str:
        """Start the WAP job with its deployed arguments (and --full_build); its run id. A
        run under way already is one line: Glue allows one at a time (max_concurrent_runs)."""
        glue = self.glue()
        name = self.deployment.glue_job
        arguments = {"--full_build": "true"} if full else {}
        try:
            return str(glue.start_job_run(JobName=name, Arguments=arguments)["JobRunId"])
        except Exception as exc:
            if type(exc).__name__ == "ConcurrentRunsExceededException":
                raise MarketlakeError(
                    f"a build of {self.url} is already running (Glue job {name} allows one run "
                    "at a time); wait for it (`marketlake --home "
                    f"{self.url} status` shows its run), then build again if still needed"
                ) from None
            raise self._refused(f"Glue job {name}", exc, "glue:StartJobRun") from exc

    def job_run(self, run_id: str) -> dict:
        """Glue's record of one run of the WAP job (JobRunState, ErrorMessage, ...)."""
        name = self.deployment.glue_job
        try:
            return dict(self.glue().get_job_run(JobName=name, RunId=run_id)["JobRun"])
        except Exception as exc:
            raise self._refused(f"Glue job {name}", exc, "glue:GetJobRun") from exc

    def job_arguments(self) -> dict[str, str]:
        """The WAP job's deployed arguments (the build workgroup, the lake, the settings):
        `build --here` runs the job's code with them."""
        name = self.deployment.glue_job
        try:
            job = self.glue().get_job(JobName=name)["Job"]
        except Exception as exc:
            raise self._refused(f"Glue job {name}", exc, "glue:GetJob") from exc
        return {
            key.lstrip("-"): str(value) for key, value in job.get("DefaultArguments", {}).items()
        }

    def _refused(self, resource: str, exc: Exception, action: str) -> Exception:
        kind = refusal(exc)
        if kind is None and type(exc).__name__ != "EntityNotFoundException":
            return exc  # not a refusal: the CLI prints its type and first line
        remedy = {
            "access": f"your AWS credentials need {action} on it",
            "credentials": "configure AWS credentials (aws configure, AWS_PROFILE, or SSO)",
            "kms": "a KMS key refused the call: your credentials need kms:Decrypt on the "
            "lake's key",
        }.get(kind or "", f"it is named in {self.store.uri(DESCRIPTOR_KEY)}: run `make deploy`")
        return Unreachable(resource, error_summary(exc), remedy)


def _first_line(exc: BaseException) -> str:
    """Athena's reason, as awswrangler raises it (None when Athena gave none)."""
    reason = exc.args[0] if exc.args else None
    return (str(reason or "").splitlines() or [""])[0] or "no reason given"


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


def job_settings(args: Mapping[str, str]) -> Settings:
    """The build's settings from the WAP job's arguments; one left empty is Settings'
    default. Never the process environment: the job's arguments are its whole configuration
    (the Glue job's, and `build --here`'s, which reads them from the deployed job)."""
    return Settings.from_env(
        {
            env_name("max_bad_row_pct"): args.get("max_bad_row_pct", ""),
            env_name("keep_versions"): args.get("keep_versions", ""),
        }
    )


def build_engine(args: Mapping[str, str], store: S3Store, run_id: str, athena=None, glue=None):
    """The job's Athena: its (build) workgroup, which lets a CTAS name its location."""
    return AthenaEngine(
        database=args["glue_database"],
        workgroup=args["athena_workgroup"],
        lake_uri=store.uri().rstrip("/"),
        run_id=run_id,
        athena=athena,
        glue=glue,
        s3_store=store,
    )
