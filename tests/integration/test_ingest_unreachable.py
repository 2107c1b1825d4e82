"""run_ingest when Alpha Vantage cannot be reached (issue 23, point 6: `ALPHAVANTAGE_API_KEY=demo
marketlake run` with no network spent minutes on DNS retries and counted 17 of the day's 25
requests). The run stops at its first symbol with one line, nothing lands, and the persisted
day's count is what it was; a connect failure after the server answered fails only that
symbol. Time is simulated; the tests count lookups, attempts and sleeps."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from av_fake_server import BySymbol, FakeAlphaVantage, bars_on, daily_reply
from unreachable import closed_port_url, no_dns

from marketlake.config import Settings
from marketlake.ingest.ratelimit import SimulatedClock
from marketlake.ingest.runner import FAILED, FETCHED, QuietObserver, SymbolResult, run_ingest
from marketlake.lake.state import load_state
from marketlake.providers.base import ServerUnreachable
from marketlake.providers.http import FIRST_CONTACT_RETRIES
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore

NY = ZoneInfo("America/New_York")
AS_OF = dt.datetime(2024, 7, 3, 18, 0, tzinfo=NY)  # last closed session 2024-07-03
SESSION = dt.date(2024, 7, 3)
COMPACT = bars_on(sessions_between(dt.date(2024, 1, 2), SESSION)[-100:])
TICKERS = "AAA,BBB,CCC"


def settings(home, **env: str) -> Settings:
    base = {
        "ALPHAVANTAGE_API_KEY": "demo",
        "MARKETLAKE_TICKERS": TICKERS,
        "MARKETLAKE_ACTIONS_EVERY_DAYS": "0",
    }
    base.update(env)
    return Settings.from_env(base, home=home)


def ingest(home, clock: SimulatedClock, observer=None, **env: str):
    return run_ingest(
        settings(home, **env),
        LocalStore(home),
        None,
        AS_OF,
        observer=observer,
        now=lambda: AS_OF.astimezone(dt.timezone.utc),
        clock=clock.now,
        sleep=clock.sleep,
    )


def files(home, prefix: str) -> list[str]:
    root = home / prefix
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_no_network_stops_the_run_at_its_first_symbol_and_records_nothing(tmp_path, monkeypatch):
    home = tmp_path / "lake"
    resolver = no_dns(monkeypatch)
    clock = SimulatedClock(1000.0)
    with pytest.raises(ServerUnreachable) as info:
        ingest(home, clock)  # the default base URL, as in the issue

    assert str(info.value) == (
        "cannot reach ALPHAVANTAGE_BASE_URL (https://www.alphavantage.co/query): name "
        "resolution failed for www.alphavantage.co (Temporary failure in name resolution); "
        "check the network or the setting"
    )
    # The first symbol only, a few quick tries: not three symbols' minutes of backoff.
    assert resolver.lookups == ["www.alphavantage.co"] * (1 + FIRST_CONTACT_RETRIES)
    assert clock.sleeps == [1.0, 2.0]
    assert files(home, "raw") == [] and files(home, "quarantine") == []
    state = load_state(LocalStore(home))
    assert state.quota_used == 0 and state.deferred == [] and state.symbols == {}
    # Nothing was fetched: the lake is still free for any provider.
    assert state.lake_kind is None


def test_an_unreachable_run_leaves_the_days_persisted_count_and_the_lake_as_they_were(tmp_path):
    home = tmp_path / "lake"
    clock = SimulatedClock(1000.0)
    with FakeAlphaVantage() as server:
        server.default = BySymbol({}, fallback=daily_reply(COMPACT))
        ingest(home, clock, MARKETLAKE_TICKERS="AAA", ALPHAVANTAGE_BASE_URL=server.url)
    before = load_state(LocalStore(home))
    assert before.quota_used == 1 and before.watermark("AAA") == SESSION

    with pytest.raises(ServerUnreachable, match="connection failed: Connection refused"):
        ingest(home, clock, MARKETLAKE_TICKERS="BBB,CCC", ALPHAVANTAGE_BASE_URL=closed_port_url())

    after = load_state(LocalStore(home))
    assert after.quota_date == "2024-07-03" and after.quota_used == 1
    assert after.lake_kind == "market" and after.deferred == []
    assert sorted(after.symbols) == ["AAA"] and after.watermark("AAA") == SESSION
    assert files(home, "raw") == ["AAA.csv"]


class LoseNetworkAfterFirstSymbol(QuietObserver):
    """Name resolution fails from the moment the first symbol is settled."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch
        self.resolver = None

    def symbol_done(self, result: SymbolResult) -> None:
        if self.resolver is None:
            self.resolver = no_dns(self.monkeypatch)


def test_a_network_lost_mid_run_fails_each_symbol_after_the_usual_retries(tmp_path, monkeypatch):
    home = tmp_path / "lake"
    clock = SimulatedClock(1000.0)
    observer = LoseNetworkAfterFirstSymbol(monkeypatch)
    with FakeAlphaVantage() as server:
        server.default = BySymbol({}, fallback=daily_reply(COMPACT))
        report = ingest(
            home,
            clock,
            observer,
            ALPHAVANTAGE_BASE_URL=server.url,
            ALPHAVANTAGE_MAX_RETRIES="2",
            ALPHAVANTAGE_BACKOFF_SECONDS="15",
        )

    statuses = {r.symbol: r.status for r in report.results}
    assert statuses == {"AAA": FETCHED, "BBB": FAILED, "CCC": FAILED}
    failed = report.with_status(FAILED)[0].message
    assert "after 3 attempts: name resolution failed for 127.0.0.1" in failed
    assert observer.resolver.lookups == ["127.0.0.1"] * 6  # 3 attempts each, as before
    # BBB's turn in the pace (5 a minute), then each symbol's usual backoffs; the attempts
    # that could not connect gave their places in the pace back.
    assert clock.sleeps == pytest.approx([12.001, 15.0, 30.0, 15.0, 30.0])
    state = load_state(LocalStore(home))
    assert state.quota_used == 1  # only the request that reached the server
    assert files(home, "raw") == ["AAA.csv"]


def test_polygon_stops_its_whole_market_run_the_same_way(tmp_path):
    home = tmp_path / "lake"
    clock = SimulatedClock(1000.0)
    url = closed_port_url("")
    with pytest.raises(ServerUnreachable) as info:
        ingest(
            home,
            clock,
            MARKETLAKE_PROVIDER="polygon",
            POLYGON_API_KEY="KEYzq81x7TEST",
            POLYGON_BASE_URL=url,
            MARKETLAKE_HISTORY_DAYS="14",
        )
    assert str(info.value).startswith(f"cannot reach POLYGON_BASE_URL ({url}): connection failed")
    assert clock.sleeps == [1.0, 2.0]
    assert files(home, "raw") == [] and load_state(LocalStore(home)).lake_kind is None
