"""Ingest from Polygon over HTTP: run_ingest with the real provider and rate limiter against
the loopback stand-in (polygon_fake_server). What it asks, what lands, what it refuses."""

from __future__ import annotations

import datetime as dt

import pytest
from polygon_fake_server import FakePolygon, server_error

from marketlake.config import POLYGON_KEY_HELP, Settings
from marketlake.errors import MarketlakeError
from marketlake.ingest.ratelimit import SimulatedClock
from marketlake.ingest.runner import run_ingest
from marketlake.lake import actions, raw
from marketlake.lake.state import load_state
from marketlake.sessions import EASTERN, sessions_between
from marketlake.storage import LocalStore

KEY = "PGkey0000TEST"
AS_OF = dt.datetime(2024, 6, 13, 23, 0, tzinfo=EASTERN)
NEXT_DAY = dt.datetime(2024, 6, 14, 23, 0, tzinfo=EASTERN)


def settings(server: FakePolygon, tmp_path, tickers="ALL", days=10, **env) -> Settings:
    return Settings.from_env(
        {
            "MARKETLAKE_PROVIDER": "polygon",
            "POLYGON_API_KEY": KEY,
            "POLYGON_BASE_URL": server.url,
            "POLYGON_BACKOFF_SECONDS": "0.01",
            "MARKETLAKE_TICKERS": tickers,
            "MARKETLAKE_HISTORY_DAYS": str(days),
            **env,
        },
        home=tmp_path / "lake",
    )


def ingest(config: Settings, as_of: dt.datetime, clock: SimulatedClock | None = None, **kw):
    clock = clock or SimulatedClock()
    store = LocalStore(config.home)
    report = run_ingest(
        config, store, None, as_of, clock=clock.now, sleep=clock.sleep, now=lambda: as_of, **kw
    )
    return report, store


def test_the_whole_market_then_a_weekday_of_one_bar_request(tmp_path):
    with FakePolygon(KEY, tickers=300, junk_rows=True, impossible_rows=True) as server:
        config = settings(server, tmp_path)
        clock = SimulatedClock()
        report, store = ingest(config, AS_OF, clock)
        window = sessions_between(AS_OF.date() - dt.timedelta(days=10), AS_OF.date())
        assert server.count("grouped") == len(window) and server.count("aggs") == 0
        assert all(
            r.query.get("adjusted") == "false" for r in server.requests if r.endpoint == "grouped"
        )
        keys = sorted(i.key for i in store.list_objects(raw.RAW_PREFIX))
        assert keys == [raw.market_key(AS_OF.date(), s) for s in window]
        symbols = set(raw.read_csv(store.get_bytes(keys[-1]))["symbol"])
        assert {"BRK.B", "KIMpL"} <= symbols and len(symbols) == 300
        # Junk tickers and impossible bars: quarantined, never landed.
        assert report.quarantined > 0
        assert not any("\x1b" in s or "\x00" in s for s in symbols)
        # The free plan's pace: 5 a minute, so the limiter waited between requests.
        assert clock.slept >= (report.requests - 1) * 12 * 0.99

        before = {e: server.count(e) for e in ("grouped", "aggs", "splits", "dividends")}
        report, store = ingest(config, NEXT_DAY)
        after = {e: server.count(e) - before[e] for e in before}
        assert after["grouped"] == 1 and after["aggs"] == 0
        assert after["splits"] >= 1 and after["dividends"] >= 1
        assert report.new_bars == 300
        assert load_state(store).market_through == NEXT_DAY.date().isoformat()


def test_market_wide_actions_use_dates_and_land_with_split_factors(tmp_path):
    with FakePolygon(KEY, tickers=300) as server:
        config = settings(server, tmp_path, days=400)
        report, store = ingest(config, AS_OF)
        asked = [r.query for r in server.requests if r.endpoint == "splits"]
        assert (
            asked[0]["execution_date.gte"]
            == sessions_between(AS_OF.date() - dt.timedelta(days=400), AS_OF.date())[0].isoformat()
        )
        splits = actions.current(store, actions.SPLITS)
        assert len(splits) > 0 and (splits["value"] > 0).all()
        assert report.actions_landed.get("splits", 0) == len(splits)
        before = server.count("splits")
        ingest(config, NEXT_DAY)
        later = [r.query for r in server.requests if r.endpoint == "splits"][before:]
        assert later[0]["execution_date.gte"] == AS_OF.date().isoformat()


def test_a_watchlist_backfill_is_one_request_per_ticker(tmp_path):
    with FakePolygon(KEY, tickers=200) as server:
        config = settings(server, tmp_path, tickers="AAPL,MSFT,NVDA,BRK.B,GOOGL,TSLA", days=365)
        report, _ = ingest(config, AS_OF)
        assert server.count("aggs") == 6 and server.count("grouped") == 0
        assert report.new_bars > 6 * 240
        for request in (r for r in server.requests if r.endpoint == "aggs"):
            assert request.query["adjusted"] == "false"
            assert (request.query["sort"], request.query["limit"]) == ("asc", "50000")
        ingest(config, NEXT_DAY)
        assert server.count("grouped") == 1 and server.count("aggs") == 6


def test_history_beyond_the_plan_lands_from_its_edge(tmp_path):
    edge = dt.date(2024, 5, 1)
    with FakePolygon(KEY, tickers=50, plan_history_start=edge) as server:
        config = settings(server, tmp_path, days=90)
        report, store = ingest(config, AS_OF)
        assert "starts at 2024-05-01" in report.plan_history
        assert load_state(store).plan_edge == edge.isoformat()
        first = min(i.key for i in store.list_objects(raw.RAW_PREFIX))
        assert first == raw.market_key(AS_OF.date(), edge)
        refused = sum(1 for r in server.requests if r.endpoint == "grouped") - len(
            sessions_between(edge, AS_OF.date())
        )
        assert 1 <= refused <= 8  # the first refusal, then a bisection
        # A day with no session is never asked: Memorial Day, and no weekend.
        asked = {r.path.rsplit("/", 1)[1] for r in server.requests if r.endpoint == "grouped"}
        assert "2024-05-27" not in asked
        assert all(dt.date.fromisoformat(d).weekday() < 5 for d in asked)


def test_a_bad_key_stops_at_once_naming_polygon_api_key(tmp_path):
    with FakePolygon("another-key", tickers=20) as server:
        config = settings(server, tmp_path)
        with pytest.raises(MarketlakeError) as stopped:
            ingest(config, AS_OF)
        assert "POLYGON_API_KEY" in str(stopped.value) and POLYGON_KEY_HELP in str(stopped.value)
        assert KEY not in str(stopped.value)
        assert len(server.requests) == 1


def test_a_server_error_after_retries_leaves_the_sessions_for_the_next_run(tmp_path):
    with FakePolygon(KEY, tickers=20) as server:
        config = settings(server, tmp_path, POLYGON_MAX_RETRIES="1")
        window = sessions_between(AS_OF.date() - dt.timedelta(days=10), AS_OF.date())
        server.faults += [server_error(502, "grouped"), server_error(502, "grouped")]
        report, store = ingest(config, AS_OF)
        assert report.market_failed and report.market_waiting[0] == window[0].isoformat()
        assert not list(store.list_objects(raw.RAW_PREFIX))
        report, store = ingest(config, AS_OF)
        assert not report.market_waiting
        assert len(list(store.list_objects(raw.RAW_PREFIX))) == len(window)
