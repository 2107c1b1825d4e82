"""Quarterly earnings through run_ingest: the loopback Alpha Vantage answers EARNINGS in the
vendor's shape (and refuses it as it does), the synthetic market has its own; both land under
raw/earnings/ after the bars, on the splits' and dividends' weekly cadence but on a schedule
and a refusal of their own."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from av_fake_server import (
    INFO_PREMIUM_ENDPOINT,
    KEY_ECHO,
    ByFunction,
    BySymbol,
    FakeAlphaVantage,
    Reply,
    bars_on,
    daily_reply,
    dividends_json,
    earnings_json,
    splits_json,
)

from marketlake.config import Settings
from marketlake.ingest.earnings import NOT_OFFERED
from marketlake.ingest.ratelimit import SimulatedClock
from marketlake.ingest.runner import FETCHED, run_ingest
from marketlake.lake import actions, earnings
from marketlake.lake.state import load_state
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore
from recorders import Observer

NY = ZoneInfo("America/New_York")
KEY = "KEYe4rn1ngsTEST"
DAY1 = dt.datetime(2024, 7, 3, 18, 0, tzinfo=NY)
S1 = dt.date(2024, 7, 3)
BARS = bars_on(sessions_between(dt.date(2024, 2, 1), S1)[-100:])
AAA_QUARTERS = [
    ("2024-06-30", "2024-07-24", "2.43", "2.20"),  # reported after S1: held back on DAY1
    ("2024-03-31", "2024-04-24", "1.68", "1.60"),
    ("2023-12-31", "2024-01-24", "-0.35", "0.10"),  # a loss
    ("2023-09-30", "2023-10-25", "2.20", "2.13"),
    ("2001-03-31", "2001-04-17", "None", "None"),  # listed without an EPS
]


@pytest.fixture
def server():
    with FakeAlphaVantage() as fake:
        fake.default = ByFunction(
            daily_reply(BARS),
            {
                "SPLITS": lambda q: Reply(splits_json(q["symbol"], [])),
                "DIVIDENDS": lambda q: Reply(dividends_json(q["symbol"], [])),
                "EARNINGS": BySymbol(
                    {"AAA": Reply(earnings_json("AAA", AAA_QUARTERS))},
                    fallback=Reply(earnings_json("BBB", [])),
                ),
            },
        )
        yield fake


def run(server, home, tickers="AAA,BBB", now=DAY1, observer=None, refetch=(), **env):
    settings = Settings.from_env(
        {
            "ALPHAVANTAGE_API_KEY": KEY,
            "ALPHAVANTAGE_BASE_URL": server.url,
            "ALPHAVANTAGE_BACKOFF_SECONDS": "0.01",
            "ALPHAVANTAGE_MAX_RETRIES": "1",
            "MARKETLAKE_TICKERS": tickers,
            **env,
        },
        home=home,
    )
    clock = SimulatedClock(1000.0)
    return run_ingest(
        settings,
        LocalStore(home),
        None,
        now,
        observer=observer or Observer(),
        now=lambda: now.astimezone(dt.timezone.utc),
        clock=clock.now,
        sleep=clock.sleep,
        refetch=refetch,
    )


def functions(server) -> list[tuple[str, str]]:
    return [(q["function"], q["symbol"]) for q in server.requests]


def on_record(home) -> list[tuple]:
    rows = earnings.current(LocalStore(home))
    return list(zip(rows["symbol"], rows["fiscal"], rows["reported"], rows["eps"], rows["basis"]))


def test_earnings_land_last_on_the_share_basis_of_the_fetch(server, tmp_path):
    home = tmp_path / "lake"
    report = run(server, home)
    assert [r.status for r in report.results] == [FETCHED, FETCHED]
    assert functions(server)[-2:] == [("EARNINGS", "AAA"), ("EARNINGS", "BBB")]
    assert [f for f, _ in functions(server)].index("EARNINGS") == 6  # after bars and actions
    # Alpha Vantage restates its EPS for splits up to the fetch: on the session's basis.
    assert on_record(home) == [
        ("AAA", dt.date(2023, 9, 30), dt.date(2023, 10, 25), 2.20, S1),
        ("AAA", dt.date(2023, 12, 31), dt.date(2024, 1, 24), -0.35, S1),
        ("AAA", dt.date(2024, 3, 31), dt.date(2024, 4, 24), 1.68, S1),
    ]
    assert (home / "raw/earnings/ingest_date=2024-07-03/AAA.csv").is_file()
    assert (report.earnings_landed, report.earnings_held, report.earnings_unreported) == (3, 1, 1)
    assert report.earnings_quarantined == 0 and not list(home.glob("quarantine/earnings/*/*"))
    assert report.earnings_asked == ["AAA", "BBB"] and report.earnings_none == ["BBB"]
    assert load_state(LocalStore(home)).symbols["AAA"].earnings_on == "2024-07-03"
    assert KEY not in "".join(p.read_text(errors="replace") for p in home.rglob("*") if p.is_file())


def test_a_report_held_back_lands_from_the_first_fetch_after_it(server, tmp_path):
    home = tmp_path / "lake"
    run(server, home)
    later = dt.datetime(2024, 7, 31, 18, 0, tzinfo=NY)
    report = run(server, home, now=later)
    # Only the new quarter: the others differ only in the basis date, the same numbers.
    assert (report.earnings_landed, report.earnings_held) == (1, 0)
    assert on_record(home)[-1] == (
        "AAA",
        dt.date(2024, 6, 30),
        dt.date(2024, 7, 24),
        2.43,
        dt.date(2024, 7, 31),
    )
    assert {row[4] for row in on_record(home)[:-1]} == {S1}


def test_they_are_asked_weekly_by_the_actions_setting_and_zero_turns_them_off(server, tmp_path):
    home = tmp_path / "lake"
    run(server, home)
    server.requests.clear()
    run(server, home, now=DAY1 + dt.timedelta(days=6))
    assert [f for f, _ in functions(server) if f != "TIME_SERIES_DAILY"] == []
    run(server, home, now=DAY1 + dt.timedelta(days=7))
    assert ("EARNINGS", "AAA") in functions(server) and ("EARNINGS", "BBB") in functions(server)
    server.requests.clear()
    run(server, tmp_path / "other", MARKETLAKE_ACTIONS_EVERY_DAYS="0")
    assert {f for f, _ in functions(server)} == {"TIME_SERIES_DAILY"}


def test_when_the_quota_is_short_bars_and_actions_come_first(server, tmp_path):
    home = tmp_path / "lake"
    report = run(server, home, ALPHAVANTAGE_CALLS_PER_DAY="7")
    assert functions(server)[-1] == ("EARNINGS", "AAA")
    assert len(server.requests) == 7
    assert report.earnings_asked == ["AAA"] and report.earnings_waiting == ["BBB"]
    state = load_state(LocalStore(home))
    assert state.symbols["AAA"].earnings_on == "2024-07-03"
    assert state.symbols["BBB"].earnings_on is None  # still due
    assert state.symbols["BBB"].actions_on == "2024-07-03"


def test_an_earnings_refusal_turns_off_only_earnings_for_the_run(server, tmp_path):
    home = tmp_path / "lake"
    server.default.functions["EARNINGS"] = Reply(INFO_PREMIUM_ENDPOINT)
    server.default.functions["SPLITS"] = lambda q: Reply(
        splits_json(q["symbol"], [(dt.date(2024, 6, 10), 2.0)])
    )
    observer = Observer()
    report = run(server, home, observer=observer)
    assert [f for f, _ in functions(server)].count("EARNINGS") == 1
    assert len(observer.said("earnings")) == 1 and "off for this run" in report.earnings_off
    assert "EARNINGS" in report.earnings_off
    assert report.earnings_waiting == ["AAA", "BBB"]
    assert report.actions_landed == {"splits": 2, "dividends": 0} and not report.actions_off
    state = load_state(LocalStore(home))
    assert state.symbols["AAA"].earnings_on is None and state.symbols["AAA"].actions_on


def test_a_splits_refusal_leaves_earnings_going(server, tmp_path):
    home = tmp_path / "lake"
    server.default.functions["SPLITS"] = Reply(INFO_PREMIUM_ENDPOINT)
    report = run(server, home)
    assert report.actions_off and not report.earnings_off
    assert report.earnings_asked == ["AAA", "BBB"] and report.earnings_landed == 3


def test_an_unusable_answer_is_one_redacted_line_and_the_symbol_is_asked_next_run(server, tmp_path):
    home = tmp_path / "lake"
    server.default.functions["EARNINGS"] = BySymbol(
        {"AAA": Reply({"symbol": "AAA", "quarterlyEarnings": "None", "key": KEY_ECHO})},
        fallback=Reply(earnings_json("BBB", [("2024-03-31", "2024-04-20", "0.50", "None")])),
    )
    observer = Observer()
    report = run(server, home, observer=observer)
    [said] = observer.said("earnings")
    assert said.startswith("AAA: earnings not fetched (") and "is not a JSON array" in said
    assert "\n" not in said and KEY not in said
    assert report.earnings_asked == ["BBB"] and report.earnings_landed == 1
    assert load_state(LocalStore(home)).symbols["AAA"].earnings_on is None


def test_rejected_quarters_are_quarantined_and_the_rest_lands(server, tmp_path):
    home = tmp_path / "lake"
    bad = [*AAA_QUARTERS, ("2022-12-31", "2022-11-02", "1.00", "None")]  # before its quarter
    server.default.functions["EARNINGS"] = Reply(earnings_json("AAA", bad))
    report = run(server, home, tickers="AAA")
    assert report.earnings_quarantined == 1 and report.earnings_landed == 3
    [kept] = home.glob("quarantine/earnings/ingest_date=2024-07-03/AAA.*.csv")
    assert "is before its quarter's end" in kept.read_text()


def test_one_quarter_under_two_dates_is_quarantined_and_the_rest_lands(server, tmp_path):
    home = tmp_path / "lake"
    # In one answer: 2024-03-29 and 2024-03-31, two days apart. Neither lands.
    twice = [*AAA_QUARTERS, ("2024-03-29", "2024-04-24", "1.68", "1.60")]
    server.default.functions["EARNINGS"] = Reply(earnings_json("AAA", twice))
    report = run(server, home, tickers="AAA")
    assert (report.earnings_quarantined, report.earnings_landed) == (2, 2)
    assert [row[1] for row in on_record(home)] == [dt.date(2023, 9, 30), dt.date(2023, 12, 31)]
    [kept] = home.glob("quarantine/earnings/ingest_date=2024-07-03/AAA.*.csv")
    text = kept.read_text()
    assert "quarter 2024-03-29 is 2 day(s) from quarter 2024-03-31" in text
    assert "quarter 2024-03-31 is 2 day(s) from quarter 2024-03-29" in text


def test_a_quarter_end_near_one_on_record_is_quarantined_and_the_rest_lands(server, tmp_path):
    home = tmp_path / "lake"
    run(server, home, tickers="AAA")  # 2023-09-30, 2023-12-31, 2024-03-31 land
    # A later answer gives 2024-03-31 as 2024-03-30, and the new 2024-06-30.
    moved = [
        ("2024-03-30", "2024-04-24", "1.68", "1.60") if q[0] == "2024-03-31" else q
        for q in AAA_QUARTERS
    ]
    server.default.functions["EARNINGS"] = Reply(earnings_json("AAA", moved))
    later = dt.datetime(2024, 7, 31, 18, 0, tzinfo=NY)
    report = run(server, home, tickers="AAA", now=later)
    assert (report.earnings_quarantined, report.earnings_landed) == (1, 1)
    assert [row[1] for row in on_record(home)] == [
        dt.date(2023, 9, 30),
        dt.date(2023, 12, 31),
        dt.date(2024, 3, 31),  # the record stays; the other date is not landed
        dt.date(2024, 6, 30),
    ]
    [kept] = home.glob("quarantine/earnings/ingest_date=2024-07-31/AAA.*.csv")
    text = kept.read_text()
    assert "2024-03-30" in text and "1 day(s) from quarter 2024-03-31" in text
    assert "2024-06-30" not in text


def test_a_refetch_asks_again_for_a_damaged_earnings_object(server, tmp_path):
    home = tmp_path / "lake"
    run(server, home, tickers="AAA")
    damaged = home / "raw/earnings/ingest_date=2024-07-03/AAA.csv"
    damaged.write_text(damaged.read_text().replace("1.68", "9.99"))
    server.requests.clear()
    next_day = dt.datetime(2024, 7, 5, 18, 0, tzinfo=NY)
    report = run(server, home, tickers="AAA", now=next_day, refetch=("AAA",))
    assert ("EARNINGS", "AAA") in functions(server)
    assert ("SPLITS", "AAA") not in functions(server)  # its actions objects are intact
    assert report.earnings_landed == 3
    assert [row[3] for row in on_record(home)] == [2.20, -0.35, 1.68]


def test_the_synthetic_market_lands_its_earnings_as_reported(tmp_path):
    settings = Settings.from_env({"MARKETLAKE_TICKERS": "AMAT,INTC"}, home=tmp_path / "lake")
    now = dt.datetime(2025, 11, 28, 18, 0, tzinfo=NY)
    report = run_ingest(settings, LocalStore(settings.home), None, now, now=lambda: now)
    assert report.earnings_asked == ["AMAT", "INTC"] and not report.earnings_off
    rows = earnings.current(LocalStore(settings.home))
    assert report.earnings_landed == len(rows) > 8
    # As reported: each EPS on the basis of its own reported date (the build rescales).
    assert list(rows["basis"]) == list(rows["reported"])
    landed = pd.read_csv(next((tmp_path / "lake").glob("raw/earnings/*/AMAT.csv")))
    assert set(landed["source"]) == {"synthetic"} and (landed["reported_eps"] < 0).any()
    assert max(rows["reported"]) <= now.date()
    splits = actions.current(LocalStore(settings.home), actions.SPLITS)
    assert ("AMAT", 10.0) in set(zip(splits["symbol"], splits["value"]))


def test_a_provider_without_earnings_says_so_once(tmp_path):
    class Bars(SyntheticProvider):
        name = "bars-only"
        fetch_earnings = None

    settings = Settings.from_env({"MARKETLAKE_TICKERS": "AMAT"}, home=tmp_path / "lake")
    now = dt.datetime(2025, 11, 28, 18, 0, tzinfo=NY)
    observer = Observer()
    report = run_ingest(
        settings, LocalStore(settings.home), Bars(), now, now=lambda: now, observer=observer
    )
    assert report.earnings_off == NOT_OFFERED.format(name="bars-only")
    assert not observer.said("earnings") and not report.earnings_asked
    assert not list((tmp_path / "lake").glob("raw/earnings/*/*"))


def test_a_backfill_as_of_a_past_day_lands_on_the_basis_of_the_fetch_day(server, tmp_path):
    # Alpha Vantage restates its EPS for splits up to the moment it answers, whatever session
    # the run is as of: the basis is the day of the fetch, not the run's session.
    home = tmp_path / "lake"
    fetched = dt.datetime(2024, 7, 12, 18, 0, tzinfo=NY)
    settings = Settings.from_env(
        {
            "ALPHAVANTAGE_API_KEY": KEY,
            "ALPHAVANTAGE_BASE_URL": server.url,
            "ALPHAVANTAGE_BACKOFF_SECONDS": "0.01",
            "ALPHAVANTAGE_MAX_RETRIES": "1",
            "MARKETLAKE_TICKERS": "AAA",
        },
        home=home,
    )
    clock = SimulatedClock(1000.0)
    report = run_ingest(
        settings,
        LocalStore(home),
        None,
        DAY1,
        observer=Observer(),
        now=lambda: fetched.astimezone(dt.timezone.utc),
        clock=clock.now,
        sleep=clock.sleep,
    )
    assert report.session == S1
    bases = {row[-1] for row in on_record(home)}
    assert bases == {dt.date(2024, 7, 12)}
    # Still nothing reported after the run's session lands.
    assert max(row[2] for row in on_record(home)) <= S1
