"""What an Alpha Vantage body is: data, or which refusal (throttled, daily limit, bad key,
premium only, unknown symbol or function), or garbage.

Alpha Vantage answers HTTP 200 even when it refuses, and it sends refusals as JSON even when
``datatype=csv`` was asked for. So every body goes through ``classify`` first, and only a
recognised data payload reaches the parsers.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final, Literal

from marketlake.providers.alphavantage.errors import PayloadError

FUNCTION = "TIME_SERIES_DAILY"
SERIES_KEY = "Time Series (Daily)"
CSV_HEADER = ("timestamp", "open", "high", "low", "close", "volume")

# Answer classes.
AnswerKind = Literal[
    "ok-json",
    "ok-csv",
    "throttled",
    "daily-limit",
    "invalid-key",
    "premium-only",
    "invalid-symbol",
    "unknown-function",
    "garbled",
]
OK_JSON: Final = "ok-json"
OK_CSV: Final = "ok-csv"
THROTTLED: Final = "throttled"
DAILY_LIMIT: Final = "daily-limit"
INVALID_KEY: Final = "invalid-key"
PREMIUM_ONLY: Final = "premium-only"
INVALID_SYMBOL: Final = "invalid-symbol"
UNKNOWN_FUNCTION: Final = "unknown-function"
GARBLED: Final = "garbled"

# The corporate-action functions: {"symbol": ..., "data": [{...}, ...]}, every value a string
# (Alpha Vantage's documentation of SPLITS and DIVIDENDS; a dividend also carries
# declaration_date, record_date and payment_date, "None" when unknown).
ACTION_FIELDS = {
    "SPLITS": ("effective_date", "split_factor"),
    "DIVIDENDS": ("ex_dividend_date", "amount"),
}

# EARNINGS: {"symbol", "annualEarnings": [...], "quarterlyEarnings": [{"fiscalDateEnding",
# "reportedDate", "reportedEPS", "estimatedEPS", ...}]}, every value a string ("None" when
# unknown). Only the quarters are read; `{}` is its answer for a symbol without earnings.
EARNINGS_FUNCTION = "EARNINGS"
EARNINGS_KEY = "quarterlyEarnings"
EARNINGS_FIELDS = ("fiscalDateEnding", "reportedDate", "reportedEPS")

# Markers, lower case, matched in this order. Alpha Vantage's wording drifts, so they
# are phrases rather than whole sentences. The order matters: the burst message also
# says "(25 requests per day)" and "unlock all premium endpoints", and the daily
# message speaks of "premium plans", so throttling is tested before the daily limit
# and both before premium.
_KEY_MARKERS = (
    "apikey is invalid",
    "api key is invalid",
    "invalid api key",
    "make sure your api key is valid",
    "demo purposes",
    "claim your free api key",
)
_THROTTLE_MARKERS = (
    "spreading out",
    "spread out",
    "sparingly",
    "burst",
    "per second",
    "per minute",
    "minute-level",
    "call frequency",
    "higher api call volume",
)
_DAILY_MARKERS = ("per day", "daily rate limit", "daily limit", "daily request limit")
_PREMIUM_MARKERS = ("premium endpoint", "premium feature", "outputsize=full")
# "This API function (XYZ) does not exist.": a function this key's API does not offer.
_UNKNOWN_FUNCTION_MARKERS = ("does not exist", "unknown function", "invalid function")


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a body is. ``message`` is Alpha Vantage's own text for refusals (unredacted:
    ``classify`` does not know the key) or our reason for ``garbled``; ``data`` is the
    decoded JSON object of an ok-json answer, so it is decoded only once."""

    kind: AnswerKind
    message: str = ""
    data: Any = None


class _Pairs(dict):
    """A JSON object that remembers its key/value pairs in order, duplicates included."""

    pairs: list[tuple[str, Any]]


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    obj = _Pairs(pairs)
    obj.pairs = pairs
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def _loads(text: str) -> Any:
    # Deeply nested input overflows the decoder's recursion: that is garbage too.
    try:
        return json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"truncated or malformed JSON ({type(exc).__name__})", text) from None


def _strip_body(text: str) -> str:
    return text.lstrip("\ufeff \t\r\n")


def _classify_message(key: str, message: str) -> AnswerKind:
    low = " ".join(message.lower().split())
    if any(m in low for m in _KEY_MARKERS):
        return INVALID_KEY
    if any(m in low for m in _THROTTLE_MARKERS):
        return THROTTLED
    if any(m in low for m in _DAILY_MARKERS):
        return DAILY_LIMIT
    if any(m in low for m in _PREMIUM_MARKERS):
        return PREMIUM_ONLY
    if any(m in low for m in _UNKNOWN_FUNCTION_MARKERS):
        return UNKNOWN_FUNCTION
    if key == "Error Message":
        return INVALID_SYMBOL
    if key == "Note":  # every "Note" Alpha Vantage has sent was about call frequency
        return THROTTLED
    return GARBLED


def classify(text: str, function: str = FUNCTION) -> Answer:
    """The answer class of a body to `function`. Never raises: anything unrecognised is
    ``garbled``."""
    body = _strip_body(text)
    if not body:
        return Answer(GARBLED, "empty body")
    if body[0] in "{[":
        try:
            obj = _loads(body)
        except PayloadError as exc:
            return Answer(GARBLED, exc.reason)
        if not isinstance(obj, dict):
            return Answer(GARBLED, "JSON body is not an object")
        if not obj:
            if function == EARNINGS_FUNCTION:  # a symbol without earnings (a fund, an ETF)
                return Answer(OK_JSON, data=obj)
            return Answer(GARBLED, "empty JSON object {}")
        if function == EARNINGS_FUNCTION:
            shape = _earnings_shape(obj.get(EARNINGS_KEY))
            if shape == "":
                return Answer(OK_JSON, data=obj)
            if shape is not None:
                return Answer(GARBLED, shape)
        if function in ACTION_FIELDS:
            if isinstance(obj.get("data"), list):
                return Answer(OK_JSON, data=obj)
            if obj.get("data") is not None:
                return Answer(GARBLED, "'data' is not a JSON array")
        series = obj.get(SERIES_KEY)
        if function == FUNCTION and isinstance(series, dict):
            return Answer(OK_JSON, data=obj)
        if function == FUNCTION and series is not None:
            return Answer(GARBLED, f"{SERIES_KEY!r} is not a JSON object")
        for key in ("Error Message", "Information", "Note"):
            message = obj.get(key)
            if isinstance(message, str):
                kind = _classify_message(key, message)
                if kind == GARBLED:
                    return Answer(GARBLED, f"unrecognised Alpha Vantage message: {message}")
                return Answer(kind, message)
        expected = {FUNCTION: repr(SERIES_KEY), EARNINGS_FUNCTION: repr(EARNINGS_KEY)}.get(
            function, "'data'"
        )
        return Answer(GARBLED, f"JSON without {expected} or a known message")
    if function != FUNCTION:
        return Answer(GARBLED, "not the JSON object asked for")
    if _csv_header_ok(body.split("\n", 1)[0]):
        return Answer(GARBLED, "NUL byte in CSV body") if "\x00" in body else Answer(OK_CSV)
    if body[:1] == "<":
        return Answer(GARBLED, "an HTML/XML page instead of data")
    return Answer(GARBLED, "neither JSON nor the expected CSV")


def _csv_header_ok(line: str) -> bool:
    return tuple(f.strip().lower() for f in line.strip().split(",")) == CSV_HEADER


def _earnings_shape(quarters: Any) -> str | None:
    """Why an EARNINGS answer's quarters are unusable ("" when they are a list of objects;
    None when absent: the body may still be a refusal)."""
    if quarters is None:
        return None
    if not isinstance(quarters, list):
        return f"{EARNINGS_KEY!r} is not a JSON array"
    for position, entry in enumerate(quarters):
        if not isinstance(entry, dict):
            return f"{EARNINGS_KEY!r} entry {position} is not a JSON object"
    return ""
