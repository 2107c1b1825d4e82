"""Polygon answers, classified and parsed, from vendor-shaped bodies (no HTTP).

The data bodies follow polygon-io/client-python's fixtures (test_rest/mocks/v2/aggs/grouped/
locale/us/market/stocks/2005-04-04&adjusted=true.json, .../ticker/AAPL/range/1/day/2005-04-01/
2005-04-04.json, v3/reference/splits.json, dividends.json) and the examples of its OpenAPI
spec (.massive/rest.json: KIMpL, a fractional volume). The refusal bodies are the API's
wordings as quoted in polygon-io/issues#219 and #313, massive-com/client-python#922 and
several clients' code.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from marketlake.lake.actions import DIVIDENDS, SPLITS, judge_actions
from marketlake.providers.base import GROUPED_COLUMNS, GROUPED_REJECTED_COLUMNS, REJECTED_COLUMNS
from marketlake.providers.polygon import (
    BEYOND_PLAN,
    GARBLED,
    INVALID_KEY,
    NOT_ENTITLED,
    OK,
    REFUSED,
    SERVER_ERROR,
    THROTTLED,
    classify,
    parse_aggs,
    parse_dividends,
    parse_grouped,
    parse_splits,
    split_value,
    ticker_problem,
)

# The client's grouped fixture (its `t` is 2020-10-14 16:00 Eastern, whatever its file name
# says), here as asked: adjusted=false.
CLIENT_GROUPED = {
    "queryCount": 1,
    "resultsCount": 1,
    "adjusted": False,
    "results": [
        {
            "T": "GIK",
            "v": 895345,
            "vw": 9.9979,
            "o": 9.99,
            "c": 10.02,
            "h": 10.02,
            "l": 9.9,
            "t": 1602705600000,
            "n": 96,
        }
    ],
    "status": "OK",
    "request_id": "eae3ded2d6d43f978125b7a8a609fad9",
    "count": 1,
}
GIK_DAY = dt.date(2020, 10, 14)
# The client's range fixture: `t` is midnight Eastern of each session.
CLIENT_AAPL = [
    {"v": 642646396.0, "vw": 1.469, "o": 1.5032, "c": 1.4604, "h": 1.5064, "l": 1.4489,
     "t": 1112331600000, "n": 82132},
    {"v": 578172308.0, "vw": 1.4589, "o": 1.4639, "c": 1.4675, "h": 1.4754, "l": 1.4343,
     "t": 1112587200000, "n": 65543},
]  # fmt: skip
CLIENT_SPLITS = [
    {"execution_date": "2022-07-18", "split_from": 1, "split_to": 20, "ticker": "GOOGL"},
    {"execution_date": "2022-05-20", "split_from": 2, "split_to": 1, "ticker": "BRW"},
    {"execution_date": "2022-05-02", "split_from": 3, "split_to": 4, "ticker": "CIG.C"},
]
CLIENT_DIVIDEND = {
    "cash_amount": 0.59375,
    "declaration_date": "2020-09-09",
    "dividend_type": "CD",
    "ex_dividend_date": "2025-06-12",
    "frequency": 4,
    "pay_date": "2025-06-30",
    "record_date": "2025-06-15",
    "ticker": "CSSEN",
}


def row(ticker="ABC", t=1602705600000, **values):
    base = {"T": ticker, "v": 1000, "vw": 10.0, "o": 10.0, "c": 10.5, "h": 11.0, "l": 9.5, "t": t}
    base.update(values)
    return base


def grouped(*rows) -> dict:
    return {"status": "OK", "adjusted": False, "resultsCount": len(rows), "results": list(rows)}


def reasons(parsed) -> dict:
    return dict(zip(parsed.rejected["symbol"], parsed.rejected["reason"]))


# -- grouped daily -------------------------------------------------------------------


def test_the_clients_grouped_fixture_parses_to_one_contract_bar():
    answer = classify(200, json.dumps(CLIENT_GROUPED), "grouped")
    assert answer.kind == OK
    parsed = parse_grouped(answer.data, GIK_DAY)
    assert list(parsed.bars.columns) == GROUPED_COLUMNS
    assert parsed.bars.iloc[0].tolist() == ["GIK", GIK_DAY, 9.99, 10.02, 9.9, 10.02, 895345]
    assert type(parsed.bars["trade_date"][0]) is dt.date
    assert [str(t) for t in parsed.bars.dtypes[2:]] == ["float64"] * 4 + ["int64"]
    assert parsed.rejected.empty and list(parsed.rejected.columns) == GROUPED_REJECTED_COLUMNS


def test_an_adjusted_answer_is_garbage_for_a_lake_of_prices_as_traded():
    body = {**CLIENT_GROUPED, "adjusted": True}
    answer = classify(200, json.dumps(body), "grouped")
    assert answer.kind == GARBLED and "adjusted" in answer.message


def test_tickers_are_kept_as_the_vendor_spells_them():
    rows = [row("KIMpL"), row("BRK.B"), row("A"), row("TSLA-W"), row("X" * 15)]
    parsed = parse_grouped(grouped(*rows), GIK_DAY)
    assert sorted(parsed.bars["symbol"]) == sorted(["KIMpL", "BRK.B", "A", "TSLA-W", "X" * 15])
    assert parsed.rejected.empty


JUNK = ["\x00\x01\x02", "AB\x1bC", "ÄPFEL", "BAD TICK", "TAB\t", "", "X" * 16, "A/B", None, 7]


@pytest.mark.parametrize("ticker", JUNK, ids=[repr(t) for t in JUNK])
def test_a_junk_ticker_is_rejected_naming_it(ticker):
    parsed = parse_grouped(grouped(row(ticker), row("GOOD")), GIK_DAY)
    assert list(parsed.bars["symbol"]) == ["GOOD"]
    (rejected,) = parsed.rejected.to_dict("records")
    assert rejected["reason"].startswith("ticker")
    if ticker:
        assert repr(str(ticker)[:40]) in rejected["reason"]
    assert all(isinstance(v, str) for v in rejected.values())
    assert rejected["open"] == "10.0" and rejected["trade_date"] == "1602705600000"


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"o": "10.0"}, "open (o) '10.0' is not a number"),
        ({"h": None}, "high (h) is missing"),
        ({"l": True}, "low (l) 'True' is not a number"),
        ({"c": float("nan")}, "is not finite"),
        ({"v": "1000"}, "volume (v) '1000' is not a number"),
        ({"v": 25933.6}, "is not a whole number"),  # the spec's own example (TANH)
        ({"t": "2020-10-14"}, "t '2020-10-14' is not a time"),
        ({"t": 10**30}, "is not a time"),
    ],
)
def test_a_value_that_is_missing_or_not_a_number_rejects_the_row(values, says):
    parsed = parse_grouped(grouped(row("BAD", **values), row("GOOD")), GIK_DAY)
    assert list(parsed.bars["symbol"]) == ["GOOD"]
    assert says in reasons(parsed)["BAD"]


def test_a_missing_key_rejects_the_row():
    bad = row("MISSC")
    del bad["c"]
    parsed = parse_grouped(grouped(bad), GIK_DAY)
    assert parsed.bars.empty and reasons(parsed) == {"MISSC": "close (c) is missing"}
    assert parsed.rejected["close"].tolist() == [""]


def test_a_row_of_another_day_is_rejected_with_both_days():
    day_before = 1602705600000 - 86_400_000
    parsed = parse_grouped(grouped(row("OLD", t=day_before), row("NEW")), GIK_DAY)
    assert list(parsed.bars["symbol"]) == ["NEW"]
    assert reasons(parsed)["OLD"] == "the bar is of 2020-10-13, in the answer for 2020-10-14"


def test_the_date_is_the_eastern_one_at_either_end_of_the_window():
    # Midnight Eastern (a range's start stamp) and 16:00 Eastern (grouped's end stamp); at
    # 23:59 UTC-4 the UTC date would already be the next day.
    midnight, late = 1602648000000, 1602734340000
    parsed = parse_grouped(grouped(row("A", t=midnight), row("B", t=late)), GIK_DAY)
    assert list(parsed.bars["trade_date"]) == [GIK_DAY, GIK_DAY]


def test_whole_float_volumes_are_accepted():
    parsed = parse_grouped(grouped(row("F", v=1.2345e6), row("G", v=642646396.0)), GIK_DAY)
    assert parsed.bars["volume"].tolist() == [1_234_500, 642_646_396]


def test_impossible_but_numeric_bars_are_left_to_validation():
    rows = [row("HL", h=1.0, l=2.0), row("NEG", o=-5.0), row("NEGV", v=-100)]
    parsed = parse_grouped(grouped(*rows), GIK_DAY)
    assert sorted(parsed.bars["symbol"]) == ["HL", "NEG", "NEGV"] and parsed.rejected.empty


def test_a_ticker_sent_twice_keeps_the_first():
    parsed = parse_grouped(grouped(row("DUP", o=1.0), row("DUP", o=2.0)), GIK_DAY)
    assert parsed.bars["open"].tolist() == [1.0]
    assert "comes twice" in reasons(parsed)["DUP"]


def test_an_entry_that_is_not_an_object_is_rejected():
    parsed = parse_grouped(grouped("junk", [1, 2]), GIK_DAY)
    assert parsed.bars.empty and len(parsed.rejected) == 2
    assert set(parsed.rejected["reason"]) == {"entry is not a JSON object"}


@pytest.mark.parametrize("body", [
    {"queryCount": 0, "resultsCount": 0, "adjusted": False, "status": "OK", "request_id": "x"},
    {"resultsCount": 0, "adjusted": False, "status": "OK", "results": []},
    {"resultsCount": 0, "adjusted": False, "status": "DELAYED"},
])  # fmt: skip
def test_a_day_without_trading_is_ok_and_empty(body):
    answer = classify(200, json.dumps(body), "grouped")
    assert answer.kind == OK
    parsed = parse_grouped(answer.data, dt.date(2024, 6, 1))
    assert parsed.bars.empty and parsed.rejected.empty
    assert list(parsed.bars.columns) == GROUPED_COLUMNS
    assert str(parsed.bars["volume"].dtype) == "int64"


# -- one ticker's range --------------------------------------------------------------


def test_the_clients_range_fixture_parses_to_its_two_sessions():
    parsed = parse_aggs(CLIENT_AAPL, dt.date(2005, 4, 1), dt.date(2005, 4, 4))
    assert parsed.bars["trade_date"].tolist() == [dt.date(2005, 4, 1), dt.date(2005, 4, 4)]
    assert parsed.bars["volume"].tolist() == [642646396, 578172308]
    assert parsed.bars.iloc[0]["open"] == 1.5032 and parsed.rejected.empty


def test_range_rows_outside_the_range_or_repeated_or_unreadable_are_rejected():
    rows = [*reversed(CLIENT_AAPL), CLIENT_AAPL[0], {**CLIENT_AAPL[1], "t": 1112673600000}]
    rows.append({**CLIENT_AAPL[0], "o": "x"})
    parsed = parse_aggs(rows, dt.date(2005, 4, 1), dt.date(2005, 4, 4))
    # Oldest first, whatever order they came in.
    assert parsed.bars["trade_date"].tolist() == [dt.date(2005, 4, 1), dt.date(2005, 4, 4)]
    assert list(parsed.rejected.columns) == REJECTED_COLUMNS
    said = parsed.rejected["reason"].tolist()
    assert said[0] == "duplicate trade_date 2005-04-01"
    assert said[1].startswith("the bar is of 2005-04-05, outside the range asked")
    assert said[2] == "open (o) 'x' is not a number"


# -- splits and dividends ------------------------------------------------------------


@pytest.mark.parametrize(
    ("split_from", "split_to", "value"),
    [(1, 4, 4.0), (10, 1, 0.1), (2, 3, 1.5), (1.0, 20.0, 20.0)],
)
def test_a_split_factor_is_new_shares_per_old(split_from, split_to, value):
    assert split_value(split_from, split_to) == pytest.approx(value)


def test_the_clients_splits_fixture_gives_symbol_date_factor():
    actions = parse_splits(CLIENT_SPLITS).actions
    assert actions.to_dict("records") == [
        {"symbol": "BRW", "date": "2022-05-20", "value": 0.5},
        {"symbol": "CIG.C", "date": "2022-05-02", "value": pytest.approx(4 / 3)},
        {"symbol": "GOOGL", "date": "2022-07-18", "value": 20.0},
    ]


@pytest.mark.parametrize(("split_from", "split_to"), [(0, 4), (None, 4), ("1", 4), (1, -2)])
def test_a_split_without_a_factor_keeps_its_text_for_ingest_to_reject(split_from, split_to):
    entry = {"execution_date": "2024-06-10", "split_from": split_from, "split_to": split_to}
    actions = parse_splits([{**entry, "ticker": "ODD"}]).actions
    (value,) = actions["value"]
    assert isinstance(value, str)
    valid, rejected = judge_actions(SPLITS, actions[["date", "value"]])
    assert valid.empty and len(rejected) == 1


def test_dividends_keep_cash_amounts_and_leave_other_currencies_out():
    results = [
        CLIENT_DIVIDEND,  # no currency in the client's fixture: US market, USD
        {**CLIENT_DIVIDEND, "ticker": "USDX", "currency": "usd", "cash_amount": 0.25},
        {**CLIENT_DIVIDEND, "ticker": "CADX", "currency": "CAD", "cash_amount": 0.33},
        {**CLIENT_DIVIDEND, "ticker": "SPCL", "dividend_type": "SC", "cash_amount": 2},
        {**CLIENT_DIVIDEND, "ticker": "BAD\x00", "cash_amount": 1.0},
    ]
    parsed = parse_dividends(results)
    assert parsed.actions.to_dict("records") == [
        {"symbol": "CSSEN", "date": "2025-06-12", "value": 0.59375},
        {"symbol": "SPCL", "date": "2025-06-12", "value": 2},
        {"symbol": "USDX", "date": "2025-06-12", "value": 0.25},
    ]
    assert len(parsed.skipped) == 2
    assert "CADX: a dividend in 'CAD'" in parsed.skipped
    valid, rejected = judge_actions(DIVIDENDS, parsed.actions[["date", "value"]].iloc[:1])
    assert valid["value"].tolist() == [0.59375] and rejected.empty


# -- refusals and garbage ------------------------------------------------------------

UNKNOWN_KEY = {"status": "ERROR", "request_id": "a1", "error": "Unknown API Key"}
NO_KEY = {"status": "ERROR", "request_id": "a1", "error": "API Key was not provided"}
TIMEFRAME = {
    "status": "NOT_AUTHORIZED",
    "request_id": "dd68e9ff6c00458b806e1947d8bbe2ff",
    "message": "Your plan doesn't include this data timeframe. Please upgrade your plan at "
    "https://polygon.io/pricing",
}
ENTITLED = {
    "status": "NOT_AUTHORIZED",
    "request_id": "69ee041d94e67ebaffc03ac5c64cfcb8",
    "message": "You are not entitled to this data. Please upgrade your plan at "
    "https://polygon.io/pricing",
}
TOO_MANY = {
    "status": "ERROR",
    "request_id": "x",
    "error": "You've exceeded the maximum requests per minute, please wait or upgrade your "
    "subscription to continue. https://polygon.io/pricing",
}


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, UNKNOWN_KEY, INVALID_KEY),
        (401, NO_KEY, INVALID_KEY),
        (400, NO_KEY, INVALID_KEY),  # polygon-io/issues#219 reports it with HTTP 400
        (401, "<html>Unauthorized</html>", INVALID_KEY),
        (403, TIMEFRAME, BEYOND_PLAN),
        (403, ENTITLED, NOT_ENTITLED),
        (403, "<html>Forbidden</html>", NOT_ENTITLED),
        (429, TOO_MANY, THROTTLED),
        (429, "", THROTTLED),
        (500, {"status": "ERROR", "error": "Internal"}, SERVER_ERROR),
        (502, "<html>502 Bad Gateway</html>", SERVER_ERROR),
        (404, {"status": "NOT_FOUND", "message": "Not found"}, REFUSED),
        (200, "<html>captive portal</html>", GARBLED),
        (200, json.dumps(CLIENT_GROUPED)[:80], GARBLED),
        (200, "", GARBLED),
        (200, '{"status": "OK", "results": [NaN]}', GARBLED),
        (200, "[1, 2]", GARBLED),
        (200, {"status": "ERROR", "error": "Something new"}, GARBLED),
        (200, {"status": "OK", "results": {"T": "A"}}, GARBLED),
        (200, {"status": "OK", "resultsCount": 3, "adjusted": False}, GARBLED),
        (200, {"results": []}, GARBLED),
    ],
)
def test_every_reply_is_classified(status, body, kind):
    text = body if isinstance(body, str) else json.dumps(body)
    answer = classify(status, text, "grouped")
    assert answer.kind == kind, answer
    if kind in (INVALID_KEY, BEYOND_PLAN, NOT_ENTITLED, THROTTLED) and isinstance(body, dict):
        assert answer.message == body.get("error") or answer.message == body.get("message")


def test_reference_answers_need_a_results_array_but_no_adjusted_flag():
    ok = classify(200, json.dumps({"status": "OK", "results": CLIENT_SPLITS}), "splits")
    assert ok.kind == OK and ok.data["results"] == CLIENT_SPLITS
    bad = classify(200, json.dumps({"status": "OK", "results": "x"}), "dividends")
    assert bad.kind == GARBLED


@pytest.mark.parametrize("ticker", ["AAPL", "BRK.B", "KIMpL", "BF.B", "Z"])
def test_real_tickers_are_symbols(ticker):
    assert ticker_problem(ticker) is None


def test_rejected_rows_are_text_as_received():
    parsed = parse_grouped(grouped(row("\x00BIN", o=1.5, v=12)), GIK_DAY)
    record = parsed.rejected.iloc[0]
    assert record["symbol"] == "\x00BIN" and record["volume"] == "12"
    assert isinstance(parsed.rejected, pd.DataFrame)
