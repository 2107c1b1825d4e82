"""The build as a Glue Python shell job: write -> audit -> publish on Athena.

Arguments arrive as Glue job parameters (--name value). getResolvedOptions is used when
awsglue is importable (on Glue); argparse otherwise (tests, a laptop with AWS credentials).
Python 3.9-compatible, like everything it imports: Glue Python shell runs 3.9.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from marketlake.config import Settings
from marketlake.errors import BuildBlocked
from marketlake.lake.audit import new_run_id
from marketlake.lakes import build_engine, job_settings
from marketlake.lock import LakeLocked, holder_here, store_lock
from marketlake.storage import S3Store
from marketlake.wap.pipeline import TABLE, run_build

log = logging.getLogger("marketlake.job")

REQUIRED = ["lake_bucket", "glue_database", "athena_workgroup"]
# The build settings (max_bad_row_pct, keep_versions) default to "": unset, Settings gives
# its own default (config.py declares each once); Terraform passes them explicitly.
OPTIONAL = {
    "lake_prefix": "",
    "alerts_topic_arn": "",
    "full_build": "false",
    "max_bad_row_pct": "",
    "keep_versions": "",
}


def parse_args(argv: Sequence[str]) -> dict[str, str]:
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:
        parser = argparse.ArgumentParser(description="marketlake build on Athena")
        for name in REQUIRED:
            parser.add_argument(f"--{name}", required=True)
        for name, default in OPTIONAL.items():
            parser.add_argument(f"--{name}", default=default)
        known, _ = parser.parse_known_args(list(argv)[1:])  # Glue adds its own arguments
        return vars(known)
    # getResolvedOptions insists on every name it is given: ask only for those present.
    present = [name for name in OPTIONAL if f"--{name}" in argv]
    args = dict(OPTIONAL)
    args.update(getResolvedOptions(list(argv), REQUIRED + present))
    return args


def _flag(value: str) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


def build_settings(args: dict[str, str]) -> Settings:
    """The build's settings from the job's arguments (lakes.job_settings: `build --here`
    reads the same arguments from the deployed job)."""
    return job_settings(args)


def glue_argument(argv: Sequence[str], name: str) -> str | None:
    """An argument Glue itself passes to every run (--JOB_NAME, --JOB_RUN_ID), if present."""
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def lock_holder(argv: Sequence[str], run_id: str) -> str:
    """What the lake's lock says while this job holds it: the Glue job run to look up."""
    job_run = glue_argument(argv, "--JOB_RUN_ID")
    if not job_run:  # run by hand, outside Glue
        return holder_here(f"marketlake glue build {run_id}")
    job = glue_argument(argv, "--JOB_NAME")
    return f"glue job {job + ' ' if job else ''}run {job_run} (build {run_id})"


def run(argv: Sequence[str], athena=None, glue=None, s3=None, sns=None) -> dict:
    args = parse_args(argv)
    store = S3Store(args["lake_bucket"], args["lake_prefix"], client=s3)
    settings = build_settings(args)
    run_id = new_run_id()
    engine = build_engine(args, store, run_id, athena, glue)
    try:
        # The lock first, before the engine touches anything: a rollback or another build
        # holding it means this one writes nothing.
        with store_lock(store, lock_holder(argv, run_id)), engine:
            result = run_build(
                settings, store, engine, full=_flag(args["full_build"]), run_id=run_id
            )
    except BuildBlocked as exc:
        _alert(sns, args["alerts_topic_arn"], f"marketlake: {TABLE} build blocked", str(exc))
        raise
    except LakeLocked as exc:
        # The day's data stays unbuilt until someone runs the build again: say so.
        subject = f"marketlake: {TABLE} build refused, the lake is locked"
        _alert(sns, args["alerts_topic_arn"], subject, str(exc))
        raise
    summary = {
        "run_id": result.run_id,
        "status": result.status,
        "mode": result.mode,
        "rows_written": result.rows_written,
        "rows_quarantined": result.rows_quarantined,
        "years": result.years,
    }
    log.info(json.dumps(summary))
    return summary


def _alert(sns, topic_arn: str, subject: str, message: str) -> None:
    if not topic_arn:
        return
    if sns is None:
        import boto3

        sns = boto3.client("sns")
    sns.publish(TopicArn=topic_arn, Subject=subject[:100], Message=message)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        run(sys.argv if argv is None else argv)
    except (BuildBlocked, LakeLocked) as exc:
        log.error("%s", exc)
        return 1
    return 0
