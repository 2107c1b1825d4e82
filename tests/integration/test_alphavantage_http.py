"""AlphaVantageProvider against a loopback fake of www.alphavantage.co (no internet).

Every answer class goes through real HTTP on 127.0.0.1, in JSON and CSV form. The
refusal bodies in av_fake_server are Alpha Vantage's wordings as quoted in public
issue threads and client test suites: finance-quote/finance-quote#104 for the
5-a-minute "Note", RomelTorres/alpha_vantage#289 for "Invalid API call",
RomelTorres/alpha_vantage#44 for JSON refusals to datatype=csv requests, and several
clients' fixtures for the invalid-key, 25-a-day, 1-a-second, demo-key and premium
wordings.
"""

from __future__ import annotations

import datetime as dt
import logging

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
    NOTE_5_PER_MINUTE,
    FakeAlphaVantage,
    Reply,
    daily_csv,
    daily_json,
    sample_bars,
)

from marketlake.ingest.ratelimit import QuotaExhausted, RateLimiter, SimulatedClock
from marketlake.providers.alphavantage import (
    AlphaVantageProvider,
    DailyLimitReached,
    FetchFailed,
    InvalidApiKey,
    InvalidSymbol,
    PayloadError,
    PremiumOnly,
    RateLimited,
)
from marketlake.providers.base import BAR_COLUMNS, ServerUnreachable
from recorders import Recorder, shown

KEY = "MLTESTKEY4Q9Z7X1"
BARS = sample_bars(10)
UNTIL = dt.date(2030, 1, 1)
BACKOFF = 0.01


@pytest.fixture
def server():
    with FakeAlphaVantage() as fake:
        yield fake


@pytest.fixture
def rec():
    return Recorder()


def provider(server, rec, **kwargs) -> AlphaVantageProvider:
    options = {
        "base_url": server.url,
        "max_retries": 2,
        "backoff_seconds": BACKOFF,
        "timeout": 2.0,
        "sleep": rec.sleep,
        "on_event": rec.event,
    }
    options.update(kwargs)
    return AlphaVantageProvider(KEY, **options)


def data_reply(datatype: str, bars=BARS, symbol: str = "IBM") -> Reply:
    if datatype == "csv":
        return Reply(daily_csv(bars), content_type="text/csv")
    return Reply(daily_json(symbol, bars))


def assert_contract(bars) -> None:
    assert list(bars.columns) == BAR_COLUMNS
    assert bars["trade_date"].dtype == object
    assert all(type(d) is dt.date for d in bars["trade_date"])
    assert [str(bars[c].dtype) for c in BAR_COLUMNS[1:]] == ["float64"] * 4 + ["int64"]
    assert bars["trade_date"].is_monotonic_increasing and bars["trade_date"].is_unique


DATATYPES = ["json", "csv"]


# -- ok ------------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
def test_ok_answer_gives_contract_bars_within_range(server, rec, datatype):
    server.default = data_reply(datatype)
    p = provider(server, rec, datatype=datatype)
    since, until = BARS[2][0], BARS[7][0]
    result = p.fetch("IBM", since, until)

    assert_contract(result.bars)
    assert list(result.bars["trade_date"]) == [b[0] for b in BARS[2:8]]
    first = result.bars.iloc[0]
    assert (first["open"], first["high"], first["low"], first["close"]) == BARS[2][1:5]
    assert first["volume"] == BARS[2][5]
    assert result.rejected.empty and result.attempts == 1 and result.outputsize == "compact"
    assert rec.sleeps == [] and rec.events == []
    assert server.requests == [
        {
            "function": "TIME_SERIES_DAILY",
            "symbol": "IBM",
            "outputsize": "compact",
            "datatype": datatype,
            "apikey": KEY,
        }
    ]
    # The Provider protocol: same bars, rejected rows kept on the side.
    assert list(p.fetch_daily("IBM", None, UNTIL)["trade_date"]) == [b[0] for b in BARS]
    assert p.last_rejected.empty and p.last_result is not None


def test_unparseable_rows_are_returned_separately(server, rec):
    body = daily_csv(BARS[:3]) + "2024-13-40,1,2,0.5,1.5,100\r\n2024-02-01,1,2,x,1.5,100\r\n"
    server.default = Reply(body, content_type="text/csv")
    p = provider(server, rec, datatype="csv")
    bars = p.fetch_daily("IBM", None, UNTIL)
    assert len(bars) == 3
    assert list(p.last_rejected["trade_date"]) == ["2024-13-40", "2024-02-01"]
    assert p.last_result.payload == body


# -- throttled -----------------------------------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
@pytest.mark.parametrize("throttle", [NOTE_5_PER_MINUTE, INFO_BURST], ids=["note", "burst"])
def test_throttled_is_retried_with_exponential_backoff(server, rec, datatype, throttle):
    server.replies = [Reply(throttle), Reply(throttle)]
    server.default = data_reply(datatype)
    result = provider(server, rec, datatype=datatype).fetch("IBM", None, UNTIL)
    assert len(result.bars) == len(BARS) and result.attempts == 3
    assert rec.sleeps == pytest.approx([BACKOFF, 2 * BACKOFF])
    assert rec.kinds() == ["retry", "retry"]
    assert len(server.requests) == 3


@pytest.mark.parametrize("datatype", DATATYPES)
def test_throttled_until_retries_run_out_raises_rate_limited(server, rec, datatype):
    server.default = Reply(INFO_BURST)
    with pytest.raises(RateLimited, match="throttles after 3 attempts"):
        provider(server, rec, datatype=datatype).fetch("IBM", None, UNTIL)
    assert len(server.requests) == 3
    assert len(rec.sleeps) == 2


def test_backoff_is_capped(server, rec):
    server.default = Reply(NOTE_5_PER_MINUTE)
    p = provider(server, rec, max_retries=4, backoff_seconds=1.0, max_backoff_seconds=3.0)
    with pytest.raises(RateLimited):
        p.fetch("IBM", None, UNTIL)
    assert rec.sleeps == [1.0, 2.0, 3.0, 3.0]


def test_jitter_is_reproducible_with_a_seeded_rng(server, rec):
    import random

    def waits(seed: int) -> list[float]:
        r = Recorder()
        server.replies = [Reply(INFO_BURST), Reply(INFO_BURST)]
        server.default = data_reply("json")
        p = provider(server, r, jitter_seconds=0.5, rng=random.Random(seed))
        p.fetch("IBM", None, UNTIL)
        return r.sleeps

    first, again = waits(7), waits(7)
    assert first == again
    assert all(b <= w <= b + 0.5 for w, b in zip(first, [BACKOFF, 2 * BACKOFF]))
    assert first != pytest.approx([BACKOFF, 2 * BACKOFF])


# -- daily limit ---------------------------------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
def test_daily_limit_raises_at_once_without_retry(server, rec, datatype):
    server.default = Reply(INFO_DAILY_LIMIT)
    with pytest.raises(DailyLimitReached) as info:
        provider(server, rec, datatype=datatype).fetch("IBM", None, UNTIL)
    assert isinstance(info.value, QuotaExhausted)
    assert "daily request limit" in str(info.value)
    assert KEY not in str(info.value) and "detected your API key as ***" in str(info.value)
    assert len(server.requests) == 1 and rec.sleeps == []


def test_daily_limit_spends_the_limiters_budget(server, rec):
    clock = SimulatedClock()
    persisted = []
    limiter = RateLimiter(
        calls_per_minute=5,
        calls_per_day=25,
        clock=clock.now,
        sleep=clock.sleep,
        on_acquire=persisted.append,
    )
    server.default = Reply(INFO_DAILY_LIMIT)
    p = provider(server, rec, limiter=limiter)
    with pytest.raises(DailyLimitReached):
        p.fetch("IBM", None, UNTIL)
    assert persisted == [1, 25] and limiter.used_today == 25
    with pytest.raises(QuotaExhausted):
        p.fetch("MSFT", None, UNTIL)
    assert len(server.requests) == 1


# -- invalid key ---------------------------------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
@pytest.mark.parametrize("body", [ERROR_INVALID_KEY, INFO_DEMO_KEY], ids=["invalid", "demo"])
def test_invalid_key_is_fatal_and_says_how_to_set_it(server, rec, datatype, body):
    server.default = Reply(body)
    with pytest.raises(InvalidApiKey, match="export ALPHAVANTAGE_API_KEY="):
        provider(server, rec, datatype=datatype).fetch("IBM", None, UNTIL)
    assert len(server.requests) == 1 and rec.sleeps == []


@pytest.mark.parametrize("key", ["", "   "])
def test_missing_key_is_refused_before_any_request(key):
    with pytest.raises(InvalidApiKey, match="ALPHAVANTAGE_API_KEY"):
        AlphaVantageProvider(key)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="outputsize"):
        AlphaVantageProvider(KEY, outputsize="huge")
    with pytest.raises(ValueError, match="datatype"):
        AlphaVantageProvider(KEY, datatype="xml")
    assert KEY not in repr(AlphaVantageProvider(KEY))


# -- premium -------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
def test_full_refused_as_premium_falls_back_to_compact_and_says_so_once(server, rec, datatype):
    data = data_reply(datatype)
    server.default = lambda q: Reply(INFO_PREMIUM_FULL) if q["outputsize"] == "full" else data
    p = provider(server, rec, outputsize="full", datatype=datatype)

    first = p.fetch("IBM", None, UNTIL)
    second = p.fetch("MSFT", None, UNTIL)

    assert len(first.bars) == len(second.bars) == len(BARS)
    assert first.outputsize == second.outputsize == "compact"
    assert [q["outputsize"] for q in server.requests] == ["full", "compact", "compact"]
    assert rec.kinds() == ["fallback"]
    assert "compact" in rec.events[0][1]
    assert rec.sleeps == []


@pytest.mark.parametrize("datatype", DATATYPES)
def test_premium_endpoint_on_compact_raises_premium_only(server, rec, datatype):
    server.default = Reply(INFO_PREMIUM_ENDPOINT)
    with pytest.raises(PremiumOnly, match="premium key"):
        provider(server, rec, datatype=datatype).fetch("IBM", None, UNTIL)
    assert len(server.requests) == 1


def test_premium_for_compact_too_after_fallback_raises_premium_only(server, rec):
    server.default = Reply(INFO_PREMIUM_FULL)
    with pytest.raises(PremiumOnly):
        provider(server, rec, outputsize="full").fetch("IBM", None, UNTIL)
    assert [q["outputsize"] for q in server.requests] == ["full", "compact"]
    assert rec.kinds() == ["fallback"]


# -- invalid symbol ------------------------------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
def test_invalid_symbol_raises_without_retry(server, rec, datatype):
    server.default = Reply(ERROR_INVALID_SYMBOL)
    with pytest.raises(InvalidSymbol) as info:
        provider(server, rec, datatype=datatype).fetch("NOPE", None, UNTIL)
    assert info.value.symbol == "NOPE" and "'NOPE'" in str(info.value)
    assert len(server.requests) == 1 and rec.sleeps == []


# -- garbled -------------------------------------------------------------------------

GARBLED = {
    "empty-object": Reply("{}"),
    "html": Reply(HTML_502, content_type="text/html"),
    "truncated-json": Reply(daily_json("IBM", BARS)[:300]),
    "wrong-csv-header": Reply(
        "date,o,h,l,c,v\r\n2024-01-02,1,2,0.5,1.5,9\r\n", content_type="text/csv"
    ),
    "empty-body": Reply(""),
}


@pytest.mark.parametrize("datatype", DATATYPES)
@pytest.mark.parametrize("name", list(GARBLED))
def test_garbled_answer_is_retried_then_succeeds(server, rec, datatype, name):
    server.replies = [GARBLED[name]]
    server.default = data_reply(datatype)
    result = provider(server, rec, datatype=datatype).fetch("IBM", None, UNTIL)
    assert len(result.bars) == len(BARS) and result.attempts == 2
    assert rec.kinds() == ["retry"]


@pytest.mark.parametrize("name", list(GARBLED))
def test_garbled_until_retries_run_out_raises_payload_error(server, rec, name):
    server.default = GARBLED[name]
    with pytest.raises(PayloadError) as info:
        provider(server, rec).fetch("IBM", None, UNTIL)
    body = GARBLED[name].body
    assert info.value.payload == body and info.value.symbol == "IBM"
    assert "after 3 attempts" in str(info.value) and "\n" not in str(info.value)
    assert len(server.requests) == 3


def test_payload_error_carries_the_payload_redacted(server, rec):
    page = f'<html><a href="/query?function=X&apikey={KEY}">retry</a> key {KEY}</html>'
    server.default = Reply(page, content_type="text/html")
    with pytest.raises(PayloadError) as info:
        provider(server, rec).fetch("IBM", None, UNTIL)
    assert KEY not in info.value.payload
    assert info.value.payload == (
        '<html><a href="/query?function=X&apikey=***">retry</a> key ***</html>'
    )


# -- HTTP errors ---------------------------------------------------------------------


def test_http_5xx_is_retried(server, rec):
    server.replies = [Reply("oops", status=503, content_type="text/plain")]
    server.default = data_reply("json")
    result = provider(server, rec).fetch("IBM", None, UNTIL)
    assert result.attempts == 2 and "HTTP 503" in rec.events[0][1]


def test_http_429_honours_retry_after(server, rec):
    server.replies = [Reply("slow down", status=429, headers={"Retry-After": "0.5"})]
    server.default = data_reply("json")
    provider(server, rec).fetch("IBM", None, UNTIL)
    assert rec.sleeps == [0.5]


def test_http_5xx_until_retries_run_out_raises_fetch_failed(server, rec):
    server.default = Reply("down", status=500, content_type="text/plain")
    with pytest.raises(FetchFailed, match="HTTP 500"):
        provider(server, rec).fetch("IBM", None, UNTIL)
    assert len(server.requests) == 3


def test_http_404_is_not_retried(server, rec):
    server.default = Reply("not found", status=404, content_type="text/plain")
    with pytest.raises(FetchFailed, match="HTTP 404"):
        provider(server, rec).fetch("IBM", None, UNTIL)
    assert len(server.requests) == 1


# -- slow and dropped answers --------------------------------------------------------


def test_slow_answer_times_out_and_is_retried(server, rec):
    server.replies = [Reply(daily_json("IBM", BARS), delay=0.6)]
    server.default = data_reply("json")
    result = provider(server, rec, timeout=0.2).fetch("IBM", None, UNTIL)
    assert len(result.bars) == len(BARS) and result.attempts == 2
    assert "no answer within 0.2s" in rec.events[0][1]


def test_always_slow_gives_up_with_fetch_failed(server, rec):
    server.default = Reply(daily_json("IBM", BARS), delay=0.6)
    with pytest.raises(FetchFailed, match=r"no answer within 0\.2s"):
        provider(server, rec, timeout=0.2, max_retries=1).fetch("IBM", None, UNTIL)
    assert len(server.requests) == 2


def test_dropped_connection_is_retried(server, rec):
    server.replies = [Reply(drop=True)]
    server.default = data_reply("csv")
    result = provider(server, rec, datatype="csv").fetch("IBM", None, UNTIL)
    assert len(result.bars) == len(BARS) and result.attempts == 2
    assert "connection dropped" in rec.events[0][1]


def test_always_dropped_gives_up_with_fetch_failed(server, rec):
    server.default = Reply(drop=True)
    with pytest.raises(FetchFailed, match="connection dropped"):
        provider(server, rec).fetch("IBM", None, UNTIL)
    assert len(server.requests) == 3


def test_connection_refused_on_the_first_request_stops_naming_the_base_url(rec):
    # More in test_unreachable_server.py: after an answer, a refusal is retried as usual.
    with FakeAlphaVantage() as fake:
        url = fake.url  # the port is free again once the server is closed
    p = AlphaVantageProvider(KEY, base_url=url, max_retries=1, sleep=rec.sleep)
    with pytest.raises(ServerUnreachable, match=r"ALPHAVANTAGE_BASE_URL.*connection failed"):
        p.fetch("IBM", None, UNTIL)
    assert len(rec.sleeps) == 1


# -- the key never leaks -------------------------------------------------------------

LEAKY = {
    "daily-limit": Reply(INFO_DAILY_LIMIT),
    "invalid-key": Reply({"Error Message": f"the parameter apikey={KEY} is invalid or missing."}),
    "premium": Reply({"Information": f"This is a premium endpoint for key {KEY}."}),
    "symbol": Reply({"Error Message": f"Invalid API call for apikey={KEY}."}),
    "throttled": Reply({"Note": f"Key {KEY}: our standard API call frequency is 5 per minute."}),
    "garbled": Reply(f"<html>{KEY} apikey={KEY.lower()}</html>", content_type="text/html"),
    "unknown-info": Reply({"Information": f"Something new about {KEY}"}),
    "http-404": Reply(f"no {KEY}", status=404),
}


@pytest.mark.parametrize("name", list(LEAKY))
def test_key_never_appears_in_errors_events_or_logs(server, rec, caplog, name):
    caplog.set_level(logging.DEBUG, logger="marketlake")
    server.default = LEAKY[name]
    with pytest.raises(Exception) as info:
        provider(server, rec).fetch("IBM", None, UNTIL)
    exc = info.value
    texts = [*shown(exc), repr(rec.events), caplog.text]
    assert server.requests[0]["apikey"] == KEY  # the key did go out, and came back
    for text in texts:
        assert KEY not in text and KEY.lower() not in text


def test_the_key_is_masked_in_urllib3s_debug_log_of_the_request_line(server, rec, caplog):
    """requests logs each request line (the URL, with the key) through urllib3 at DEBUG."""
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    server.default = data_reply("json")
    provider(server, rec).fetch("IBM", None, UNTIL)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("GET /query?" in line and "apikey=***" in line for line in lines), lines
    assert KEY not in caplog.text and KEY.lower() not in caplog.text
