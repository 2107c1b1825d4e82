"""The commands that write on the deployed lake (--home s3://bucket): ingest, import, build
and rollback, under the lake's lock in the bucket (state/lock.json, conditional writes), the
one the ingest Lambda and the Glue job take. Their local twins are in ingesting.py and
building.py; what they share (the ingest, the import, the build, the rollback) is the
library's, so a lake on S3 gets the same checks, records and one-line errors."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from marketlake.cli.common import _escape, _progress, err, out
from marketlake.config import Settings
from marketlake.errors import MarketlakeError

if TYPE_CHECKING:
    from marketlake.ingest.runner import IngestReport
    from marketlake.lake.actions import ActionName
    from marketlake.lakes import RemoteLake
    from marketlake.wap.build import BuildResult
    from marketlake.wap.versions import Version

# Glue reports a job run's state; these are the ends (the others: STARTING, RUNNING, ...).
JOB_ENDS = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED")
# Glue's console refreshes about this often; a Python shell job takes minutes.
FOLLOW_SECONDS = 10.0


def holder(command: str) -> str:
    """Who holds the lock, as another command's refusal names it."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a container: the host still says where
        user = "?"
    return f"marketlake {command} by {user} on {socket.gethostname()} (pid {os.getpid()})"


def open_lake(settings: Settings) -> RemoteLake:
    from marketlake.lakes import open_remote

    assert settings.lake_url is not None
    return open_remote(settings.lake_url)


# -- ingest and import: land in the bucket, then start the deployed build ----------------


def ingest(
    settings: Settings,
    as_of: str | None,
    refetch: tuple[str, ...],
    refetch_days: tuple[dt.date, ...],
    provider_chosen: bool,
) -> IngestReport:
    """A backfill from a laptop: the same run as the Lambda's, on the same quota state
    (state/ingest_state.json), with no time limit; then the deployed build is started."""
    from marketlake.cli.ingesting import _do_ingest
    from marketlake.lock import store_lock
    from marketlake.sessions import parse_as_of

    if settings.provider == "synthetic" and not provider_chosen:
        # Without a key the local default is the synthetic market: never into a real lake
        # by accident.
        raise MarketlakeError(
            f"ingest into {settings.lake_url} needs a vendor key: set ALPHAVANTAGE_API_KEY or "
            "POLYGON_API_KEY (the deployed Lambda's key is in Secrets Manager), or pass "
            "--provider synthetic to land synthetic bars in it on purpose"
        )
    parse_as_of(as_of)  # a bad --as-of is refused before the bucket is reached
    lake = open_lake(settings)
    locked = store_lock(lake.store, holder("ingest"))
    report = _do_ingest(settings, as_of, refetch, refetch_days, lake.store, locked)
    if report.new_bars or sum(report.actions_landed.values()) or report.earnings_landed:
        start_build(lake)
    return report


def import_bars(
    settings: Settings, files: list[Path], symbol: str | None, build: bool, show
) -> IngestReport:
    from marketlake.ingest.importer import run_import
    from marketlake.lock import store_lock

    lake = open_lake(settings)
    with store_lock(lake.store, holder("import")):
        report = run_import(settings, lake.store, files, symbol)
    show(report)
    after_landing(lake, report.new_bars > 0, build)
    return report


def import_actions(
    settings: Settings,
    files: list[Path],
    kind: ActionName,
    symbol: str | None,
    replace: bool,
    build: bool,
    show,
) -> list[tuple[str, int, int]]:
    from marketlake.ingest.importer import run_import_actions
    from marketlake.lock import store_lock

    lake = open_lake(settings)
    with store_lock(lake.store, holder("import")):
        landed = run_import_actions(settings, lake.store, files, kind, symbol, replace=replace)
    show(landed)
    after_landing(lake, any(count for _, count, _ in landed), build)
    return landed


def import_earnings(
    settings: Settings,
    files: list[Path],
    symbol: str | None,
    replace: bool,
    eps_as_of: dt.date | None,
    build: bool,
    show,
) -> None:
    from marketlake.ingest.import_earnings import run_import_earnings
    from marketlake.lock import store_lock

    lake = open_lake(settings)
    with store_lock(lake.store, holder("import")):
        imported = run_import_earnings(
            settings, lake.store, files, symbol, replace=replace, eps_as_of=eps_as_of
        )
    show(imported)
    after_landing(lake, any(one.landed for one in imported), build)


def after_landing(lake: RemoteLake, landed: bool, build: bool) -> None:
    if landed and build:
        start_build(lake)
    elif landed:
        out.print(f"next: marketlake --home {lake.url} build")


def start_build(lake: RemoteLake) -> None:
    """Start the deployed workflow (crawler, then the WAP job), as the Lambda does after it
    lands bars; say how to follow it, or how to start it when it could not be."""
    name = lake.deployment.glue_workflow
    try:
        run_id = lake.start_workflow()
    except MarketlakeError as exc:
        # What landed stays landed (and recorded): the build is what is left to do.
        err.print(f"warning: the build was not started: {_escape(str(exc))}", soft_wrap=True)
        out.print(f"next: marketlake --home {lake.url} build")
        return
    if run_id:
        out.print(
            f"build: started Glue workflow {name} (run {run_id}); `marketlake --home "
            f"{lake.url} status` shows its result in a few minutes",
            soft_wrap=True,
        )
    else:
        out.print(
            f"build: Glue workflow {name} is already running and may have listed the raw "
            f"zone before this landed; when it ends, run `marketlake --home {lake.url} build`",
            soft_wrap=True,
        )


# -- build: the deployed job, followed; or its code here ---------------------------------


def build(
    settings: Settings,
    full: bool,
    here: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> BuildResult | None:
    lake = open_lake(settings)
    if lake.is_empty():
        raise MarketlakeError(
            f"nothing to build at {lake.url} yet: ingest or import first "
            f"(`marketlake --home {lake.url} ingest`)"
        )
    if here:
        return build_here(lake, full)
    follow_job(lake, full, sleep)
    return None


def build_here(lake: RemoteLake, full: bool) -> BuildResult:
    """The Glue job's code on this machine: its deployed arguments (the build workgroup,
    the settings), Athena for the SQL, the laptop's credentials; under the same lock."""
    from marketlake.cli.building import _print_build, build_steps
    from marketlake.lake.audit import new_run_id
    from marketlake.lakes import build_engine, client, job_settings
    from marketlake.lock import store_lock
    from marketlake.wap.pipeline import run_build

    args = lake.job_arguments()
    if args.get("lake_bucket") != lake.url.bucket or args.get("lake_prefix", "") != (
        lake.url.prefix or ""
    ):
        raise MarketlakeError(
            f"Glue job {lake.deployment.glue_job} builds s3://{args.get('lake_bucket')}/"
            f"{args.get('lake_prefix', '')}, not {lake.url}: the descriptor "
            f"{lake.store.uri('state/deployment.json')} is another stack's; run `make deploy`"
        )
    run_id = new_run_id()
    region = lake.deployment.region
    engine = build_engine(
        args, lake.store, run_id, client("athena", region), client("glue", region)
    )
    with store_lock(lake.store, holder("build --here")), _progress() as progress, engine:
        result = run_build(
            job_settings(args),
            lake.store,
            engine,
            full=full or args.get("full_build", "").lower() == "true",
            observer=build_steps(progress),
            run_id=run_id,
        )
    _print_build(result)
    return result


def follow_job(lake: RemoteLake, full: bool, sleep: Callable[[float], None]) -> None:
    """Start the WAP job and follow it to its end; its error (Glue's ErrorMessage, the
    job's own one line) is ours. Ctrl-C stops the following, not the job."""
    from marketlake.lock import refuse_if_held
    from marketlake.wap.build import TABLE
    from marketlake.wap.versions import load_registry

    refuse_if_held(lake.store)  # the job would be refused: say so here, not in its log
    before = load_registry(lake.store, TABLE).current
    job = lake.deployment.glue_job
    run_id = lake.start_job(full)
    out.print(
        f"build: started Glue job {job} run {run_id}"
        + (" (a full rebuild)" if full else "")
        + "; following it (Ctrl-C stops following, not the build)",
        soft_wrap=True,
    )
    started = time.monotonic()
    with _progress() as progress:
        task = progress.add_task(f"Glue job {job}", total=None, symbol="")
        while True:
            answer = lake.job_run(run_id)
            state = str(answer.get("JobRunState", ""))
            progress.update(task, symbol=f"{state.lower()} {time.monotonic() - started:.0f}s")
            if state in JOB_ENDS:
                break
            sleep(FOLLOW_SECONDS)
    if state != "SUCCEEDED":
        why = " ".join(str(answer.get("ErrorMessage") or "no error message").split())
        raise MarketlakeError(
            f"the build (Glue job {job} run {run_id}) ended {state}: {why}. Nothing was "
            f"published by it; `marketlake --home {lake.url} status` shows its checks, and "
            "CloudWatch log group /aws-glue/python-jobs/error its log"
        )
    _print_published(lake, before, TABLE)


def _print_published(lake: RemoteLake, before: str | None, table: str) -> None:
    from marketlake.wap.versions import load_registry

    registry = load_registry(lake.store, table)
    if registry.current and registry.current != before:
        version = registry.get(registry.current)
        years = sorted(version.partitions)
        span = f"{years[0]}-{years[-1]}" if len(years) > 1 else (years[0] if years else "")
        out.print(f"build: run {version.run_id} published to {table} (year(s) {span})")
    else:
        out.print(
            f"build: nothing new to build; {table} still reads run {registry.current}"
            if registry.current
            else "build: nothing was published"
        )
    out.print(f"  checks and runs: marketlake --home {lake.url} status")


# -- rollback ---------------------------------------------------------------------------


def rollback(settings: Settings, to: str | None) -> tuple[Version, list[str]]:
    """The view and the registry switched back, under the lock, by the same conditional
    write as the job's publish; Athena (the query workgroup) runs the view's DDL."""
    from marketlake.lake.audit import new_run_id
    from marketlake.lock import store_lock
    from marketlake.wap.pipeline import rollback as do_rollback

    lake = open_lake(settings)
    lake.require_lake()
    warnings: list[str] = []
    with store_lock(lake.store, holder("rollback")), lake.engine(new_run_id()) as engine:
        target = do_rollback(settings, lake.store, engine, to, warnings=warnings)
    return target, warnings
