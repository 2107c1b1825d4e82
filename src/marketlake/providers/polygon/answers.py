"""What a Polygon answer is: data, which refusal, or garbage, from its HTTP status and body.

Polygon says what went wrong with the HTTP status and a JSON body (wordings as its API
answers them, checked against public client code and issue threads; see
tests/integration/test_polygon_http.py):

- 401 ``{"status":"ERROR","request_id":"...","error":"Unknown API Key"}`` (or "API Key was
  not provided"; one thread reports that one with HTTP 400, so the wording counts too);
- 403 ``{"status":"NOT_AUTHORIZED","request_id":"...","message":"Your plan doesn't include
  this data timeframe. Please upgrade your plan at https://polygon.io/pricing"}`` for dates
  before the plan's history, "You are not entitled to this data..." for an endpoint the
  plan lacks;
- 429 ``{"status":"ERROR","request_id":"...","error":"You've exceeded the maximum requests
  per minute, please wait or upgrade your subscription to continue..."}`` (or no body);
- 200 ``{"status":"OK", ..., "results":[...]}``; a day with nothing answers resultsCount 0
  and may leave ``results`` out.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final, Literal

# What was asked: each has its own data shape.
GROUPED: Final = "grouped"
AGGS: Final = "aggs"
SPLITS: Final = "splits"
DIVIDENDS: Final = "dividends"
FINANCIALS: Final = "financials"
Endpoint = Literal["grouped", "aggs", "splits", "dividends", "financials"]

AnswerKind = Literal[
    "ok",
    "throttled",
    "invalid-key",
    "beyond-plan",
    "not-entitled",
    "server-error",
    "refused",
    "garbled",
]
OK: Final = "ok"
THROTTLED: Final = "throttled"
INVALID_KEY: Final = "invalid-key"
BEYOND_PLAN: Final = "beyond-plan"
NOT_ENTITLED: Final = "not-entitled"
SERVER_ERROR: Final = "server-error"
REFUSED: Final = "refused"  # another 4xx: final, not retried (another attempt gets the same)
GARBLED: Final = "garbled"

# "DELAYED": what Polygon says of data a plan sees late; a closed session's bars are whole.
DATA_STATUSES = ("OK", "DELAYED")

# Markers, lower case, matched in the vendor's message.
_KEY_MARKERS = ("unknown api key", "api key was not provided", "invalid api key")
_HISTORY_MARKERS = ("data timeframe", "timeframe")
_THROTTLE_MARKERS = ("maximum requests per", "exceeded the maximum", "too many requests")


@dataclasses.dataclass(frozen=True)
class Answer:
    """``message``: the vendor's own words for refusals (unredacted: ``classify`` does not
    know the key) or our reason for ``garbled``; ``data``: the decoded JSON object of an
    ``ok`` answer."""

    kind: AnswerKind
    message: str = ""
    data: Any = None


def _no_constants(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def _decode(text: str) -> Any:
    """The JSON value of a body; ``ValueError`` with a short reason if it is none."""
    body = text.lstrip("\ufeff \t\r\n")
    if not body:
        raise ValueError("empty body")
    if body[0] == "<":
        raise ValueError("an HTML/XML page instead of JSON")
    # NaN and Infinity are not JSON; deeply nested input overflows the decoder: garbage.
    try:
        return json.loads(body, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"truncated or malformed JSON ({type(exc).__name__})") from None


def _message(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    for key in ("error", "message"):
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return ""


def _has(message: str, markers: tuple[str, ...]) -> bool:
    low = message.lower()
    return any(m in low for m in markers)


def _refusal(status: int, obj: Any) -> Answer | None:
    """The refusal a status and body say, or None when they say none."""
    message = _message(obj)
    vendor_status = obj.get("status") if isinstance(obj, dict) else None
    if status == 401 or _has(message, _KEY_MARKERS):
        return Answer(INVALID_KEY, message or f"HTTP {status}")
    if status == 429 or _has(message, _THROTTLE_MARKERS):
        return Answer(THROTTLED, message or "HTTP 429")
    if status == 403 or vendor_status == "NOT_AUTHORIZED":
        if _has(message, _HISTORY_MARKERS):
            return Answer(BEYOND_PLAN, message)
        return Answer(NOT_ENTITLED, message or f"HTTP {status}")
    if 500 <= status <= 599:
        return Answer(SERVER_ERROR, f"HTTP {status}")
    if status >= 400:
        return Answer(REFUSED, f"HTTP {status}" + (f": {message}" if message else ""))
    if vendor_status == "ERROR":
        # An error in a 200: unknown wording, so another attempt may do better.
        return Answer(GARBLED, f"Polygon says ERROR: {message or 'no message'}")
    return None


def _shape_problem(endpoint: Endpoint, obj: dict) -> str | None:
    """Why an OK body is not the data shape of `endpoint`, or None."""
    if obj.get("status") not in DATA_STATUSES:
        return f"status {str(obj.get('status'))[:40]!r} is not OK"
    results = obj.get("results")
    if results is None:
        # A day with nothing: resultsCount 0 and no results. A count without the rows is
        # a cut answer.
        count = obj.get("resultsCount", obj.get("count", 0))
        if endpoint in (GROUPED, AGGS) and count not in (0, None):
            return f"resultsCount is {str(count)[:20]} but there are no results"
        return None
    if not isinstance(results, list):
        return "'results' is not a JSON array"
    if endpoint in (GROUPED, AGGS) and obj.get("adjusted") is True:
        # The lake keeps prices as traded; adjusted ones would be wrong for every row.
        return "the answer is split-adjusted (adjusted=true); the lake asks adjusted=false"
    next_url = obj.get("next_url")
    if next_url is not None and not isinstance(next_url, str):
        return "'next_url' is not text"
    return None


def classify(status: int, text: str, endpoint: Endpoint) -> Answer:
    """The answer class of a reply to `endpoint`. Never raises: anything unrecognised is
    ``garbled`` (retried, then quarantined)."""
    try:
        obj: Any = _decode(text)
    except ValueError as exc:
        obj, reason = None, str(exc)
    else:
        reason = ""
    refusal = _refusal(status, obj)
    if refusal is not None:
        return refusal
    if obj is None:
        return Answer(GARBLED, reason)
    if not isinstance(obj, dict):
        return Answer(GARBLED, "JSON body is not an object")
    problem = _shape_problem(endpoint, obj)
    if problem is not None:
        return Answer(GARBLED, problem)
    return Answer(OK, data=obj)
