"""The rehearsal's operator: after the weekdays, `marketlake --home s3://<deployed bucket>`
against the emulator, in order: status, query, import of a small file (its build started
and run as Glue would run it), rollback, and status again, which must show daily_prices
switched back (`make rehearse`, infra/rehearse.py).

In-process through typer's CliRunner with the emulator's endpoint in the environment, so
every S3 and Glue call goes to the emulator; Athena is the DuckDB-backed stand-in, as for the
job (the emulator's own Athena runs no SQL)."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from unittest import mock

from emulated import aws_environment, client, patched_environ
from weekday import Deployed, check, run_glue_job

SYMBOL = "RHRSL"  # a ticker neither stand-in market trades


def sessions_before(as_of: dt.date, count: int) -> list[dt.date]:
    """The last `count` NYSE sessions up to `as_of`."""
    from marketlake.sessions import sessions_between

    return sessions_between(as_of - dt.timedelta(days=3 * count + 7), as_of)[-count:]


class Operator:
    def __init__(self, deployed: Deployed, athena, log: Path) -> None:
        self.deployed = deployed
        self.athena = athena
        self.log = log
        self.home = f"s3://{deployed.outputs['lake_bucket']}"
        self.transcript: list[str] = []
        # The stand-in answers for the deployed query workgroup as deployed: its settings
        # (output location, enforcement) read back from the emulator.
        name = deployed.outputs["athena_workgroup"]
        workgroup = client("athena", deployed.endpoint).get_work_group(WorkGroup=name)
        athena.create_work_group(Name=name, Configuration=workgroup["WorkGroup"]["Configuration"])

    def cli(self, *args: str) -> str:
        """One command; its stdout. Anything but exit 0 fails the stage with its stderr."""
        from athena_session import AthenaSession
        from typer.testing import CliRunner

        from marketlake import lakes
        from marketlake.cli import app

        plain = lakes.client

        def client_for(service, region):
            return self.athena if service == "athena" else plain(service, region)

        def session(region):  # awswrangler's clients (query): Athena is the stand-in
            return AthenaSession(self.athena, region)

        with (
            patched_environ(aws_environment(self.deployed.endpoint), ("MARKETLAKE_",)),
            mock.patch.object(lakes, "client", client_for),
            mock.patch.object(lakes, "session", session),
            mock.patch("time.sleep", lambda seconds: None),  # the stand-in answers at once
        ):
            result = CliRunner().invoke(app, ["--home", self.home, *args])
        line = f"$ marketlake --home {self.home} {' '.join(args)}"
        self.transcript.append(f"{line}\n{result.stdout}{result.stderr}")
        with self.log.open("a") as out:
            out.write(f"--- {line}\n{result.stdout}{result.stderr}\n")
        check(
            result.exit_code == 0,
            f"`{line}` exited {result.exit_code}: {result.stderr.strip() or result.stdout}",
        )
        return result.stdout

    def current(self) -> str:
        from marketlake.storage import S3Store
        from marketlake.wap.versions import load_registry

        store = S3Store(self.deployed.outputs["lake_bucket"], client=self.deployed.s3)
        current = load_registry(store, "daily_prices").current
        check(current is not None, "nothing is published")
        return str(current)

    def count(self, where: str = "") -> int:
        out = self.cli("query", f"SELECT count(*) AS n FROM daily_prices {where}", "-f", "csv")
        return int(out.splitlines()[1])


def rehearse(deployed: Deployed, job: str, athena, as_of: dt.date, log: Path) -> dict:
    """The sequence; its figures (the commands run, the versions before and after)."""
    operator = Operator(deployed, athena, log)
    first = operator.current()
    status = operator.cli("status")
    check(first in status, f"status does not show the current version {first}")
    rows = operator.count()
    check(rows > 0, "query counted no rows in daily_prices")

    days = sessions_before(as_of, 3)
    workflow = deployed.env["GLUE_WORKFLOW_NAME"]
    runs_before = len(deployed.glue.get_workflow_runs(Name=workflow)["Runs"])
    # The user's file, in a directory of its own: nothing is left in the working tree.
    with tempfile.TemporaryDirectory(prefix="rehearse-import-") as folder:
        bars = Path(folder) / f"{SYMBOL}.csv"
        bars.write_text(
            "date,open,high,low,close,volume\n"
            + "".join(f"{day},10,11,9,10.5,1000\n" for day in days)
        )
        imported = operator.cli("import", str(bars))
    check(f"import: {SYMBOL}: 3 bar(s) landed" in imported, f"import printed: {imported}")
    runs = deployed.glue.get_workflow_runs(Name=workflow)["Runs"]
    check(len(runs) == runs_before + 1, f"import started no run of workflow {workflow}")
    run_glue_job(deployed, job, athena, log, check_wheels=False)  # the run it started
    second = operator.current()
    check(second != first, "the import's build published no new version")
    check(operator.count(f"WHERE symbol = '{SYMBOL}'") == 3, f"{SYMBOL} was not published")

    rolled = operator.cli("rollback")
    check(f"now reads run {first}" in rolled, f"rollback printed: {rolled}")
    again = operator.cli("status")
    check(operator.current() == first, "the registry was not switched back")
    check("rolled_back" in again, "status shows no rollback run")
    check(operator.count(f"WHERE symbol = '{SYMBOL}'") == 0, "the view was not switched back")
    check(operator.count() == rows, "daily_prices after the rollback differs from before")
    return {"commands": len(operator.transcript), "rolled_back_to": first, "from": second}
