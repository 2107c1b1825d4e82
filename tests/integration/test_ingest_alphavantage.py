"""run_ingest with the Alpha Vantage provider against the loopback fake (no internet).

Every answer class, end to end: what lands in raw, what goes to quarantine, what the ingest
state remembers, and what the next run does. Time is simulated: the limiter and the
provider's backoff sleep on a SimulatedClock, and `now` (the US/Eastern day of the quota)
and `as_of` (the last closed session) are pinned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import json
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from av_fake_server import (
    ERROR_INVALID_KEY,
    ERROR_INVALID_SYMBOL,
    HTML_502,
    INFO_BURST,
    INFO_DAILY_LIMIT,
    INFO_DEMO_KEY,
    INFO_PREMIUM_ENDPOINT,
    INFO_PREMIUM_FULL,
    KEY_ECHO,
    NOTE_5_PER_MINUTE,
    BySymbol,
    FakeAlphaVantage,
    Reply,
    bars_on,
    daily_csv,
    daily_json,
    daily_reply,
)

from marketlake.config import Settings
from marketlake.errors import MarketlakeError
from marketlake.ingest.ratelimit import QuotaExhausted, SimulatedClock
from marketlake.ingest.runner import (
    DEFERRED,
    FAILED,
    FETCHED,
    INVALID,
    NO_NEW_BARS,
    UP_TO_DATE,
    IngestReport,
    QuietObserver,
    run_ingest,
)
from marketlake.lake import raw
from marketlake.lake.state import DIGESTS_PREFIX, STATE_KEY, load_state
from marketlake.providers.alphavantage import InvalidApiKey, PremiumOnly
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore

NY = ZoneInfo("America/New_York")
KEY = "KEYzq81x7TEST"


def eastern(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=NY)


DAY0 = eastern("2024-07-02 18:00")  # last closed session 2024-07-02
DAY1 = eastern("2024-07-03 18:00")  # after the early close (13:00) of 2024-07-03
DAY2 = eastern("2024-07-05 18:00")  # 2024-07-04 is a holiday: next session 2024-07-05
S0, S1, S2 = dt.date(2024, 7, 2), dt.date(2024, 7, 3), dt.date(2024, 7, 5)
SESSIONS = sessions_between(dt.date(2023, 12, 1), S2)


def last_sessions(n: int, through: dt.date) -> list[dt.date]:
    return [d for d in SESSIONS if d <= through][-n:]


COMPACT1 = bars_on(last_sessions(100, S1))  # a compact answer on the evening of S1
COMPACT0 = bars_on(last_sessions(100, S0))


class Observer(QuietObserver):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.waits: list[float] = []
        self.started_symbols: list[str] = []

    def symbol_started(self, symbol: str) -> None:
        self.started_symbols.append(symbol)

    def waiting(self, seconds: float) -> None:
        self.waits.append(seconds)

    def event(self, kind: str, message: str) -> None:
        self.events.append((kind, message))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


@dataclasses.dataclass
class Lake:
    """A local lake, the fake Alpha Vantage, and a simulated clock shared by every run."""

    server: FakeAlphaVantage
    home: Path
    clock: SimulatedClock
    stamps: list[float]

    @property
    def store(self) -> LocalStore:
        return LocalStore(self.home)

    def settings(self, tickers: str, **env: str) -> Settings:
        base = {
            "ALPHAVANTAGE_API_KEY": KEY,
            "ALPHAVANTAGE_BASE_URL": self.server.url,
            "ALPHAVANTAGE_BACKOFF_SECONDS": "0.5",
            "ALPHAVANTAGE_MAX_RETRIES": "2",
            "MARKETLAKE_TICKERS": tickers,
            # These tests pin the bars' requests one by one; splits and dividends, which
            # follow them, have tests of their own (test_ingest_actions.py).
            "MARKETLAKE_ACTIONS_EVERY_DAYS": "0",
        }
        base.update(env)
        return Settings.from_env(base, home=self.home)

    def run(
        self,
        tickers: str,
        as_of: dt.datetime,
        now: dt.datetime | None = None,
        observer: Observer | None = None,
        **env: str,
    ) -> IngestReport:
        moment = (now or as_of).astimezone(dt.timezone.utc)
        return run_ingest(
            self.settings(tickers, **env),
            self.store,
            None,
            as_of,
            observer=observer or Observer(),
            now=lambda: moment,
            clock=self.clock.now,
            sleep=self.clock.sleep,
        )

    def asked(self) -> list[str]:
        return [q["symbol"] for q in self.server.requests]

    def state(self):
        return load_state(self.store)

    def files(self, prefix: str = "") -> dict[str, bytes]:
        """Every file under the lake directory (hidden ones too), by relative path."""
        return {
            p.relative_to(self.home).as_posix(): p.read_bytes()
            for p in sorted(self.home.rglob("*"))
            if p.is_file() and p.relative_to(self.home).as_posix().startswith(prefix)
        }

    def run_logs(self) -> list[str]:
        """audit/ingest_runs objects: one per run, whatever happened in it."""
        return sorted(self.files("audit/ingest_runs/"))

    def raw_frame(self, day: dt.date, symbol: str) -> pd.DataFrame:
        return raw.read_csv(self.store.get_bytes(raw.raw_key(day, symbol)))


@pytest.fixture
def lake(tmp_path):
    clock = SimulatedClock(1000.0)
    with FakeAlphaVantage() as server:
        stamps: list[float] = []
        server.on_request = lambda query: stamps.append(clock.now())
        yield Lake(server, tmp_path / "lake", clock, stamps)


def statuses(report: IngestReport) -> dict[str, str]:
    return {r.symbol: r.status for r in report.results}


def ok(bars=COMPACT1):
    return daily_reply(bars)


def assert_raw_holds(lake: Lake, day: dt.date, symbol: str, bars) -> None:
    frame = lake.raw_frame(day, symbol)
    assert list(frame["trade_date"]) == [b[0].isoformat() for b in bars]
    assert [float(v) for v in frame["close"]] == [b[4] for b in bars]
    assert [int(v) for v in frame["volume"]] == [b[5] for b in bars]
    assert set(frame["symbol"]) == {symbol}
    assert set(frame["source"]) == {"alphavantage"}


# -- ok answers ---------------------------------------------------------------------------


def test_an_ok_json_answer_lands_every_bar_at_the_raw_key(lake):
    lake.server.default = BySymbol({"AAA": ok(), "BBB": ok(COMPACT1[-30:])})
    report = lake.run("AAA,BBB", DAY1)

    assert statuses(report) == {"AAA": FETCHED, "BBB": FETCHED}
    assert report.session == S1 and report.ingest_date == S1
    assert [r.new_bars for r in report.results] == [100, 30]
    assert sorted(lake.files(raw.RAW_PREFIX)) == [
        "raw/daily_prices/ingest_date=2024-07-03/AAA.csv",
        "raw/daily_prices/ingest_date=2024-07-03/BBB.csv",
    ]
    assert_raw_holds(lake, S1, "AAA", COMPACT1)
    assert_raw_holds(lake, S1, "BBB", COMPACT1[-30:])
    frame = lake.raw_frame(S1, "AAA")
    assert set(frame["ingested_at"]) == {"2024-07-03 22:00:00.000"}
    assert lake.state().watermark("AAA") == S1
    query = lake.server.requests[0]
    assert query["function"] == "TIME_SERIES_DAILY"
    assert (query["outputsize"], query["datatype"], query["apikey"]) == ("compact", "json", KEY)
    assert lake.files("quarantine/") == {}


def test_an_ok_csv_answer_lands_the_same_raw_bytes_as_json(lake, tmp_path):
    lake.server.default = BySymbol({"AAA": ok()})
    lake.run("AAA", DAY1)
    from_json = lake.store.get_bytes(raw.raw_key(S1, "AAA"))

    csv_lake = dataclasses.replace(lake, home=tmp_path / "csv-lake")
    csv_lake.run("AAA", DAY1, ALPHAVANTAGE_DATATYPE="csv")
    assert lake.server.requests[-1]["datatype"] == "csv"
    assert "\r\n" in daily_csv(COMPACT1)  # the fake answers with CRLF, as the API does
    assert csv_lake.store.get_bytes(raw.raw_key(S1, "AAA")) == from_json
    assert csv_lake.state().watermark("AAA") == S1


# -- throttling and the request budget ---------------------------------------------------


def test_throttled_answers_are_retried_with_backoff_and_then_land(lake):
    tickers = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    throttle = [NOTE_5_PER_MINUTE, INFO_BURST]
    lake.server.default = BySymbol(
        {s: [Reply(throttle[i % 2]), ok()] for i, s in enumerate(tickers)}
    )
    observer = Observer()
    report = lake.run(",".join(tickers), DAY1, observer=observer)

    assert statuses(report) == dict.fromkeys(tickers, FETCHED)
    assert lake.asked() == [s for s in tickers for _ in (1, 2)]
    assert observer.kinds().count("retry") == 5
    for symbol in tickers:
        assert_raw_holds(lake, S1, symbol, COMPACT1)
    # 5 calls a minute (the default): no 60-second window ever holds a sixth request,
    # retries included, and the state counts every request made.
    assert len(lake.stamps) == 10
    for first, sixth in zip(lake.stamps, lake.stamps[5:]):
        assert sixth - first >= 60.0
    assert lake.clock.slept > 0 and observer.waits
    assert lake.state().quota_used == 10 and lake.state().quota_date == "2024-07-03"


def test_a_retry_never_goes_past_the_daily_budget(lake):
    lake.server.default = BySymbol(
        {s: [Reply(NOTE_5_PER_MINUTE), ok()] for s in ("AAA", "BBB", "CCC", "DDD")}
    )
    report = lake.run("AAA,BBB,CCC,DDD", DAY1, ALPHAVANTAGE_CALLS_PER_DAY="5")

    # AAA and BBB take 2 calls each; CCC's retry would be the 6th: it and DDD wait.
    assert len(lake.server.requests) == 5
    assert statuses(report) == {"AAA": FETCHED, "BBB": FETCHED, "CCC": DEFERRED, "DDD": DEFERRED}
    state = lake.state()
    assert state.deferred == ["CCC", "DDD"]
    assert (state.quota_date, state.quota_used) == ("2024-07-03", 5)
    assert not lake.store.exists(raw.raw_key(S1, "CCC"))


def test_throttling_that_outlasts_every_retry_fails_that_symbol_and_the_others_land(lake):
    # Still throttled after max retries: that symbol waits for the next run (FAILED, no
    # watermark), the run goes on, and every request counted against the day's budget.
    lake.server.default = BySymbol({"AAA": ok(), "BBB": Reply(NOTE_5_PER_MINUTE), "CCC": ok()})
    report = lake.run("AAA,BBB,CCC", DAY1)
    assert lake.asked() == ["AAA", "BBB", "BBB", "BBB", "CCC"]
    assert statuses(report) == {"AAA": FETCHED, "BBB": FAILED, "CCC": FETCHED}
    assert "still throttles after 3 attempts" in report.with_status(FAILED)[0].message
    state = lake.state()
    assert state.watermark("AAA") == S1 and state.watermark("BBB") is None
    assert state.quota_used == 5
    assert sorted(lake.files(raw.RAW_PREFIX)) == [
        "raw/daily_prices/ingest_date=2024-07-03/AAA.csv",
        "raw/daily_prices/ingest_date=2024-07-03/CCC.csv",
    ]


# -- daily limit, deferral, stalest first ------------------------------------------------


def test_the_daily_limit_defers_the_rest_and_the_next_day_fetches_them_first_stalest_first(
    lake,
):
    lake.server.default = BySymbol({"DDD": ok(COMPACT0)})
    lake.run("DDD", DAY0)  # DDD has a watermark (2024-07-02) before the day it is deferred
    lake.server.requests.clear()

    lake.server.default = BySymbol(
        {"AAA": ok(), "BBB": ok(), "CCC": Reply(INFO_DAILY_LIMIT)}, fallback=Reply("unused")
    )
    report = lake.run("AAA,BBB,CCC,DDD,EEE", DAY1)
    # Never-fetched symbols first (AAA, BBB, CCC, EEE), then DDD; CCC hits the limit.
    assert lake.asked() == ["AAA", "BBB", "CCC"]
    assert statuses(report) == {
        "AAA": FETCHED,
        "BBB": FETCHED,
        "CCC": DEFERRED,
        "EEE": DEFERRED,
        "DDD": DEFERRED,
    }
    assert "daily request limit" in report.with_status(DEFERRED)[0].message
    state = lake.state()
    assert state.deferred == ["CCC", "EEE", "DDD"]
    # The API said the day is spent: the persisted count says so too.
    assert (state.quota_date, state.quota_used) == ("2024-07-03", 25)
    assert not lake.store.exists(raw.raw_key(S1, "CCC"))

    lake.server.requests.clear()
    lake.server.default = BySymbol({}, fallback=ok(bars_on(last_sessions(100, S2))))
    # FFF is new today: never fetched, so staler than DDD, but not deferred.
    report = lake.run("AAA,BBB,CCC,DDD,EEE,FFF", DAY2)
    # Deferred first, stalest first among them (never fetched before an old watermark);
    # then the others, stalest first.
    order = ["CCC", "EEE", "DDD", "FFF", "AAA", "BBB"]
    assert lake.asked() == order
    assert statuses(report) == dict.fromkeys(order, FETCHED)
    state = lake.state()
    assert state.deferred == []
    assert (state.quota_date, state.quota_used) == ("2024-07-05", 6)
    assert {s: state.watermark(s) for s in order} == dict.fromkeys(order, S2)


def test_a_spent_daily_budget_defers_the_rest_of_the_run(lake):
    lake.server.default = BySymbol({}, fallback=ok())
    report = lake.run("AAA,BBB,CCC,DDD,EEE", DAY1, ALPHAVANTAGE_CALLS_PER_DAY="3")
    assert lake.asked() == ["AAA", "BBB", "CCC"]
    assert statuses(report) == {
        "AAA": FETCHED,
        "BBB": FETCHED,
        "CCC": FETCHED,
        "DDD": DEFERRED,
        "EEE": DEFERRED,
    }
    assert lake.state().deferred == ["DDD", "EEE"]
    assert lake.state().quota_used == 3


def test_a_second_run_on_a_spent_day_sends_nothing_and_defers_everything(lake):
    lake.server.default = BySymbol({}, fallback=ok())
    lake.run("AAA,BBB,CCC", DAY1, ALPHAVANTAGE_CALLS_PER_DAY="3")  # spends the day exactly
    lake.server.requests.clear()

    report = lake.run("AAA,BBB,CCC,DDD,EEE", DAY1, ALPHAVANTAGE_CALLS_PER_DAY="3")
    assert lake.server.requests == []
    # Up-to-date symbols need no request: only the others wait for tomorrow's budget.
    assert statuses(report) == {
        "AAA": UP_TO_DATE,
        "BBB": UP_TO_DATE,
        "CCC": UP_TO_DATE,
        "DDD": DEFERRED,
        "EEE": DEFERRED,
    }
    assert lake.state().deferred == ["DDD", "EEE"]
    assert lake.state().quota_used == 3


def test_the_day_count_is_persisted_per_us_eastern_day(lake):
    lake.server.default = BySymbol({}, fallback=ok())
    evening = dt.datetime(2024, 7, 3, 22, 0, tzinfo=dt.timezone.utc)  # 18:00 ET, 07-03
    late = dt.datetime(2024, 7, 4, 2, 0, tzinfo=dt.timezone.utc)  # 22:00 ET, still 07-03
    after_midnight = dt.datetime(2024, 7, 4, 5, 0, tzinfo=dt.timezone.utc)  # 01:00 ET 07-04

    lake.run("AAA,BBB,CCC", DAY1, now=evening, ALPHAVANTAGE_CALLS_PER_DAY="3")
    assert len(lake.server.requests) == 3
    assert (lake.state().quota_date, lake.state().quota_used) == ("2024-07-03", 3)

    # A new UTC day but the same US/Eastern day: the persisted count allows no request.
    with contextlib.suppress(QuotaExhausted):  # it should defer, not raise: see the xfails
        lake.run("DDD,EEE", DAY1, now=late, ALPHAVANTAGE_CALLS_PER_DAY="3")
    assert len(lake.server.requests) == 3
    assert lake.state().watermark("DDD") is None

    # The next US/Eastern day starts from zero.
    report = lake.run("DDD,EEE", DAY1, now=after_midnight, ALPHAVANTAGE_CALLS_PER_DAY="3")
    assert statuses(report) == {"DDD": FETCHED, "EEE": FETCHED}
    assert lake.asked()[3:] == ["DDD", "EEE"]
    assert (lake.state().quota_date, lake.state().quota_used) == ("2024-07-04", 2)


# -- invalid key, premium ----------------------------------------------------------------


@pytest.mark.parametrize("refusal", [ERROR_INVALID_KEY, INFO_DEMO_KEY], ids=["invalid", "demo"])
def test_an_invalid_key_stops_the_run_at_once_with_how_to_set_it(lake, refusal):
    lake.server.default = BySymbol({"AAA": Reply(refusal)}, fallback=ok())
    with pytest.raises(InvalidApiKey) as caught:
        lake.run("AAA,BBB", DAY1)
    assert isinstance(caught.value, MarketlakeError)
    assert "export ALPHAVANTAGE_API_KEY=" in str(caught.value)
    assert lake.asked() == ["AAA"]  # no retry, no other symbol
    # No raw, no quarantine, no temp file left: the state and the run's log row only.
    assert sorted(lake.files()) == [*lake.run_logs(), STATE_KEY]
    state = lake.state()
    assert state.quota_used == 1 and state.symbols == {}


def test_an_invalid_key_after_a_landed_symbol_leaves_that_symbol_whole(lake):
    lake.server.default = BySymbol({"AAA": ok(), "BBB": Reply(INFO_DEMO_KEY)}, fallback=ok())
    with pytest.raises(InvalidApiKey):
        lake.run("AAA,BBB,CCC", DAY1)
    assert lake.asked() == ["AAA", "BBB"]
    assert_raw_holds(lake, S1, "AAA", COMPACT1)
    assert lake.state().watermark("AAA") == S1
    assert sorted(lake.files(raw.RAW_PREFIX)) == ["raw/daily_prices/ingest_date=2024-07-03/AAA.csv"]
    assert not [p for p in lake.files() if Path(p).name.startswith(".")]


def test_outputsize_full_refused_falls_back_to_compact_and_says_so_once(lake):
    def answer(query):
        if query["outputsize"] == "full":
            return Reply(INFO_PREMIUM_FULL)
        return ok()(query)

    lake.server.default = answer
    observer = Observer()
    report = lake.run("AAA,BBB,CCC", DAY1, observer=observer, ALPHAVANTAGE_OUTPUTSIZE="full")

    assert statuses(report) == dict.fromkeys(["AAA", "BBB", "CCC"], FETCHED)
    assert [(q["symbol"], q["outputsize"]) for q in lake.server.requests] == [
        ("AAA", "full"),
        ("AAA", "compact"),
        ("BBB", "compact"),
        ("CCC", "compact"),
    ]
    assert observer.kinds() == ["fallback"]
    assert "compact" in observer.events[0][1]
    for symbol in ("AAA", "BBB", "CCC"):
        assert_raw_holds(lake, S1, symbol, COMPACT1)


def test_a_premium_endpoint_stops_the_run_with_a_clear_message(lake):
    lake.server.default = BySymbol({}, fallback=Reply(INFO_PREMIUM_ENDPOINT))
    with pytest.raises(PremiumOnly, match="premium"):
        lake.run("AAA,BBB", DAY1)
    assert lake.asked() == ["AAA"]
    assert sorted(lake.files()) == [*lake.run_logs(), STATE_KEY]


# -- invalid symbol, garbled answers, transport failures ----------------------------------


def test_an_invalid_symbol_is_skipped_and_recorded_and_the_others_land(lake):
    lake.server.default = BySymbol({"AAA": ok(), "ZQZQ": Reply(ERROR_INVALID_SYMBOL)}, ok())
    report = lake.run("AAA,ZQZQ,CCC", DAY1)

    assert statuses(report) == {"AAA": FETCHED, "ZQZQ": INVALID, "CCC": FETCHED}
    assert lake.asked() == ["AAA", "ZQZQ", "CCC"]  # refused once: no retry
    entry = lake.state().symbols["ZQZQ"]
    assert "does not know 'ZQZQ'" in entry.invalid and entry.watermark is None
    assert "does not know" in report.with_status(INVALID)[0].message
    assert not lake.store.exists(raw.raw_key(S1, "ZQZQ"))
    assert lake.files("quarantine/") == {}


TRUNCATED = daily_json("BBB", COMPACT1)[:700]


@pytest.mark.parametrize(
    "body, content_type, reason",
    [
        ("{}", "application/json", "empty JSON object"),
        (HTML_502, "text/html", "HTML"),
        (TRUNCATED, "application/json", "truncated or malformed JSON"),
        ("timestamp;open;high\r\n2024-07-03;1;2\r\n", "text/csv", "neither JSON nor"),
    ],
    ids=["empty-object", "html", "truncated", "wrong-csv"],
)
def test_a_garbled_answer_is_retried_then_quarantined_as_received(lake, body, content_type, reason):
    lake.server.default = BySymbol(
        {"AAA": ok(), "BBB": Reply(body, content_type=content_type)}, fallback=ok()
    )
    observer = Observer()
    report = lake.run("AAA,BBB,CCC", DAY1, observer=observer)

    assert statuses(report) == {"AAA": FETCHED, "BBB": FAILED, "CCC": FETCHED}
    assert lake.asked() == ["AAA", "BBB", "BBB", "BBB", "CCC"]  # 1 try + 2 retries
    assert observer.kinds() == ["retry", "retry"]
    failed = report.with_status(FAILED)[0]
    assert failed.quarantined == 1 and reason in failed.message

    quarantined = lake.files("quarantine/")
    folder = "quarantine/daily_prices/ingest_date=2024-07-03/"
    assert sorted(quarantined) == [
        f"{folder}BBB.2024-07-03T220000.000.json",
        f"{folder}BBB.2024-07-03T220000.000.payload.txt",
    ]
    assert quarantined[f"{folder}BBB.2024-07-03T220000.000.payload.txt"] == body.encode()
    meta = json.loads(quarantined[f"{folder}BBB.2024-07-03T220000.000.json"])
    assert meta["symbol"] == "BBB" and meta["source"] == "alphavantage"
    assert reason in meta["reason"]

    assert not lake.store.exists(raw.raw_key(S1, "BBB"))
    state = lake.state()
    assert state.watermark("BBB") is None and state.entry("BBB").invalid is None
    # FAILED is tried again next run, first in line (the stalest).
    lake.server.requests.clear()
    lake.server.default = BySymbol({}, fallback=ok())
    lake.run("AAA,BBB,CCC", DAY1)
    assert lake.asked() == ["BBB"]
    assert lake.state().watermark("BBB") == S1


@pytest.mark.parametrize(
    "reply",
    [Reply(drop=True), Reply("oops", status=503), Reply("slow down", status=429)],
    ids=["dropped-connection", "http-503", "http-429"],
)
def test_a_transport_failure_after_retries_fails_that_symbol_and_the_others_land(lake, reply):
    lake.server.default = BySymbol({"AAA": ok(), "BBB": reply}, fallback=ok())
    report = lake.run("AAA,BBB,CCC", DAY1)
    assert lake.asked() == ["AAA", "BBB", "BBB", "BBB", "CCC"]
    assert statuses(report) == {"AAA": FETCHED, "BBB": FAILED, "CCC": FETCHED}
    assert lake.state().watermark("CCC") == S1


def test_a_transport_failure_then_success_lands(lake):
    lake.server.default = BySymbol(
        {"AAA": [Reply(drop=True), Reply("busy", status=503), ok()]}, fallback=ok()
    )
    observer = Observer()
    report = lake.run("AAA,BBB", DAY1, observer=observer)
    assert statuses(report) == {"AAA": FETCHED, "BBB": FETCHED}
    assert lake.asked() == ["AAA", "AAA", "AAA", "BBB"]
    assert observer.kinds() == ["retry", "retry"]
    assert_raw_holds(lake, S1, "AAA", COMPACT1)


# -- impossible and provisional bars -----------------------------------------------------


def impossible_json(bars) -> str:
    body = json.loads(daily_json("AAA", bars))
    series = body["Time Series (Daily)"]
    series["2024-06-28"]["2. high"] = "90.0000"  # below low
    series["2024-06-27"]["5. volume"] = "-5"
    series["2024-06-26"]["1. open"] = "0.0000"
    series["2024-02-30"] = dict(series["2024-06-25"])  # not a calendar date
    series["yesterday"] = dict(series["2024-06-25"])
    return json.dumps(body, indent=4)


def impossible_csv(bars) -> str:
    lines = daily_csv(bars).split("\r\n")
    out = []
    for line in lines:
        fields = line.split(",")
        if fields[0] == "2024-06-28":
            fields[2] = "90.0000"
        elif fields[0] == "2024-06-27":
            fields[5] = "-5"
        elif fields[0] == "2024-06-26":
            fields[1] = "0.0000"
        out.append(",".join(fields))
        if fields[0] == "2024-06-25":
            out.append(",".join(["2024-02-30", *fields[1:]]))
            out.append(",".join(["yesterday", *fields[1:]]))
    return "\r\n".join(out)


@pytest.mark.parametrize("datatype", ["json", "csv"])
def test_impossible_bars_never_reach_raw_and_are_quarantined_with_reasons(lake, datatype):
    def answer(query):
        if query["datatype"] == "csv":
            return Reply(impossible_csv(COMPACT1), content_type="text/csv")
        return Reply(impossible_json(COMPACT1))

    lake.server.default = BySymbol({"AAA": answer, "BBB": ok()})
    report = lake.run("AAA,BBB", DAY1, ALPHAVANTAGE_DATATYPE=datatype)

    assert statuses(report) == {"AAA": FETCHED, "BBB": FETCHED}
    result = report.results[0]
    assert result.quarantined == 5 and result.new_bars == 97
    frame = lake.raw_frame(S1, "AAA")
    bad = {"2024-06-28", "2024-06-27", "2024-06-26"}
    assert len(frame) == 97 and not bad & set(frame["trade_date"])
    assert not {"2024-02-30", "yesterday"} & set(frame["trade_date"])

    (key,) = lake.files("quarantine/")
    assert key.startswith("quarantine/daily_prices/ingest_date=2024-07-03/AAA.") and key.endswith(
        ".csv"
    )
    rejected = pd.read_csv(io.BytesIO(lake.store.get_bytes(key)), dtype=str)
    reasons = dict(zip(rejected["trade_date"], rejected["reason"]))
    assert set(reasons) == {"2024-06-28", "2024-06-27", "2024-06-26", "2024-02-30", "yesterday"}
    assert "high is below" in reasons["2024-06-28"]
    assert reasons["2024-06-27"] == "volume is negative"
    assert reasons["2024-06-26"] == "open is not positive"
    assert reasons["2024-02-30"] == reasons["yesterday"] == "unparseable trade_date"
    assert set(rejected["symbol"]) == {"AAA"} and set(rejected["source"]) == {"alphavantage"}
    assert lake.state().watermark("AAA") == S1


def test_a_bar_of_a_session_not_yet_closed_is_never_stored(lake):
    through_s2 = bars_on(last_sessions(100, S2))
    lake.server.default = BySymbol({"AAA": ok(through_s2)})
    midday = eastern("2024-07-05 12:00")  # 2024-07-05 is open: its bar is provisional
    report = lake.run("AAA", midday)

    assert report.session == S1
    frame = lake.raw_frame(S2, "AAA")  # ingest_date is the US/Eastern day of the run
    assert frame["trade_date"].iloc[-1] == "2024-07-03"
    assert "2024-07-05" not in set(frame["trade_date"])
    assert lake.state().watermark("AAA") == S1
    assert lake.files("quarantine/") == {}

    report = lake.run("AAA", DAY2)  # after the close: now it lands, alone
    assert report.results[0].new_bars == 1
    assert list(lake.raw_frame(S2, "AAA")["trade_date"])[-2:] == ["2024-07-03", "2024-07-05"]
    assert lake.state().watermark("AAA") == S2


# -- watermarks --------------------------------------------------------------------------


def test_the_same_compact_answer_again_rewrites_nothing(lake):
    lake.server.default = BySymbol({"AAA": ok()})
    lake.run("AAA", DAY1)
    before = {**lake.files(raw.RAW_PREFIX), **lake.files(DIGESTS_PREFIX)}

    # Next session, but Alpha Vantage still sends the same 100 bars.
    report = lake.run("AAA", DAY2)
    assert len(lake.server.requests) == 2
    assert statuses(report) == {"AAA": NO_NEW_BARS}
    assert {**lake.files(raw.RAW_PREFIX), **lake.files(DIGESTS_PREFIX)} == before
    assert lake.state().watermark("AAA") == S1


def test_a_later_compact_answer_lands_only_the_new_session(lake):
    lake.server.default = BySymbol({"AAA": [ok(), ok(bars_on(last_sessions(100, S2)))]})
    lake.run("AAA", DAY1)
    first = lake.store.get_bytes(raw.raw_key(S1, "AAA"))
    report = lake.run("AAA", DAY2)

    assert report.results[0].new_bars == 1
    assert lake.store.get_bytes(raw.raw_key(S1, "AAA")) == first
    assert list(lake.raw_frame(S2, "AAA")["trade_date"]) == ["2024-07-05"]


def test_a_resent_bar_whose_values_changed_is_rewritten_alone_and_the_build_picks_it_up(lake):
    from marketlake.engines.duckdb import DuckDBEngine
    from marketlake.wap.pipeline import run_build

    revised = [
        (d, o, h + 10, lo, c + 10, v) if d == dt.date(2024, 6, 28) else (d, o, h, lo, c, v)
        for d, o, h, lo, c, v in COMPACT1
    ]
    lake.server.default = BySymbol({"AAA": [ok(), ok(revised)]})
    lake.run("AAA", DAY1)
    settings = lake.settings("AAA")
    close_sql = (
        "SELECT close FROM daily_prices WHERE symbol = 'AAA' AND trade_date = DATE '2024-06-28'"
    )
    with DuckDBEngine(lake.home) as engine:
        run_build(settings, lake.store, engine)
        before = float(engine.fetch_df(close_sql)["close"].iloc[0])
    first = lake.store.get_bytes(raw.raw_key(S1, "AAA"))

    report = lake.run("AAA", DAY2)
    assert statuses(report) == {"AAA": FETCHED}
    assert report.results[0].new_bars == 1
    assert lake.store.get_bytes(raw.raw_key(S1, "AAA")) == first  # raw is never edited
    frame = lake.raw_frame(S2, "AAA")
    assert list(frame["trade_date"]) == ["2024-06-28"]
    assert float(frame["close"].iloc[0]) == before + 10
    assert lake.state().watermark("AAA") == S1

    with DuckDBEngine(lake.home) as engine:
        run_build(settings, lake.store, engine)
        assert float(engine.fetch_df(close_sql)["close"].iloc[0]) == before + 10


# -- the key never appears --------------------------------------------------------------

THROTTLE_ECHO = {
    "Note": f"Thank you for using Alpha Vantage! Your API key {KEY_ECHO} exceeded our standard "
    "API call frequency of 5 calls per minute."
}
GARBLED_ECHO = (
    "<html><head><title>502</title></head><body>upstream failed for "
    f"/query?function=TIME_SERIES_DAILY&apikey={KEY_ECHO} (key {KEY_ECHO})</body></html>"
)
INVALID_SYMBOL_ECHO = {
    "Error Message": "Invalid API call. Please retry or visit the documentation "
    f"(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY&apikey={KEY_ECHO}."
}
INVALID_KEY_ECHO = {
    "Error Message": f"the parameter apikey is invalid or missing ({KEY_ECHO}). Please claim "
    "your free API key on (https://www.alphavantage.co/support/#api-key)."
}
ECHO_SCRIPTS = {
    "AAA": [Reply(THROTTLE_ECHO), ok()],
    "BBB": Reply(GARBLED_ECHO, content_type="text/html"),
    "CCC": Reply(INVALID_SYMBOL_ECHO),
    "DDD": Reply(INFO_DAILY_LIMIT),
}


def test_the_api_key_echoed_back_never_reaches_the_lake_events_logs_or_errors(lake, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    observer = Observer()
    lake.server.default = BySymbol(ECHO_SCRIPTS, fallback=ok())
    report = lake.run("AAA,BBB,CCC,DDD,EEE", DAY1, observer=observer)
    assert statuses(report) == {
        "AAA": FETCHED,
        "BBB": FAILED,
        "CCC": INVALID,
        "DDD": DEFERRED,
        "EEE": DEFERRED,
    }
    seen += [r.message for r in report.results]

    lake.server.default = BySymbol({}, fallback=Reply(INVALID_KEY_ECHO))
    with pytest.raises(InvalidApiKey) as caught:
        lake.run("DDD", DAY2, observer=observer)
    seen += [str(caught.value), repr(caught.value), repr(lake.settings("AAA"))]
    seen += [m for _, m in observer.events]
    seen.append(caplog.text)

    # The key did go out and come back: these checks are not vacuous.
    assert {q["apikey"] for q in lake.server.requests} == {KEY}
    assert len(observer.events) >= 3
    payload = next(v for k, v in lake.files("quarantine/").items() if k.endswith(".txt"))
    assert payload.count(b"***") >= 2

    files = lake.files()
    assert files
    key = KEY.lower().encode()
    leaks = [path for path, data in files.items() if key in data.lower()]
    assert leaks == []
    assert [text for text in seen if KEY.lower() in text.lower()] == []
