"""Parsing, classification and redaction of Alpha Vantage bodies (no network).

The refusal wordings below are Alpha Vantage's own, as quoted in public issue threads
and client fixtures: the 5-a-minute "Note" (finance-quote/finance-quote#104,
RomelTorres/alpha_vantage#211), "Invalid API call" (RomelTorres/alpha_vantage#289),
"the parameter apikey is invalid or missing" and the demo-key "Information", the
25-a-day "We have detected your API key as ..." and 1-a-second "spreading out"
"Information" messages, and the premium-endpoint / outputsize=full wordings.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketlake.providers.alphavantage import (
    CSV_HEADER,
    DAILY_LIMIT,
    GARBLED,
    INVALID_KEY,
    INVALID_SYMBOL,
    JSON_FIELDS,
    OK_CSV,
    OK_JSON,
    PREMIUM_ONLY,
    REJECTED_COLUMNS,
    SERIES_KEY,
    THROTTLED,
    AlphaVantageError,
    ParsedBars,
    PayloadError,
    classify,
    parse_csv,
    parse_json,
    redact,
)
from marketlake.providers.base import BAR_COLUMNS

KINDS = {OK_JSON, OK_CSV, THROTTLED, DAILY_LIMIT, INVALID_KEY, PREMIUM_ONLY}
KINDS |= {INVALID_SYMBOL, GARBLED}

JSON_BODY = """{
    "Meta Data": {
        "1. Information": "Daily Prices (open, high, low, close) and Volumes",
        "2. Symbol": "IBM",
        "3. Last Refreshed": "2024-01-04",
        "4. Output Size": "Compact",
        "5. Time Zone": "US/Eastern"
    },
    "Time Series (Daily)": {
        "2024-01-04": {
            "1. open": "162.8300",
            "2. high": "163.2900",
            "3. low": "161.5100",
            "4. close": "161.9100",
            "5. volume": "3912305"
        },
        "2024-01-03": {
            "1. open": "161.0000",
            "2. high": "161.7300",
            "3. low": "160.0800",
            "4. close": "160.1000",
            "5. volume": "4086854"
        },
        "2024-01-02": {
            "1. open": "162.2000",
            "2. high": "162.9850",
            "3. low": "159.4500",
            "4. close": "161.5000",
            "5. volume": "4181409"
        }
    }
}"""
CSV_BODY = (
    "timestamp,open,high,low,close,volume\r\n"
    "2024-01-04,162.8300,163.2900,161.5100,161.9100,3912305\r\n"
    "2024-01-03,161.0000,161.7300,160.0800,160.1000,4086854\r\n"
    "2024-01-02,162.2000,162.9850,159.4500,161.5000,4181409\r\n"
)
EXPECTED = [
    (dt.date(2024, 1, 2), 162.2, 162.985, 159.45, 161.5, 4181409),
    (dt.date(2024, 1, 3), 161.0, 161.73, 160.08, 160.1, 4086854),
    (dt.date(2024, 1, 4), 162.83, 163.29, 161.51, 161.91, 3912305),
]


def rows(parsed: ParsedBars) -> list[tuple]:
    return [tuple(r) for r in parsed.bars.itertuples(index=False)]


def assert_contract(parsed: ParsedBars) -> None:
    bars, rejected = parsed.bars, parsed.rejected
    assert list(bars.columns) == BAR_COLUMNS
    assert bars["trade_date"].dtype == object
    assert [str(bars[c].dtype) for c in BAR_COLUMNS[1:]] == ["float64"] * 4 + ["int64"]
    dates = list(bars["trade_date"])
    assert all(type(d) is dt.date for d in dates)
    assert dates == sorted(set(dates))  # oldest first, unique
    for column in BAR_COLUMNS[1:5]:
        assert all(math.isfinite(v) for v in bars[column])
    assert list(rejected.columns) == REJECTED_COLUMNS
    assert all(isinstance(v, str) for column in rejected for v in rejected[column])
    assert all(rejected["reason"].str.len() > 0)


# -- well-formed payloads ------------------------------------------------------------


@pytest.mark.parametrize("parse,body", [(parse_json, JSON_BODY), (parse_csv, CSV_BODY)])
def test_real_payload_parses_oldest_first(parse, body):
    parsed = parse(body)
    assert_contract(parsed)
    assert rows(parsed) == EXPECTED
    assert parsed.rejected.empty


def test_csv_accepts_lf_line_ends_a_bom_and_blank_lines():
    body = "\ufeff" + CSV_BODY.replace("\r\n", "\n") + "\n\n"
    assert rows(parse_csv(body)) == EXPECTED


def test_header_only_and_empty_series_are_valid_and_empty():
    assert parse_csv("timestamp,open,high,low,close,volume\r\n").bars.empty
    parsed = parse_json('{"Meta Data": {}, "Time Series (Daily)": {}}')
    assert parsed.bars.empty and parsed.rejected.empty
    assert_contract(parsed)


def test_impossible_bars_are_returned_as_received():
    # Validation (ingest.validate) judges them; the parser must not drop them.
    body = CSV_HEADER_LINE + "2024-01-02,-1,0.5,2,0,-7\r\n2024-01-03,0,0,0,0,0\r\n"
    parsed = parse_csv(body)
    assert rows(parsed) == [
        (dt.date(2024, 1, 2), -1.0, 0.5, 2.0, 0.0, -7),
        (dt.date(2024, 1, 3), 0.0, 0.0, 0.0, 0.0, 0),
    ]


CSV_HEADER_LINE = ",".join(CSV_HEADER) + "\r\n"


# -- rows that cannot be parsed --------------------------------------------------------


@pytest.mark.parametrize(
    "line,reason",
    [
        ("2024-02-30,1,2,0.5,1.5,10", "not a calendar date"),
        ("02/01/2024,1,2,0.5,1.5,10", "not YYYY-MM-DD"),
        ("٢٠٢٤-٠١-٠٥,1,2,0.5,1.5,10", "not YYYY-MM-DD"),  # non-ASCII digits
        ("2024-01-05,abc,2,0.5,1.5,10", "open"),
        ("2024-01-05,1,NaN,0.5,1.5,10", "high"),
        ("2024-01-05,1,2,inf,1.5,10", "low"),
        ("2024-01-05,1,2,0.5,1e999,10", "not finite"),
        ("2024-01-05,1,2,0.5,1_5,10", "close"),
        ("2024-01-05,1,2,0.5,1.5,10.5", "not a whole number"),
        ("2024-01-05,1,2,0.5,1.5,99999999999999999999", "64 bits"),
        ("2024-01-05,1,2,0.5,1.5,", "volume"),
        ("2024-01-05,1,2,0.5,1.5", "expected 6 fields, found 5"),
        ("2024-01-05,1,2,0.5,1.5,10,extra", "expected 6 fields, found 7"),
        ("2024-01-04,1,2,0.5,1.5,10", "duplicate trade_date 2024-01-04"),
    ],
)
def test_unparseable_csv_row_is_rejected_not_fatal(line, reason):
    parsed = parse_csv(CSV_BODY + line + "\r\n")
    assert_contract(parsed)
    assert rows(parsed) == EXPECTED  # the first 2024-01-04 row wins over a duplicate
    assert len(parsed.rejected) == 1
    rejected = parsed.rejected.iloc[0]
    assert reason in rejected["reason"]
    assert rejected["trade_date"] == line.split(",")[0]


def test_rejected_row_keeps_the_values_as_received():
    parsed = parse_csv(CSV_HEADER_LINE + "2024-01-05, 1.5 ,2,x,1.5,10\r\n")
    assert parsed.rejected.iloc[0][BAR_COLUMNS].tolist() == [
        "2024-01-05",
        " 1.5 ",
        "2",
        "x",
        "1.5",
        "10",
    ]


@pytest.mark.parametrize(
    "entry,reason",
    [
        ({"1. open": "1", "2. high": "2", "3. low": "0.5", "4. close": "1"}, "missing 5. volume"),
        ("162.83", "not a JSON object"),
        ({**dict.fromkeys(JSON_FIELDS, "1"), "2. high": None}, "high"),
        ({**dict.fromkeys(JSON_FIELDS, "1"), "3. low": True}, "boolean"),
        ({**dict.fromkeys(JSON_FIELDS, "1"), "4. close": [1]}, "close"),
    ],
)
def test_unparseable_json_entry_is_rejected_not_fatal(entry, reason):
    obj = json.loads(JSON_BODY)
    obj[SERIES_KEY]["2024-01-05"] = entry
    parsed = parse_json(json.dumps(obj))
    assert rows(parsed) == EXPECTED
    assert len(parsed.rejected) == 1 and reason in parsed.rejected.iloc[0]["reason"]
    assert_contract(parsed)


def test_json_numbers_are_accepted_as_values():
    obj = {SERIES_KEY: {"2024-01-02": dict(zip(JSON_FIELDS, [1, 2.5, 0.5, 2, 1000]))}}
    assert rows(parse_json(json.dumps(obj))) == [(dt.date(2024, 1, 2), 1.0, 2.5, 0.5, 2.0, 1000)]


def test_json_duplicate_dates_keep_the_first_and_reject_the_rest():
    body = (
        '{"Time Series (Daily)": {'
        '"2024-01-02": {"1. open": "1", "2. high": "2", "3. low": "0.5", "4. close": "1",'
        ' "5. volume": "10"},'
        '"2024-01-02": {"1. open": "9", "2. high": "9", "3. low": "9", "4. close": "9",'
        ' "5. volume": "90"}}}'
    )
    parsed = parse_json(body)
    assert rows(parsed) == [(dt.date(2024, 1, 2), 1.0, 2.0, 0.5, 1.0, 10)]
    assert parsed.rejected.iloc[0]["open"] == "9"
    assert "duplicate" in parsed.rejected.iloc[0]["reason"]


# -- bodies that are not payloads ----------------------------------------------------

NOT_PAYLOADS = {
    "html": "<html><head><title>502 Bad Gateway</title></head></html>",
    "empty-object": "{}",
    "empty": "",
    "truncated-json": JSON_BODY[:200],
    "json-list": "[1, 2]",
    "json-nan": '{"Time Series (Daily)": {"2024-01-02": {"1. open": NaN}}}',
    "series-not-object": '{"Time Series (Daily)": []}',
    "no-series": '{"Meta Data": {"2. Symbol": "IBM"}}',
    "deeply-nested": "[" * 100_000 + "]" * 100_000,
    "wrong-csv-header": "date,open,high,low,close,volume\r\n2024-01-02,1,2,0.5,1.5,10\r\n",
    "nul-in-csv": CSV_BODY + "2024-01-05,1,2,0.5,1.5,1\x000\r\n",
}


@pytest.mark.parametrize("name", list(NOT_PAYLOADS))
def test_non_payload_raises_payload_error_with_the_payload(name):
    body = NOT_PAYLOADS[name]
    parse = parse_csv if "csv" in name else parse_json
    with pytest.raises(PayloadError) as info:
        parse(body)
    assert info.value.payload == body
    assert info.value.reason and "\n" not in str(info.value)
    assert classify(body).kind == GARBLED


def test_parsers_refuse_the_other_format_and_refusals():
    with pytest.raises(PayloadError, match="CSV header"):
        parse_csv(JSON_BODY)
    with pytest.raises(PayloadError, match="no 'Time Series"):
        parse_json('{"Note": "Thank you for using Alpha Vantage!"}')
    with pytest.raises(PayloadError, match="malformed JSON"):
        parse_json(CSV_BODY)


# -- classification ------------------------------------------------------------------

REFUSALS = [
    (
        "Note",
        "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per "
        "minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if "
        "you would like to target a higher API call frequency.",
        THROTTLED,
    ),
    (
        "Information",
        "Thank you for using Alpha Vantage! Please consider spreading out your free API "
        "requests more sparingly (1 request per second). You may subscribe to any of the "
        "premium plans at https://www.alphavantage.co/premium/ to lift the free key rate "
        "limit (25 requests per day), raise the per-second burst limit, and instantly unlock "
        "all premium endpoints",
        THROTTLED,
    ),
    (
        "Information",
        "Thank you for using Alpha Vantage! Please visit https://www.alphavantage.co/premium/ "
        "if you would like to have a higher API call volume.",
        THROTTLED,
    ),
    (
        "Information",
        "Burst pattern detected. Please consider spreading out your API requests more evenly "
        "across a 1-minute window and query no more than 30 requests per second.",
        THROTTLED,
    ),
    (
        "Information",
        "We have detected your API key as ABCD1234EFGH5678 and our standard API rate limit is "
        "25 requests per day. Please subscribe to any of the premium plans at "
        "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits.",
        DAILY_LIMIT,
    ),
    (
        "Information",
        "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per "
        "day. Please subscribe to any of the premium plans at "
        "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits.",
        DAILY_LIMIT,
    ),
    (
        "Error Message",
        "the parameter apikey is invalid or missing. Please claim your free API key on "
        "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds.",
        INVALID_KEY,
    ),
    (
        "Information",
        "The **demo** API key is for demo purposes only. Please claim your free API key at "
        "(https://www.alphavantage.co/support/#api-key) to explore our full API offerings. "
        "It takes fewer than 20 seconds.",
        INVALID_KEY,
    ),
    (
        "Information",
        "Thank you for using Alpha Vantage! The outputsize=full parameter value is a premium "
        "feature for the TIME_SERIES_DAILY endpoint. You may subscribe to any of the premium "
        "plans at https://www.alphavantage.co/premium/ to instantly unlock all premium "
        "features",
        PREMIUM_ONLY,
    ),
    (
        "Information",
        "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to "
        "any of the premium plans at https://www.alphavantage.co/premium/ to instantly unlock "
        "all premium endpoints",
        PREMIUM_ONLY,
    ),
    (
        "Error Message",
        "Invalid API call. Please retry or visit the documentation "
        "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY.",
        INVALID_SYMBOL,
    ),
]


@pytest.mark.parametrize(
    "key,message,kind", REFUSALS, ids=[f"{k}-{i}" for i, (_, _, k) in enumerate(REFUSALS)]
)
def test_real_refusals_are_classified(key, message, kind):
    answer = classify(json.dumps({key: message}, indent=4))
    assert answer.kind == kind
    assert answer.message == message


def test_payloads_are_classified_ok():
    assert classify(JSON_BODY).kind == OK_JSON
    assert classify(JSON_BODY).data[SERIES_KEY]["2024-01-02"]["5. volume"] == "4181409"
    assert classify(CSV_BODY).kind == OK_CSV
    assert classify("\ufeff" + CSV_BODY).kind == OK_CSV


def test_unknown_information_is_garbled_and_unknown_note_is_throttled():
    assert classify('{"Information": "Something new."}').kind == GARBLED
    assert "Something new." in classify('{"Information": "Something new."}').message
    assert classify('{"Note": "Something new."}').kind == THROTTLED
    assert classify('{"Error Message": "Something new."}').kind == INVALID_SYMBOL


# -- redaction -----------------------------------------------------------------------

KEY = "ABCD1234EFGH5678"


@pytest.mark.parametrize(
    "text,expected",
    [
        (f"detected your API key as {KEY} and", "detected your API key as *** and"),
        (f"key {KEY.lower()}!", "key ***!"),
        (
            "https://x/query?symbol=IBM&apikey=OTHERKEY&x=1",
            "https://x/query?symbol=IBM&apikey=***&x=1",
        ),
        ("api_key=zzz apikey=", "api_key=*** apikey=***"),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_redact(text, expected):
    assert redact(text, KEY) == expected


def test_redact_handles_url_encoded_and_odd_keys():
    key = "a+b/c=d"
    assert redact("k=a%2Bb%2Fc%3Dd and a+b/c=d", key) == "k=*** and ***"
    assert redact("****", "**") == ""  # a key that re-forms around the mask is dropped
    assert redact("", KEY) == "" and redact(None, KEY) == ""
    assert redact(f"{KEY}", None) == KEY  # no key given: only apikey= values go


# -- properties ----------------------------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_outcome(parse, text: str):
    try:
        parsed = parse(text)
    except AlphaVantageError:  # PayloadError is the only one the parsers raise
        return None
    assert_contract(parsed)
    return parsed


@PROPERTY
@given(st.text())
def test_any_text_never_crashes_the_parsers_or_classify(text):
    check_outcome(parse_json, text)
    check_outcome(parse_csv, text)
    assert classify(text).kind in KINDS


JSONISH = st.one_of(
    st.text(alphabet='{}[]":,0123456789.-eE TimeSris(Dly)naopcvu\r\n', max_size=80),
    st.text(max_size=40).map(lambda t: CSV_HEADER_LINE + t),
    st.text(max_size=40).map(lambda t: '{"Time Series (Daily)": {' + t),
)


@PROPERTY
@given(JSONISH)
def test_near_payload_text_never_crashes(text):
    check_outcome(parse_json, text)
    check_outcome(parse_csv, text)
    assert classify(text).kind in KINDS


DATES = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 1, 1))
ANY_VALUE = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"\A-?[0-9]{1,6}(\.[0-9]{0,4})?\Z"),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
ANY_DATE_KEY = st.one_of(DATES.map(dt.date.isoformat), st.text(max_size=12))
ENTRY = st.one_of(
    st.dictionaries(st.sampled_from(JSON_FIELDS), ANY_VALUE, max_size=5),
    st.fixed_dictionaries({f: ANY_VALUE for f in JSON_FIELDS}),
    ANY_VALUE,
)


@PROPERTY
@given(st.dictionaries(ANY_DATE_KEY, ENTRY, max_size=15))
def test_structured_json_with_arbitrary_values_accounts_for_every_row(series):
    body = json.dumps({"Meta Data": {"2. Symbol": "X"}, SERIES_KEY: series})
    parsed = check_outcome(parse_json, body)
    assert parsed is not None
    assert len(parsed.bars) + len(parsed.rejected) == len(series)
    assert classify(body).kind == OK_JSON


FIELD = st.one_of(
    st.text(st.characters(blacklist_characters="\x00"), max_size=10),
    st.from_regex(r"\A-?[0-9]{1,6}(\.[0-9]{0,4})?\Z"),
    DATES.map(dt.date.isoformat),
)


def to_csv(header: list[str], records: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(records)
    return out.getvalue()


@PROPERTY
@given(st.lists(st.lists(FIELD, min_size=0, max_size=8), max_size=15))
def test_structured_csv_with_arbitrary_values_accounts_for_every_row(records):
    body = to_csv(list(CSV_HEADER), records)
    parsed = check_outcome(parse_csv, body)
    assert parsed is not None
    # csv.reader splits on bare \r too, so count what a reader sees, not what was written.
    seen = list(csv.reader(io.StringIO(body, newline="")))[1:]
    assert len(parsed.bars) + len(parsed.rejected) == sum(any(f.strip() for f in r) for r in seen)


GOOD_ROW = st.tuples(
    st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False),
    st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False),
    st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False),
    st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)


@PROPERTY
@given(st.dictionaries(DATES, GOOD_ROW, max_size=20), st.booleans())
def test_every_well_formed_row_is_returned_exactly(table, as_csv):
    # No false rejections, whatever the values (negative and inverted bars included).
    newest_first = sorted(table.items(), reverse=True)
    if as_csv:
        body = to_csv(list(CSV_HEADER), [[d.isoformat(), *map(str, v)] for d, v in newest_first])
        parsed = parse_csv(body)
    else:
        series = {d.isoformat(): dict(zip(JSON_FIELDS, map(str, v))) for d, v in newest_first}
        parsed = parse_json(json.dumps({SERIES_KEY: series}))
    assert parsed.rejected.empty
    expected = [(d, *(float(x) for x in v[:4]), v[4]) for d, v in sorted(table.items())]
    assert rows(parsed) == expected


@PROPERTY
@given(st.text(), st.text(min_size=1, max_size=20), st.text())
def test_redact_never_leaves_the_key(before, key, after):
    text = f"{before}{key}{after} apikey={key}&{key.upper()}"
    out = redact(text, key)
    assert re.search(re.escape(key), out, re.IGNORECASE) is None
