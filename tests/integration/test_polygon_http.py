"""PolygonProvider against the loopback stand-in of api.polygon.io (no internet).

The stand-in (polygon_fake_server) speaks the shapes of polygon-io/client-python's fixtures
and OpenAPI spec; its refusal bodies are the API's wordings: "Unknown API Key" and "API Key
was not provided" (polygon-io/issues#219), "Your plan doesn't include this data timeframe"
(polygon-io/issues#313, massive-com/client-python#922), "You are not entitled to this data"
(alpacahq/alpaca-trade-api-python#354, maybe-finance/maybe#152), and the 429 "You've
exceeded the maximum requests per minute" as clients quote it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import urllib.error
import urllib.request

import pytest
from polygon_fake_server import (
    IMPOSSIBLE,
    JUNK_TICKERS,
    MISSING_CLOSE,
    NO_KEY,
    NON_NUMERIC,
    NOT_ENTITLED,
    UNKNOWN_KEY,
    WRONG_DAY,
    FakePolygon,
    decode_cursor,
    drop,
    html_page,
    reply,
    server_error,
    stall,
    throttle,
    truncated,
)

from marketlake.config import POLYGON_KEY_HELP, Settings
from marketlake.ingest.ratelimit import QuotaExhausted
from marketlake.providers import make_provider
from marketlake.providers.base import (
    BAR_COLUMNS,
    GROUPED_COLUMNS,
    BeyondPlan,
    Fatal,
    NotOffered,
    Retriable,
    ServerUnreachable,
    UnusablePayload,
)
from marketlake.providers.polygon import (
    HISTORY_START,
    FetchFailed,
    InvalidApiKey,
    PayloadError,
    PolygonProvider,
    RateLimited,
)
from recorders import Recorder, shown

KEY = "PGTESTKEY9Xq2Lm7"
SESSION = dt.date(2024, 6, 3)  # a Monday
SATURDAY = dt.date(2024, 6, 1)
START, END = dt.date(2024, 1, 2), dt.date(2024, 12, 31)
BACKOFF = 0.01


class CountingLimiter:
    """Counts acquire() calls and what the server had seen at each: acquired before every
    request means call k saw k - 1 requests. ``budget`` calls, then QuotaExhausted."""

    def __init__(self, server: FakePolygon, budget: int = 1000) -> None:
        self.server, self.budget, self.seen = server, budget, []

    def acquire(self) -> float:
        if len(self.seen) >= self.budget:
            raise QuotaExhausted("the day's budget is spent")
        self.seen.append(self.server.count())
        return 0.0

    def mark_exhausted(self) -> None:
        self.budget = 0


@pytest.fixture
def server():
    with FakePolygon(KEY, tickers=30, start=START, end=END) as fake:
        yield fake


@pytest.fixture
def rec():
    return Recorder()


def provider(server, rec, **kwargs) -> PolygonProvider:
    options = {
        "base_url": server.url,
        "max_retries": 2,
        "backoff_seconds": BACKOFF,
        "timeout": 2.0,
        "sleep": rec.sleep,
        "on_event": rec.event,
    }
    options.update(kwargs)
    return PolygonProvider(options.pop("key", KEY), **options)


def asked_unadjusted(logged) -> bool:
    query = decode_cursor(logged.query["cursor"]) if "cursor" in logged.query else logged.query
    return query.get("adjusted") == "false"


# -- the four endpoints --------------------------------------------------------------


def test_grouped_daily_gives_every_tickers_bar_in_one_request(server, rec):
    day = provider(server, rec).fetch_grouped(SESSION)
    assert day.session == SESSION and list(day.bars.columns) == GROUPED_COLUMNS
    assert sorted(day.bars["symbol"]) == sorted(server.market.tickers)
    assert {"BRK.B", "KIMpL"} <= set(day.bars["symbol"])  # spelled as the vendor does
    assert set(day.bars["trade_date"]) == {SESSION} and day.rejected.empty
    assert [str(t) for t in day.bars.dtypes[2:]] == ["float64"] * 4 + ["int64"]
    assert KEY not in day.payload and '"T": "BRK.B"' in day.payload
    (logged,) = server.requests
    assert logged.path == f"/v2/aggs/grouped/locale/us/market/stocks/{SESSION}"
    assert logged.query == {"adjusted": "false", "apiKey": KEY}
    assert rec.sleeps == [] and rec.events == []


def test_a_day_without_trading_answers_ok_and_empty(server, rec):
    day = provider(server, rec).fetch_grouped(SATURDAY)
    assert day.bars.empty and day.rejected.empty and server.count() == 1


def test_one_ticker_is_asked_unadjusted_ascending_and_agrees_with_grouped(server, rec):
    p = provider(server, rec)
    bars = p.fetch_daily("BRK.B", dt.date(2024, 5, 1), dt.date(2024, 6, 28))
    assert list(bars.columns) == BAR_COLUMNS and bars["trade_date"].is_monotonic_increasing
    assert bars["trade_date"].iloc[0] == dt.date(2024, 5, 1) and len(bars) == 41
    logged = server.requests[0]
    assert logged.path == "/v2/aggs/ticker/BRK.B/range/1/day/2024-05-01/2024-06-28"
    assert logged.query == {"adjusted": "false", "sort": "asc", "limit": "50000", "apiKey": KEY}
    grouped = p.fetch_grouped(SESSION).bars.set_index("symbol").loc["BRK.B"]
    ranged = bars.set_index("trade_date").loc[SESSION]
    assert grouped[BAR_COLUMNS[1:]].tolist() == ranged.tolist()
    assert p.last_rejected.empty and p.requests_made == 2


def test_since_none_asks_from_the_history_start(server, rec):
    bars = provider(server, rec).fetch_daily("AAPL", None, END)
    assert server.requests[0].path.endswith(f"/{HISTORY_START}/{END}")
    assert bars["trade_date"].iloc[0] == START and len(bars) == len(server.market.sessions)


def test_a_ticker_is_url_quoted_in_the_path(server, rec):
    bars = provider(server, rec).fetch_daily("A B/C", START, END)
    # One path segment: the server found no such ticker (not a 404 for a longer path).
    assert bars.empty and server.count() == 1
    assert server.requests[0].path == f"/v2/aggs/ticker/A%20B%2FC/range/1/day/{START}/{END}"


def test_splits_and_dividends_are_asked_market_wide_by_date(server, rec):
    p = provider(server, rec)
    splits = p.fetch_market_actions("splits", START, END)
    on = {i: str(server.market.sessions[j]) for i, j, *_ in server.market.splits}
    # AAPL 1 -> 4, MSFT 10 -> 1 (a reverse split), BF.B 2 -> 3.
    assert splits.to_dict("records") == [
        {"symbol": "AAPL", "date": on[0], "value": 4.0},
        {"symbol": "BF.B", "date": on[5], "value": 1.5},
        {"symbol": "MSFT", "date": on[2], "value": 0.1},
    ]
    dividends = p.fetch_market_actions("dividends", START, END)
    assert set(dividends["symbol"]) == {"AAPL", "BRK.B"}  # KIMpL's is in CAD
    assert ("skipped", f"dividends {START}..{END}: 1 left out: KIMpL: a dividend in 'CAD'") in (
        rec.events
    )
    splits_query, dividends_query = (r.query for r in server.requests)
    assert splits_query == {
        "execution_date.gte": str(START),
        "execution_date.lte": str(END),
        "limit": "1000",
        "order": "asc",
        "sort": "execution_date",
        "apiKey": KEY,
    }
    assert dividends_query["sort"] == "ex_dividend_date"
    assert dividends_query["ex_dividend_date.gte"] == str(START)
    with pytest.raises(ValueError, match="kind"):
        p.fetch_market_actions("earnings", START, END)


def test_make_provider_builds_polygon_from_the_settings(server):
    settings = Settings.from_env({"POLYGON_API_KEY": KEY, "POLYGON_BASE_URL": server.url})
    made = make_provider(settings, sleep=lambda s: None)
    assert isinstance(made, PolygonProvider) and made.name == "polygon"
    assert made.fetch_actions is None and made.resends_history is False
    assert len(made.fetch_daily("MSFT", START, dt.date(2024, 1, 5))) == 4
    assert KEY not in repr(made)


# -- pages ---------------------------------------------------------------------------


def test_range_pages_are_followed_with_the_key_added(server, rec):
    server.page_size = 100
    bars = provider(server, rec).fetch_daily("AAPL", START, END)
    assert len(bars) == len(server.market.sessions) and bars["trade_date"].is_unique
    assert server.count("aggs") == 3
    for logged in server.requests[1:]:
        assert set(logged.query) == {"cursor", "apiKey"} and logged.query["apiKey"] == KEY
    assert all(asked_unadjusted(r) for r in server.requests)


def test_next_url_naming_another_host_is_followed_on_our_base_url(server, rec):
    server.link_base = "https://api.massive.com"
    actions = provider(server, rec).fetch_market_actions("dividends", START, END)
    answered = len(server.market.dividends)  # one of them in CAD, left out
    assert len(actions) == answered - 1 and server.count("dividends") == 1
    server.page_size = 2
    again = provider(server, rec).fetch_market_actions("dividends", START, END)
    # Every page reached this server, though each next_url named api.massive.com.
    assert again.equals(actions) and server.count("dividends") == 1 + -(-answered // 2)
    url = f"{server.url}/v3/reference/dividends?limit=2&apiKey={KEY}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert json.loads(answer.read())["next_url"].startswith("https://api.massive.com/v3/")
    assert all(r.query["apiKey"] == KEY for r in server.requests)


# -- refusals ------------------------------------------------------------------------


def test_a_wrong_key_is_fatal_at_once_naming_polygon_api_key(server, rec):
    with pytest.raises(InvalidApiKey) as info:
        provider(server, rec, key="WRONGKEY123").fetch_grouped(SESSION)
    assert isinstance(info.value, Fatal)
    assert POLYGON_KEY_HELP in str(info.value) and "Unknown API Key" in str(info.value)
    assert "\n" not in str(info.value) and "WRONGKEY123" not in str(info.value)
    assert server.count() == 1 and rec.sleeps == []


def test_a_missing_key_is_refused_before_any_request(server):
    for key in (None, "", "   "):
        with pytest.raises(InvalidApiKey, match="POLYGON_API_KEY"):
            PolygonProvider(key, base_url=server.url)
    server.faults.append(reply(401, NO_KEY))
    with pytest.raises(InvalidApiKey, match="API Key was not provided"):
        PolygonProvider(KEY, base_url=server.url).fetch_grouped(SESSION)


def test_the_stand_in_refuses_a_missing_or_wrong_key_with_polygons_bodies(server):
    for query, body in (("", NO_KEY), ("?apiKey=nope", UNKNOWN_KEY)):
        url = f"{server.url}/v2/aggs/grouped/locale/us/market/stocks/{SESSION}{query}"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url, timeout=5)
        assert info.value.code == 401 and json.loads(info.value.read()) == body


@pytest.mark.parametrize("endpoint", ["grouped", "aggs", "splits", "dividends"])
def test_asking_before_the_plans_history_is_beyond_plan_and_not_retried(rec, endpoint):
    edge = dt.date(2024, 3, 1)
    with FakePolygon(KEY, tickers=5, start=START, end=END, plan_history_start=edge) as fake:
        p, asked = provider(fake, rec), dt.date(2024, 2, 1)
        with pytest.raises(BeyondPlan) as info:
            if endpoint == "grouped":
                p.fetch_grouped(asked)
            elif endpoint == "aggs":
                p.fetch_daily("AAPL", asked, END)
            else:
                p.fetch_market_actions(endpoint, asked, END)
        assert info.value.asked_from == asked and "timeframe" in info.value.vendor_message
        assert not isinstance(info.value, (Fatal, Retriable))
        assert fake.count() == 1 and rec.sleeps == []
        # From the edge on, the same asks are answered.
        assert p.fetch_grouped(dt.date(2024, 3, 1)).bars.shape[0] == 5


def test_an_endpoint_the_plan_lacks_is_not_offered(server, rec):
    server.faults.append(reply(403, NOT_ENTITLED, endpoint="dividends"))
    with pytest.raises(NotOffered, match="not entitled"):
        provider(server, rec).fetch_market_actions("dividends", START, END)
    assert server.count() == 1


# -- throttling and retries ----------------------------------------------------------


def test_429_is_retried_with_exponential_waits(server, rec):
    server.faults += [throttle(), throttle()]
    p = provider(server, rec)
    assert len(p.fetch_grouped(SESSION).bars) == 30
    assert rec.sleeps == pytest.approx([BACKOFF, 2 * BACKOFF])
    assert [k for k, _ in rec.events] == ["retry", "retry"] and p.requests_made == 3
    assert "exceeded the maximum requests per minute" in rec.events[0][1]


def test_429_honours_retry_after_within_the_cap(server, rec):
    server.faults += [throttle(retry_after="7"), throttle(retry_after="900")]
    provider(server, rec, max_backoff_seconds=60).fetch_daily("AAPL", START, END)
    assert rec.sleeps == [7.0, 60.0]


def test_429_until_retries_run_out_is_rate_limited(server, rec):
    server.faults += [throttle() for _ in range(3)]
    with pytest.raises(RateLimited, match="after 3 attempts") as info:
        provider(server, rec).fetch_grouped(SESSION)
    assert isinstance(info.value, Retriable) and server.count() == 3


TRANSIENT = {
    "500": lambda: server_error(500),
    "503": lambda: server_error(503),
    "html": lambda: html_page(200),
    "html-502": lambda: html_page(502),
    "truncated": truncated,
    "dropped": drop,
    "stalled": lambda: stall(0.6),
}


@pytest.mark.parametrize("name", list(TRANSIENT))
def test_transient_trouble_is_retried_then_answered(server, rec, name):
    server.faults.append(TRANSIENT[name]())
    p = provider(server, rec, timeout=0.3)
    assert len(p.fetch_daily("AAPL", START, END)) == len(server.market.sessions)
    assert p.requests_made == 2 and len(rec.sleeps) == 1


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("500", FetchFailed),
        ("html", PayloadError),
        ("truncated", PayloadError),
        ("dropped", FetchFailed),
        ("stalled", FetchFailed),
    ],
)
def test_trouble_that_stays_ends_retriable_or_unusable(server, rec, name, error):
    server.faults += [TRANSIENT[name]() for _ in range(3)]
    with pytest.raises(error, match="after 3 attempts") as info:
        provider(server, rec, timeout=0.3).fetch_grouped(SESSION)
    assert isinstance(info.value, Retriable if error is FetchFailed else UnusablePayload)
    if error is PayloadError:
        assert info.value.payload and KEY not in info.value.payload
    assert server.count() == 3 and len(rec.sleeps) == 2


def test_a_refused_first_connection_is_retried_then_server_unreachable(rec):
    # More in test_unreachable_server.py: after an answer, a refusal ends in FetchFailed.
    with FakePolygon(KEY, tickers=1) as fake:
        url = fake.url  # free again once closed
    with pytest.raises(ServerUnreachable, match=r"POLYGON_BASE_URL.*connection failed") as info:
        PolygonProvider(KEY, base_url=url, max_retries=1, sleep=rec.sleep).fetch_grouped(SESSION)
    assert len(rec.sleeps) == 1 and KEY not in str(info.value)


# -- junk rows -----------------------------------------------------------------------


def test_junk_rows_are_rejected_and_impossible_bars_left_to_validation(rec):
    with FakePolygon(KEY, tickers=10, junk_rows=True, impossible_rows=True) as fake:
        day = provider(fake, rec).fetch_grouped(SESSION)
    rejected = dict(zip(day.rejected["symbol"], day.rejected["reason"]))
    expected = {*JUNK_TICKERS, *NON_NUMERIC, MISSING_CLOSE, WRONG_DAY}
    assert set(rejected) == expected
    assert "is not a number" in rejected["NUMX"] and "2024-06-02" in rejected[WRONG_DAY]
    assert set(IMPOSSIBLE) <= set(day.bars["symbol"]) and len(day.bars) == 10 + len(IMPOSSIBLE)


# -- the key and the limiter ---------------------------------------------------------

LEAKY = {
    "html-echo": lambda: reply(200, f'<html><a href="/v2?apiKey={KEY}">{KEY}</a></html>'),
    "401-echo": lambda: reply(401, {"status": "ERROR", "error": f"Unknown API Key {KEY}"}),
    "403-echo": lambda: reply(403, {"status": "NOT_AUTHORIZED", "message": f"timeframe {KEY}"}),
    "429-echo": lambda: reply(429, {"status": "ERROR", "error": f"too many requests {KEY}"}),
    "404": lambda: reply(404, {"status": "NOT_FOUND", "message": f"no {KEY.lower()}"}),
    "dropped": drop,
}


@pytest.mark.parametrize("name", list(LEAKY))
def test_the_key_never_appears_in_errors_payloads_events_or_logs(server, rec, caplog, name):
    caplog.set_level(logging.DEBUG)  # urllib3's request lines too
    server.faults += [LEAKY[name]() for _ in range(3)]
    with pytest.raises(Exception) as info:
        provider(server, rec).fetch_daily("AAPL", START, END)
    exc = info.value
    texts = [*shown(exc), repr(rec.events), caplog.text]
    assert server.requests[0].query["apiKey"] == KEY  # it did go out
    for text in texts:
        assert KEY not in text and KEY.lower() not in text


def test_the_key_is_kept_out_when_pages_are_followed(server, rec, caplog):
    caplog.set_level(logging.DEBUG)
    server.page_size = 50
    provider(server, rec).fetch_daily("AAPL", START, END)
    assert server.count("aggs") > 1 and KEY not in caplog.text
    assert "apiKey=***" in caplog.text


def test_the_limiter_is_asked_before_every_attempt_and_page(server, rec):
    limiter = CountingLimiter(server)
    server.page_size = 100
    server.faults += [throttle(endpoint="aggs"), drop(endpoint="aggs")]
    p = provider(server, rec, limiter=limiter)
    p.fetch_daily("AAPL", START, END)
    p.fetch_grouped(SESSION)
    assert p.requests_made == server.count() == 2 + 3 + 1
    assert limiter.seen == list(range(server.count()))


def test_a_spent_budget_stops_before_the_request(server, rec):
    limiter = CountingLimiter(server, budget=1)
    p = provider(server, rec, limiter=limiter)
    p.fetch_grouped(SESSION)
    with pytest.raises(QuotaExhausted):
        p.fetch_grouped(SESSION)
    assert server.count() == 1


# -- the stand-in at market scale ----------------------------------------------------


def test_the_stand_in_serves_twelve_thousand_tickers_quickly_and_consistently():
    began = time.perf_counter()
    with FakePolygon(KEY, tickers=12_000, start=dt.date(2023, 1, 3), end=END) as fake:
        p = PolygonProvider(KEY, base_url=fake.url, sleep=lambda s: None)
        day = p.fetch_grouped(SESSION)
        assert len(day.bars) == 12_000 and day.bars["symbol"].is_unique
        for ticker in ("BRK.B", fake.market.tickers[11_999]):
            ranged = p.fetch_daily(ticker, SESSION, SESSION)
            grouped = day.bars[day.bars["symbol"] == ticker]
            assert grouped[BAR_COLUMNS].reset_index(drop=True).equals(ranged)
    assert time.perf_counter() - began < 20  # about a second on an idle machine
