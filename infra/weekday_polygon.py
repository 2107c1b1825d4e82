"""The rehearsal's second weekday: the same stack applied again with data_provider = "polygon"
and tickers = ["ALL"], then the deployed Lambda run twice against a loopback Polygon of a
few hundred tickers: a short backfill up to the eve of the weekday, then the weekday itself,
which must cost one grouped-daily request for the bars, and one financials request for each
of the few symbols whose earnings it asks, whose P/E the build then publishes (`make
rehearse`, infra/rehearse.py).

A second apply rather than editing the function through the emulator: only Terraform's own
run proves what data_provider = "polygon" deploys (the Polygon secret, the function's
environment, the role's grant on that secret), and that it changes nothing else. It costs
a targeted plan and three changes, about 20 s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import sys
from pathlib import Path

import aws_calls
import tf
from drift import unexpected_changes
from emulated import client, say
from weekday import (
    SEED,
    TEST_KEY,
    TESTS_INTEGRATION,
    Deployed,
    check,
    crawl,
    invoke,
    query_engine,
    run_glue_job,
)

MARKET_TICKERS = 300  # the stand-in's market: a few hundred, every one in one answer
# The backfill's window: the last few sessions up to the eve (a whole-market backfill of the
# default 730 days is 500 requests, paced over hours on the free plan).
HISTORY_DAYS = 4
# Symbols whose earnings a run asks (POLYGON_EARNINGS_PER_RUN): a few, each one request.
EARNINGS_PER_RUN = 2
# The lake's lock, the raw object, its record, the state, the run's record, the actions;
# and per symbol whose earnings land, its raw object, its record and the state.
MAX_WEEKDAY_PUTS = 10 + 3 * EARNINGS_PER_RUN
# How close a published eps_ttm must be to the stand-in's (a sum of four doubles).
REL = 1e-9


def variables(av_variables: dict) -> dict:
    """The first apply's variables, switched to Polygon and the whole market. Unpaced: the
    stand-in has no limit, and the free plan's 5 a minute would wait 12 s between requests."""
    return {
        **av_variables,
        "data_provider": "polygon",
        "tickers": ["ALL"],
        "history_days": HISTORY_DAYS,
        "polygon_calls_per_minute": 0,
        "polygon_earnings_per_run": EARNINGS_PER_RUN,
    }


def write_variables(work: Path, values: dict) -> None:
    (work / "rehearse.auto.tfvars.json").write_text(json.dumps(values, indent=2) + "\n")


def check_function(deployed: Deployed) -> None:
    """What the second apply gave the function: the provider, the whole market, the pacing
    from the variables, the Polygon secret Terraform made, and no Alpha Vantage setting."""
    env = deployed.env
    expected = {
        "MARKETLAKE_PROVIDER": "polygon",
        "MARKETLAKE_TICKERS": "ALL",
        "MARKETLAKE_HISTORY_DAYS": str(HISTORY_DAYS),
        "POLYGON_CALLS_PER_MINUTE": "0",
        "POLYGON_EARNINGS_PER_RUN": str(EARNINGS_PER_RUN),
        "POLYGON_SECRET_ID": deployed.outputs["polygon_secret_arn"],
    }
    wrong = {k: env.get(k) for k, v in expected.items() if env.get(k) != v}
    check(not wrong, f"the function's environment has {wrong}, expected {expected}")
    check(bool(expected["POLYGON_SECRET_ID"]), "no polygon_secret_arn output")
    stray = sorted(k for k in env if k.startswith("ALPHAVANTAGE_"))
    check(not stray, f"a Polygon deployment still sets {stray}")


@dataclasses.dataclass
class Before:
    """What the lake held before the weekday, to compare the weekday's work against."""

    raw: set
    waterline: dict  # symbol -> watermark, of the market's tickers
    rows: int
    rows_on_session: int


def daily_rows(engine, session: dt.date) -> tuple[int, int, set]:
    """(rows of daily_prices, rows on `session`, the symbols on it)."""
    total = int(engine.fetch_df("SELECT count(*) AS n FROM daily_prices")["n"][0])
    on_day = engine.fetch_df(
        f"SELECT symbol FROM daily_prices WHERE trade_date = DATE '{session.isoformat()}'"
    )
    symbols = set(on_day["symbol"])
    return total, len(on_day), symbols


class PolygonWeekday:
    """The backfill and the weekday through the deployed stack, every AWS call recorded as
    the role that makes it (`calls`, an aws_calls.Recorder)."""

    def __init__(self, deployed: Deployed, calls, as_of: dt.date, log: Path) -> None:
        sys.path.insert(0, str(TESTS_INTEGRATION))  # the stand-ins
        from athena_fake import FakeAthena
        from polygon_fake_server import FakePolygon

        from marketlake.sessions import last_closed_session, parse_as_of, sessions_between

        self.deployed, self.calls, self.log = deployed, calls, log
        self.as_of = as_of
        self.session = last_closed_session(parse_as_of(as_of.isoformat()))
        self.eve = sessions_between(self.session - dt.timedelta(days=10), self.session)[-2]
        start = self.eve - dt.timedelta(days=3 * HISTORY_DAYS)
        self.server = FakePolygon(
            TEST_KEY, tickers=MARKET_TICKERS, start=start, end=self.session, seed=SEED
        ).start()
        self.ingest_role = deployed.function["Role"].rsplit("/", 1)[-1]
        self.athena = FakeAthena
        self.reader = query_engine(deployed, FakeAthena(deployed.glue, deployed.s3))
        self.figures: dict = {}

    def close(self) -> None:
        self.server.stop()

    def _invoke(self, as_of: dt.date) -> dict:
        env = {"POLYGON_BASE_URL": self.server.url}
        with self.calls.as_role(self.ingest_role):
            summary, _ = invoke(self.deployed, env, {}, as_of, self.log)
        check(not summary["failed"], f"the Lambda failed {summary['failed']}")
        check(summary["provider"] == "polygon", f"the Lambda ran {summary['provider']}")
        check(not summary["sessions_waiting"], f"sessions wait: {summary['sessions_waiting']}")
        return summary

    def _build(self, summary: dict) -> None:
        """The workflow run the Lambda started, then the job it runs (as rehearse's AV day)."""
        name = self.deployed.env["GLUE_WORKFLOW_NAME"]
        runs = [r["WorkflowRunId"] for r in self.deployed.glue.get_workflow_runs(Name=name)["Runs"]]
        check(summary["workflow_run_id"] in runs, f"no workflow run {summary['workflow_run_id']}")
        (trigger,) = [
            t
            for t in self.deployed.glue.get_triggers()["Triggers"]
            if t.get("WorkflowName") == name
        ]
        job = trigger["Actions"][0]["JobName"]
        role = self.deployed.glue.get_job(JobName=job)["Job"]["Role"].rsplit("/", 1)[-1]
        endpoint = self.deployed.endpoint
        with self.calls.as_role(role):
            # Made here: the fake's S3 and Glue calls are the job's, as in rehearse.py.
            fake = self.athena(client("glue", endpoint), client("s3", endpoint))
            athena = self.calls.athena(fake, role)
            run_glue_job(self.deployed, job, athena, self.log, check_wheels=False)

    def backfill(self) -> int:
        """The key into the deployed secret, then a run on the eve: the lake gets the
        market's last few sessions, and the build publishes them. Returns the bars landed."""
        self.deployed.secrets.put_secret_value(
            SecretId=self.deployed.env["POLYGON_SECRET_ID"], SecretString=TEST_KEY
        )
        summary = self._invoke(self.eve)
        check(summary["new_bars"] > 0, "the backfill landed no bars")
        check(self.server.count("aggs") == 0, "the backfill asked tickers one by one")
        self._build(summary)
        sessions = self.server.count("grouped")
        say(f"polygon backfill: {sessions} sessions to {self.eve}, {summary['new_bars']} bars")
        return summary["new_bars"]

    def _before(self) -> Before:
        from marketlake.lake.state import load_state
        from marketlake.storage import S3Store

        store = S3Store(self.deployed.outputs["lake_bucket"], client=self.deployed.s3)
        state = load_state(store)
        waterline = {t: state.watermark(t) for t in self.server.market.tickers}
        total, on_day, _ = daily_rows(self.reader, self.session)
        return Before(self._raw_keys(), waterline, total, on_day)

    def _raw_keys(self) -> set:
        bucket = self.deployed.outputs["lake_bucket"]
        pages = self.deployed.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="raw/daily_prices/"
        )
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def weekday(self) -> dict:
        """The weekday: one grouped-daily request brings every ticker's bar, in one raw
        object; the Lambda's S3 PUTs stay few; the build publishes a row per ticker for the
        session. Returns the Lambda's summary."""
        before = self._before()
        endpoints = ("grouped", "aggs", "splits", "dividends", "financials")
        asked = {e: self.server.count(e) for e in endpoints}
        first_call = len(self.calls.calls)
        summary = self._invoke(self.as_of)
        spent = {e: self.server.count(e) - n for e, n in asked.items()}
        check(
            spent
            == {"grouped": 1, "aggs": 0, "splits": 1, "dividends": 1}
            | {"financials": EARNINGS_PER_RUN},
            f"the weekday asked {spent}: one grouped-daily request, no per-ticker one, one "
            f"each for splits and dividends, and {EARNINGS_PER_RUN} for earnings",
        )
        grouped = [r for r in self.server.requests if r.endpoint == "grouped"]
        day = grouped[-1].path.rsplit("/", 1)[-1]
        check(day == self.session.isoformat(), f"the weekday asked for {day}, not {self.session}")
        self._check_raw(before, summary)
        puts = [
            c.params.get("Key", "?")
            for c in self.calls.calls[first_call:]
            if c.role == self.ingest_role and c.operation == "PutObject"
        ]
        check(
            len(puts) <= MAX_WEEKDAY_PUTS,
            f"the weekday's Lambda made {len(puts)} S3 PUTs (at most {MAX_WEEKDAY_PUTS}): "
            + ", ".join(puts),
        )
        say(f"polygon weekday {self.session}: requests {spent}; S3 PUTs {', '.join(puts)}")
        self._build(summary)
        total, on_day, symbols = daily_rows(self.reader, self.session)
        check(
            on_day - before.rows_on_session == summary["new_bars"]
            and total - before.rows == summary["new_bars"],
            f"daily_prices gained {total - before.rows} rows ({on_day - before.rows_on_session} "
            f"on {self.session}); the weekday landed {summary['new_bars']} bars",
        )
        missing = set(self.server.market.tickers) - symbols
        check(not missing, f"daily_prices has no {self.session} row of {sorted(missing)[:5]}")
        self._check_earnings()
        self.figures.update(
            tickers=len(self.server.market.tickers),
            weekday_requests=sum(spent.values()),
            weekday_puts=len(puts),
            weekday_rows=on_day - before.rows_on_session,
        )
        return summary

    def _check_earnings(self) -> None:
        """Every symbol whose earnings the backfill and the weekday asked (two runs, other
        symbols each: the least recently tried first) has on the session the eps_ttm and P/E
        of the stand-in's filings: the four latest quarters filed before the session, of
        those filed by the day it was asked (the backfill asked on the eve)."""
        import polygon_fake_financials as filings

        until = {
            r.query["ticker"]: dt.date.fromisoformat(r.query["filing_date.lte"])
            for r in self.server.requests
            if r.endpoint == "financials"
        }
        asked = sorted(until)
        check(
            len(asked) == 2 * EARNINGS_PER_RUN,
            f"the two runs asked the earnings of {asked}, expected {2 * EARNINGS_PER_RUN} symbols",
        )
        listed = ", ".join(f"'{t}'" for t in asked)
        published = self.reader.fetch_df(
            "SELECT symbol, eps_ttm, pe_ratio_ttm, close FROM daily_prices "
            f"WHERE trade_date = DATE '{self.session.isoformat()}' AND symbol IN ({listed})"
        )
        got = {r.symbol: r for r in published.itertuples()}
        for ticker in asked:
            want = expected_eps_ttm(
                self.server.market, filings, ticker, self.session, until[ticker]
            )
            row = got.get(ticker)
            check(row is not None, f"daily_prices has no {self.session} row of {ticker}")
            check(
                want is not None and abs(row.eps_ttm - want) <= REL * abs(want),
                f"{ticker}'s eps_ttm on {self.session} is {row.eps_ttm}; its filings say {want}",
            )
            # A P/E where the trailing EPS is positive, none (NULL) where it is not.
            pe = row.close / want if want > 0 else math.nan
            null = row.pe_ratio_ttm is None or math.isnan(row.pe_ratio_ttm)
            right = not null and abs(row.pe_ratio_ttm - pe) <= REL * pe if want > 0 else null
            check(right, f"{ticker}'s P/E on {self.session} is {row.pe_ratio_ttm}, expected {pe}")
        self.figures["earnings_checked"] = len(asked)

    def _check_raw(self, before: Before, summary: dict) -> None:
        """One new raw object, the session's market~ object, holding every ticker the lake
        lacked for it (those Alpha Vantage landed that day already had their bar)."""
        from marketlake.lake import raw

        new = sorted(self._raw_keys() - before.raw)
        check(
            len(new) == 1 and new[0].endswith(f"/market~{self.session}.csv"),
            f"the weekday landed {new}, expected one market~{self.session}.csv",
        )
        bucket = self.deployed.outputs["lake_bucket"]
        frame = raw.read_csv(self.deployed.object_bytes(f"s3://{bucket}/{new[0]}"))
        lacking = {t for t, mark in before.waterline.items() if mark is None or mark < self.session}
        held = set(frame["symbol"])
        check(
            held == lacking and set(frame["trade_date"]) == {self.session.isoformat()},
            f"{new[0]} holds {len(held)} tickers, the lake lacked {len(lacking)} "
            f"(missing {sorted(lacking - held)[:5]}, extra {sorted(held - lacking)[:5]})",
        )
        check(summary["new_bars"] == len(lacking), f"the Lambda landed {summary['new_bars']} bars")


def expected_eps_ttm(
    market, filings, ticker: str, session: dt.date, asked_until: dt.date
) -> float | None:
    """The stand-in's trailing EPS of `ticker` on `session`: its four latest quarters filed
    before it and by `asked_until` (each period's first filing), each put on the session's
    share basis; None when they do not make a TTM (fewer than four, not consecutive, or
    stale)."""
    position = market.position[ticker]
    first: dict = {}
    for result in filings.filings(market, position):
        filed = dt.date.fromisoformat(result["filing_date"])
        income = result["financials"]["income_statement"]
        item = income.get("diluted_earnings_per_share") or income.get("basic_earnings_per_share")
        if filed < session and filed <= asked_until and item is not None:
            first.setdefault(dt.date.fromisoformat(result["end_date"]), (filed, item["value"]))
    quarters = sorted(first.items())[-4:]
    if len(quarters) < 4:
        return None
    span = (quarters[-1][0] - quarters[0][0]).days
    if not 240 <= span <= 300 or (session - quarters[-1][0]).days > 365:
        return None
    total = 0.0
    for _, (filed, eps) in quarters:
        for split_ticker, at, low, high in market.splits:
            if split_ticker == position and filed < market.sessions[at] <= session:
                eps = eps * low / high
        total += eps
    return total


# What switching data_provider to polygon changes in a deployed stack.
SWITCH = {
    "aws_secretsmanager_secret.polygon[0]": ["create"],
    "aws_lambda_function.ingest": ["update"],  # its environment and description
    "aws_iam_role_policy.ingest": ["update"],  # the key it may read
}


def apply(work: Path, env: dict, log: Path) -> None:
    """Plan the switch in full and check it changes SWITCH and nothing else the emulator does
    not explain (drift.EXPECTED_DRIFT); then apply SWITCH alone: the rest of that plan is
    the emulator's drift, which moto cannot always apply (UpdateJob of the Glue job answers
    500). The second plan, after the weekday, checks the whole stack again."""
    plan = ["plan", "-input=false", "-out=polygon.tfplan"]
    tf.run(plan, work, env, log)
    _, shown = tf.run(["show", "-json", "polygon.tfplan"], work, env, log)
    changes = json.loads(shown).get("resource_changes", [])
    made = {r["address"]: r["change"]["actions"] for r in changes if r["address"] in SWITCH}
    check(made == SWITCH, f"data_provider = polygon changes {made}, expected {SWITCH}")
    rest = [r for r in changes if r["address"] not in SWITCH]
    extra = unexpected_changes({"resource_changes": rest})
    check(not extra, f"data_provider = polygon also changes {', '.join(extra)}")
    targets = [f"-target={address.split('[')[0]}" for address in SWITCH]
    tf.run(["apply", "-auto-approve", "-input=false", *targets], work, env, log)


def rehearse(timed, work: Path, env: dict, log: Path, first: dict, as_of: dt.date, check_calls):
    """Apply the stack again for Polygon and the whole market (`first`: the first apply's
    variables), run the backfill and the weekday through it, crawl, and check every AWS
    call against its role (`check_calls`). Returns (what is deployed now, the figures)."""
    write_variables(work, variables(first))
    timed("polygon apply", lambda: apply(work, env, log))
    _, out = tf.run(["output", "-json"], work, env, log)
    outputs = {name: body["value"] for name, body in json.loads(out).items()}
    deployed = Deployed(env["AWS_ENDPOINT_URL"], outputs)
    check_function(deployed)
    calls = aws_calls.Recorder()
    day = PolygonWeekday(deployed, calls, as_of, log)
    try:
        timed("polygon backfill", day.backfill)
        timed("polygon weekday", day.weekday)
        timed("polygon crawl", lambda: crawl(deployed, calls))
        day.figures["calls"] = timed("polygon iam", lambda: check_calls(deployed, calls))
    finally:
        day.close()
    return deployed, day.figures
