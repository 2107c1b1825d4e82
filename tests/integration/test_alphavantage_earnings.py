"""AlphaVantageProvider.fetch_earnings (function=EARNINGS) against the loopback Alpha Vantage:
each answer class over real HTTP on 127.0.0.1. The data shape is the vendor's documented one
(its IBM example: annualEarnings, then quarterlyEarnings with reportedEPS, estimatedEPS,
surprise, surprisePercentage and reportTime, every value a string, "None" when unknown); its
refusals are the same "Information"/"Note"/"Error Message" bodies as for the other functions."""

from __future__ import annotations

import datetime as dt

import pytest
from av_fake_server import (
    ERROR_INVALID_KEY,
    ERROR_INVALID_SYMBOL,
    IBM_QUARTERS,
    INFO_BURST,
    INFO_DAILY_LIMIT,
    INFO_PREMIUM_ENDPOINT,
    KEY_ECHO,
    NOTE_5_PER_MINUTE,
    FakeAlphaVantage,
    Reply,
    earnings_json,
)

from marketlake.lake import earnings
from marketlake.providers.alphavantage import (
    AlphaVantageProvider,
    DailyLimitReached,
    InvalidApiKey,
    InvalidSymbol,
    PayloadError,
    PremiumOnly,
    RateLimited,
    UnknownFunction,
)
from marketlake.providers.base import NotOffered, UnusablePayload

KEY = "MLEARNKEY7Q2W9Z"
UNTIL = dt.date(2025, 3, 3)


@pytest.fixture
def server():
    with FakeAlphaVantage() as fake:
        yield fake


def provider(server, sleeps=None) -> AlphaVantageProvider:
    return AlphaVantageProvider(
        KEY,
        base_url=server.url,
        max_retries=1,
        backoff_seconds=0.01,
        timeout=2.0,
        sleep=(sleeps if sleeps is not None else []).append,
    )


def test_a_normal_answer_gives_the_quarters_as_text_in_the_lakes_vendor_frame(server):
    server.default = Reply(earnings_json("IBM", IBM_QUARTERS))
    rows = provider(server).fetch_earnings("IBM", UNTIL)
    assert list(rows.columns) == list(earnings.empty_earnings().columns)
    assert rows.iloc[0].tolist() == ["2024-12-31", "2025-01-29", "3.92"]
    assert len(rows) == 4  # the quarters only: annualEarnings is not read
    assert server.requests == [{"function": "EARNINGS", "symbol": "IBM", "apikey": KEY}]
    judged = earnings.judge(rows)
    assert list(judged.valid["eps"]) == [1.68, 2.43, 2.30, 3.92]  # oldest first
    assert judged.unreported == 0 and judged.rejected.empty


def test_an_empty_quarter_list_is_a_symbol_without_reports_not_an_error(server):
    server.default = Reply({"symbol": "NEWCO", "annualEarnings": [], "quarterlyEarnings": []})
    rows = provider(server).fetch_earnings("NEWCO", UNTIL)
    assert rows.empty and list(rows.columns) == list(earnings.empty_earnings().columns)
    assert len(server.requests) == 1


def test_an_empty_object_is_a_symbol_without_earnings_and_is_not_asked_again(server):
    """Alpha Vantage answers {} for a symbol it has no earnings for (an unknown one, a fund):
    nothing to land, and not worth a retry of the day's quota."""
    server.default = Reply({})
    rows = provider(server).fetch_earnings("SPY", UNTIL)
    assert rows.empty
    assert len(server.requests) == 1


def test_none_values_an_unknown_estimate_is_kept_an_unknown_eps_is_unreported(server):
    quarters = [
        ("2001-03-31", "2001-04-17", "0.85", "None"),  # old: no estimate, EPS known
        ("2000-12-31", "2001-01-17", "None", "None"),  # no EPS at all
        *IBM_QUARTERS,
    ]
    server.default = Reply(earnings_json("IBM", quarters))
    rows = provider(server).fetch_earnings("IBM", UNTIL)
    judged = earnings.judge(rows)
    assert judged.unreported == 1 and judged.rejected.empty
    assert dt.date(2001, 3, 31) in set(judged.valid["fiscal"])
    assert len(judged.valid) == 5


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"symbol": "IBM", "annualEarnings": []}, "without 'quarterlyEarnings'"),
        ({"symbol": "IBM", "quarterlyEarnings": {"a": 1}}, "is not a JSON array"),
        ({"symbol": "IBM", "quarterlyEarnings": [{}, "2024-12-31"]}, "entry 1 is not a JSON"),
    ],
)
def test_an_answer_of_the_wrong_shape_is_an_unusable_payload_in_one_redacted_line(
    server, body, reason
):
    # The key echoed in the body must not survive into the error or its payload.
    server.default = Reply({**body, "note": KEY_ECHO})
    with pytest.raises(PayloadError) as caught:
        provider(server).fetch_earnings("IBM", UNTIL)
    assert isinstance(caught.value, UnusablePayload)
    message = str(caught.value)
    assert reason in message and "\n" not in message
    assert KEY not in message and KEY not in caught.value.payload
    assert len(server.requests) == 2  # garbled is retried once (max_retries=1), then given up


def test_a_rate_limit_is_retried_then_given_up_as_rate_limited(server):
    server.replies = [Reply(NOTE_5_PER_MINUTE)]
    server.default = Reply(earnings_json("IBM", IBM_QUARTERS))
    sleeps: list[float] = []
    assert len(provider(server, sleeps).fetch_earnings("IBM", UNTIL)) == 4
    assert len(sleeps) == 1
    server.replies, server.default = [], Reply(INFO_BURST)
    with pytest.raises(RateLimited):
        provider(server).fetch_earnings("IBM", UNTIL)


def test_the_daily_limit_is_a_quota_refusal_at_once(server):
    server.default = Reply(INFO_DAILY_LIMIT)
    with pytest.raises(DailyLimitReached) as caught:
        provider(server).fetch_earnings("IBM", UNTIL)
    assert len(server.requests) == 1
    assert KEY not in str(caught.value)


def test_a_premium_refusal_is_not_offered_and_names_the_function(server):
    server.default = Reply(INFO_PREMIUM_ENDPOINT)
    with pytest.raises(PremiumOnly) as caught:
        provider(server).fetch_earnings("IBM", UNTIL)
    assert isinstance(caught.value, NotOffered)
    assert "EARNINGS" in str(caught.value) and len(server.requests) == 1


def test_an_unknown_function_is_not_offered(server):
    server.default = Reply({"Error Message": "This API function (EARNINGS) does not exist."})
    with pytest.raises(UnknownFunction):
        provider(server).fetch_earnings("IBM", UNTIL)


def test_error_messages_an_unknown_symbol_and_a_bad_key(server):
    server.default = Reply(ERROR_INVALID_SYMBOL)
    with pytest.raises(InvalidSymbol):
        provider(server).fetch_earnings("NOPE", UNTIL)
    server.default = Reply(ERROR_INVALID_KEY)
    with pytest.raises(InvalidApiKey):
        provider(server).fetch_earnings("IBM", UNTIL)
