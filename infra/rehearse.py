"""`make rehearse`: the whole deploy against a local AWS emulator, with no AWS account.

  1. start moto's server (pinned in constraints.txt) on a free port of 127.0.0.1;
  2. publish stand-ins for the two public Lambda layers into it;
  3. terraform apply of terraform/ from a generated, git-ignored working copy (.rehearsal/)
     whose override points the aws provider at the emulator and works around its gaps;
  4. one weekday through what was deployed, every setting read back from the emulator:
     the schedule (GetSchedule), the ingest Lambda's handler run in-process with the
     environment Terraform gave the function and the key from the deployed secret, against
     a loopback Alpha Vantage stand-in; the Glue workflow run it starts, the crawler's pass,
     the Glue job's entry point with the job's DefaultArguments, and daily_prices and every
     view queried through the project's DuckDB-backed Athena fake;
  5. the stack applied again with data_provider = "polygon" and tickers = ["ALL"], which
     must change only the Polygon secret, the function and its role's policy; then the
     Lambda against a loopback Polygon of a few hundred tickers, a short backfill and a
     weekday of one grouped-daily request, each built (infra/weekday_polygon.py);
  6. the operator's CLI on the deployed bucket, `marketlake --home s3://...`: status, query,
     import of a small file (its build run), rollback, and status again, which must show
     daily_prices switched back (infra/weekday_cli.py);
  7. a second plan, which may show only the differences the emulator is known to cause
     (drift.py);
  8. terraform destroy.

Every stage prints its seconds; a failure names the stage and the first error. The emulator
and the stand-ins are stopped on exit, failure included. Run with the project's venv Python
after `make package` (the Makefile target does both).
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import time
from zoneinfo import ZoneInfo

import aws_calls
import tf
import weekday_cli
import weekday_polygon
from drift import EXPECTED_DRIFT, changed_attributes, unexpected_changes  # noqa: F401
from emulated import (  # noqa: F401  (GAPS, SERVICES, override_text: the tests read them here)
    GAPS,
    REGION,
    SERVICES,
    WORK,
    StageFailed,
    client,
    emulator,
    override_text,
    rehearsal_environment,
    say,
    stand_in_layers,
    working_copy,
)
from weekday import (
    TESTS_INTEGRATION,
    Deployed,
    check,
    check_result,
    check_schedule,
    check_workflow,
    crawl,
    empty_buckets,
    last_weekday,
    run_glue_job,
    run_lambda,
)

REPO = tf.REPO

# -- Terraform --------------------------------------------------------------------------------


def managed_resources(state_list: str) -> int:
    return sum(
        1 for line in state_list.split() if not (line.startswith("data.") or ".data." in line)
    )


def arguments(argv: list[str] | None):
    import argparse

    parser = argparse.ArgumentParser(
        prog="rehearse.py",
        description="Apply terraform/ to a local AWS emulator, run a weekday through what it "
        "deployed, check every AWS call against its role's policy, and destroy it.",
    )
    parser.add_argument(
        "--without",
        metavar="TEXT",
        help="apply the stack less every line of terraform/*.tf that mentions TEXT (e.g. "
        "raw_landed): a grant the code needs must then fail the rehearsal at the iam stage",
    )
    return parser.parse_args(argv)


def check_calls(deployed: Deployed, calls: aws_calls.Recorder) -> int:
    """Every call the Lambda and the job made, against its role's policies as deployed.
    Returns how many calls were checked; one not allowed fails, naming them all."""
    if not calls.calls:
        raise AssertionError("no AWS call was recorded: the recorder is broken")
    account_id = deployed.function["FunctionArn"].split(":")[4]
    account = aws_calls.Account(REGION, account_id, lambda name: client(name, deployed.endpoint))
    iam = client("iam", deployed.endpoint)
    roles = {call.role for call in calls.calls}
    policies = {role: aws_calls.role_policies(iam, role) for role in sorted(roles)}
    checked, denials = aws_calls.check(calls.calls, policies, account)
    if denials:
        unique = list(dict.fromkeys(str(denial) for denial in denials))
        raise AssertionError(
            f"{len(unique)} AWS call(s) the deployed policies do not allow: " + "; ".join(unique)
        )
    say(f"iam: {len(calls.calls)} calls ({checked} IAM requests) of roles {sorted(roles)} allowed")
    return len(calls.calls)


def main(argv: list[str] | None = None) -> int:
    options = arguments(argv)
    started = time.monotonic()
    stage = "setup"
    tally = {}
    try:
        tf.terraform_binary()
        mirror = tf.find_mirror()
        dist = REPO / "dist" / "aws"
        if not (dist / "ingest_lambda.zip").is_file() or not list(dist.glob("marketlake-*.whl")):
            raise StageFailed(stage, f"{dist} has no Lambda zip or wheel: run make package first")
        WORK.mkdir(exist_ok=True)
        log = WORK.parent / ".rehearsal.log"
        log.write_text("")
        say(f"terraform: {'aws provider from ' + str(mirror) if mirror else 'registry'}; log {log}")

        def timed(name: str, action):
            nonlocal stage
            stage = name
            t0 = time.monotonic()
            result = action()
            say(f"{name:<10} ok ({time.monotonic() - t0:.0f} s)")
            return result

        with emulator(WORK.parent / ".rehearsal-moto.log") as endpoint:
            say(f"emulator: moto {moto_version()} on {endpoint}")
            layers = timed("layers", lambda: stand_in_layers(endpoint))
            variables = {
                **layers,
                # Premium pacing: the stand-in has no limit, and free-tier pacing (5 a
                # minute) would spend two minutes waiting for the ten default tickers.
                "alphavantage_calls_per_minute": 75,
                "alphavantage_calls_per_day": 0,
                # A throwaway deploy: destroy empties the buckets the weekday filled, as
                # docs/deploying.md says a user does before tearing down.
                "force_destroy_buckets": True,
            }
            work = working_copy(endpoint, variables, options.without)
            if options.without:
                say(f"without every line of terraform/ that mentions {options.without!r}")
            env = rehearsal_environment(work, mirror, endpoint)
            timed("init", lambda: tf.run(["init", "-input=false"], work, env, log))
            timed(
                "apply",
                lambda: tf.run(["apply", "-auto-approve", "-input=false"], work, env, log),
            )
            _, listed = tf.run(["state", "list"], work, env, log)
            tally["applied"] = managed_resources(listed)
            _, out = tf.run(["output", "-json"], work, env, log)
            outputs = {name: body["value"] for name, body in json.loads(out).items()}

            sys.path.insert(0, str(TESTS_INTEGRATION))
            deployed = timed("read back", lambda: Deployed(endpoint, outputs))
            event = timed("schedule", lambda: check_schedule(deployed))
            # The sessions are New York's: a machine whose date is ahead of it would ask
            # for a day that has not begun there.
            today = dt.datetime.now(ZoneInfo("America/New_York")).date()
            as_of = last_weekday(today + dt.timedelta(days=1))
            calls = aws_calls.Recorder()
            ingest_role = deployed.function["Role"].rsplit("/", 1)[-1]
            with calls.as_role(ingest_role):
                summary = timed("lambda", lambda: run_lambda(deployed, event, as_of, log))
            job = timed("workflow", lambda: check_workflow(deployed, summary))
            tally["runs"] = 1
            from athena_fake import FakeAthena

            job_role = deployed.glue.get_job(JobName=job)["Job"]["Role"].rsplit("/", 1)[-1]
            with calls.as_role(job_role):
                # Athena reads and writes S3 and the catalog with its caller's credentials:
                # the fake's own clients are made here, so their calls count as the job's.
                athena = calls.athena(
                    FakeAthena(client("glue", endpoint), client("s3", endpoint)), job_role
                )
                timed("glue job", lambda: run_glue_job(deployed, job, athena, log))
            timed("crawler", lambda: crawl(deployed, calls))  # the weekly schema check
            tally["calls"] = timed("iam", lambda: check_calls(deployed, calls))
            reader = FakeAthena(deployed.glue, deployed.s3)
            tally["rows"] = timed("result", lambda: check_result(deployed, reader, summary))
            # The same stack switched to Polygon and the whole market by its variables.
            deployed, tally["polygon"] = weekday_polygon.rehearse(
                timed, work, env, log, variables, as_of, check_calls
            )
            tally["runs"] += 2  # the backfill's build and the weekday's
            # The operator's CLI on the deployed bucket: status, query, import, rollback.
            operator = FakeAthena(deployed.glue, deployed.s3)
            tally["operator"] = timed(
                "operator", lambda: weekday_cli.rehearse(deployed, job, operator, as_of, log)
            )
            tally["runs"] += 1  # the import's build

            def plan_again() -> None:
                tf.run(
                    ["plan", "-input=false", "-detailed-exitcode", "-out=second.tfplan"],
                    work,
                    env,
                    log,
                    ok=(0, 2),
                )
                _, shown = tf.run(["show", "-json", "second.tfplan"], work, env, log)
                extra = unexpected_changes(json.loads(shown))
                if extra:
                    raise AssertionError(
                        "changes the emulator does not explain: " + ", ".join(extra)
                    )

            timed("plan again", plan_again)

            def destroy() -> int:
                # Counted from the state: the objects Terraform uploaded went with the
                # buckets' emptying, so `destroy` itself reports fewer.
                emptied = empty_buckets(deployed)
                say(f"destroy: emptied the buckets first ({emptied} object versions)")
                _, before = tf.run(["state", "list"], work, env, log)
                tf.run(["destroy", "-auto-approve", "-input=false"], work, env, log)
                _, left = tf.run(["state", "list"], work, env, log)
                check(managed_resources(left) == 0, f"left after destroy: {left.split()}")
                return managed_resources(before)

            tally["destroyed"] = timed("destroy", destroy)
    except Exception as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"rehearse: FAILED at {stage}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rehearse: interrupted at {stage}; the emulator was stopped", file=sys.stderr)
        return 130
    say(f"done in {time.monotonic() - started:.0f} s")
    polygon = tally["polygon"]
    print(
        f"rehearsal: {tally['applied']} resources applied, {tally['runs']} workflow runs, "
        f"{tally['calls'] + polygon['calls']} AWS calls checked against their roles, "
        f"{tally['rows']} rows published, {tally['destroyed']} destroyed; polygon weekday: "
        f"{polygon['tickers']} tickers in {polygon['weekday_requests']} requests (1 for the "
        f"bars), {polygon['weekday_puts']} S3 PUTs, {polygon['weekday_rows']} rows published, "
        f"earnings of {polygon['earnings_checked']} symbols checked; "
        f"operator: {tally['operator']['commands']} CLI commands on the bucket, daily_prices "
        f"rolled back from run {tally['operator']['from']} to {tally['operator']['rolled_back_to']}"
    )
    return 0


def moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def interrupted(signum, frame):
    raise KeyboardInterrupt  # unwinds through the finally blocks that stop the emulator


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    sys.exit(main())
