"""Alpha Vantage ``TIME_SERIES_DAILY``: HTTP, answer classification, parsing, redaction.

Alpha Vantage answers HTTP 200 even when it refuses, and it sends refusals as JSON
even when ``datatype=csv`` was asked for. So every body goes through ``classify``
first, and only a recognised data payload reaches ``parse_json``/``parse_csv``.

What the provider does with each answer class (``classify(text).kind``):

=================  ==========================================================
ok-json, ok-csv    parse; rows that cannot be parsed go to ``rejected``
throttled          retry with exponential backoff; ``RateLimited`` when spent
daily-limit        ``DailyLimitReached`` at once (a ``QuotaExhausted``)
invalid-key        ``InvalidApiKey`` at once (fatal: the whole run stops)
premium-only       with ``outputsize=full``: fall back to compact (said once
                   per provider via ``on_event``); otherwise ``PremiumOnly``
invalid-symbol     ``InvalidSymbol`` at once (skip the symbol, go on)
garbled            retry; ``PayloadError`` (payload kept, redacted) when spent
=================  ==========================================================

Transport failures (connection refused or dropped, timeouts, HTTP 5xx and 429) are
retried the same bounded way and end in ``FetchFailed``. The API key never appears in
an exception, payload, event or log line: everything goes through ``redact`` first.

Python 3.9-compatible on purpose: AWS Glue and Lambda import this module.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import http.client
import io
import json
import logging
import math
import random
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any, Callable

import pandas as pd
import tenacity

from marketlake.errors import MarketlakeError
from marketlake.ingest.ratelimit import QuotaExhausted, RateLimiter
from marketlake.providers.base import BAR_COLUMNS, empty_bars

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.alphavantage.co/query"
FUNCTION = "TIME_SERIES_DAILY"
SERIES_KEY = "Time Series (Daily)"
JSON_FIELDS = ("1. open", "2. high", "3. low", "4. close", "5. volume")
CSV_HEADER = ("timestamp", "open", "high", "low", "close", "volume")
REJECTED_COLUMNS = [*BAR_COLUMNS, "reason"]
OUTPUTSIZES = ("compact", "full")
DATATYPES = ("json", "csv")
KEY_HELP = (
    "export ALPHAVANTAGE_API_KEY=<your key> (a free key takes a minute at "
    "https://www.alphavantage.co/support/#api-key)"
)

# Answer classes.
OK_JSON = "ok-json"
OK_CSV = "ok-csv"
THROTTLED = "throttled"
DAILY_LIMIT = "daily-limit"
INVALID_KEY = "invalid-key"
PREMIUM_ONLY = "premium-only"
INVALID_SYMBOL = "invalid-symbol"
UNKNOWN_FUNCTION = "unknown-function"
GARBLED = "garbled"

# The corporate-action functions: {"symbol": ..., "data": [{...}, ...]}, every value a string
# (Alpha Vantage's documentation of SPLITS and DIVIDENDS; a dividend also carries
# declaration_date, record_date and payment_date, "None" when unknown).
ACTION_FIELDS = {
    "SPLITS": ("effective_date", "split_factor"),
    "DIVIDENDS": ("ex_dividend_date", "amount"),
}

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

# ASCII only: \d would also accept Arabic-Indic and other Unicode digits.
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_WHOLE = re.compile(r"([+-]?)([0-9]+)(?:\.0*)?\Z")
_INT64_MAX = 2**63 - 1
_APIKEY_PARAM = re.compile(r"(?i)(api_?key=)[^&\s\"'<>#]*")
_EXCERPT = 160


# -- errors ---------------------------------------------------------------------------


class AlphaVantageError(MarketlakeError):
    """Base of every error this module raises."""


class PayloadError(AlphaVantageError):
    """The body is not a usable answer (HTML, ``{}``, truncated JSON, wrong CSV header...).

    ``payload`` is the body (redacted when raised by the provider), for quarantine.
    """

    def __init__(self, reason: str, payload: str = "", symbol: str | None = None) -> None:
        excerpt = _one_line(payload)[:_EXCERPT]
        super().__init__(f"{reason} (body starts: {excerpt!r})" if excerpt else reason)
        self.reason = reason
        self.payload = payload
        self.symbol = symbol


class FetchFailed(AlphaVantageError):
    """Alpha Vantage could not be reached or answered with an HTTP error."""


class RateLimited(AlphaVantageError):
    """Alpha Vantage kept throttling after every retry."""


class DailyLimitReached(QuotaExhausted, AlphaVantageError):
    """Alpha Vantage says the key's daily limit is reached; defer the remaining symbols."""


class InvalidApiKey(AlphaVantageError):
    """The key is missing or Alpha Vantage does not accept it (fatal for the run)."""


class PremiumOnly(AlphaVantageError):
    """The request needs a premium plan and has no free fallback."""


class UnknownFunction(AlphaVantageError):
    """Alpha Vantage does not offer the function asked for (or no longer does)."""


class InvalidSymbol(AlphaVantageError):
    """Alpha Vantage does not know the symbol ("Error Message": "Invalid API call...")."""

    def __init__(self, message: str, symbol: str) -> None:
        super().__init__(message)
        self.symbol = symbol


# -- redaction ------------------------------------------------------------------------


def redact(text: str | None, api_key: str | None) -> str:
    """``text`` without the key (any letter case, raw or URL-encoded) or any apikey= value."""
    if not text:
        return ""
    out = text
    if api_key:
        forms = {api_key, urllib.parse.quote(api_key, safe=""), urllib.parse.quote_plus(api_key)}
        for form in sorted(forms, key=len, reverse=True):
            out = re.sub(re.escape(form), "***", out, flags=re.IGNORECASE)
    out = _APIKEY_PARAM.sub(r"\1***", out)
    if api_key:
        # Only a key made of '*' or similar can re-form around a mask: drop it outright.
        pattern = re.compile(re.escape(api_key), re.IGNORECASE)
        while pattern.search(out):
            out = pattern.sub("", out)
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- classification -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a body is. ``message`` is Alpha Vantage's own text for refusals (unredacted:
    ``classify`` does not know the key) or our reason for ``garbled``; ``data`` is the
    decoded JSON object of an ok-json answer, so it is decoded only once."""

    kind: str
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


def _classify_message(key: str, message: str) -> str:
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
            return Answer(GARBLED, "empty JSON object {}")
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
        expected = repr(SERIES_KEY) if function == FUNCTION else "'data'"
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


# -- parsing --------------------------------------------------------------------------


@dataclasses.dataclass
class ParsedBars:
    """``bars``: the provider contract (``base.BAR_COLUMNS``, oldest first, unique dates).
    ``rejected``: rows that could not be parsed, every value a string as received, plus a
    ``reason`` column; same column names as ``BAR_COLUMNS``."""

    bars: pd.DataFrame
    rejected: pd.DataFrame


def empty_rejected() -> pd.DataFrame:
    """A ``rejected`` frame with no rows."""
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in REJECTED_COLUMNS})


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, allow_nan=True)
    return str(value)


def _parse_date(value: Any) -> dt.date:
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        raise ValueError(f"trade_date {_as_text(value)[:40]!r} is not YYYY-MM-DD")
    year, month, day = (int(p) for p in value.strip().split("-"))
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"trade_date {value.strip()!r} is not a calendar date") from None


def _parse_price(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} is a boolean")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and _DECIMAL.match(value.strip()):
        number = float(value.strip())
    else:
        raise ValueError(f"{name} {_as_text(value)[:40]!r} is not a decimal number")
    if not math.isfinite(number):
        raise ValueError(f"{name} {_as_text(value)[:40]!r} is not finite")
    return number


def _parse_volume(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("volume is a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        number = value
    else:
        match = _WHOLE.match(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"volume {_as_text(value)[:40]!r} is not a whole number")
        sign, digits = match.group(1), match.group(2).lstrip("0") or "0"
        # Length check first: int() refuses very long digit strings on Python 3.11+.
        if len(digits) > 19:
            raise ValueError(f"volume {value.strip()[:40]!r} does not fit in 64 bits")
        number = -int(digits) if sign == "-" else int(digits)
    if not -_INT64_MAX - 1 <= number <= _INT64_MAX:
        raise ValueError(f"volume {number} does not fit in 64 bits")
    return number


def _parse_row(
    date_value: Any, values: Sequence[Any]
) -> tuple[dt.date, float, float, float, float, int]:
    day = _parse_date(date_value)
    o, h, lo, c = (_parse_price(n, v) for n, v in zip(BAR_COLUMNS[1:5], values[:4]))
    return day, o, h, lo, c, _parse_volume(values[4])


class _Collector:
    """Good rows and rejected rows; a repeated trade_date keeps its first occurrence."""

    def __init__(self) -> None:
        self.good: dict[dt.date, tuple[dt.date, float, float, float, float, int]] = {}
        self.rejected: list[list[str]] = []

    def reject(self, date_value: Any, values: Sequence[Any], reason: str) -> None:
        texts = [_as_text(v) for v in values][:5]
        texts += [""] * (5 - len(texts))
        self.rejected.append([_as_text(date_value), *texts, reason])

    def add(self, date_value: Any, values: Sequence[Any]) -> None:
        try:
            row = _parse_row(date_value, values)
        except ValueError as exc:
            self.reject(date_value, values, str(exc))
            return
        if row[0] in self.good:
            self.reject(date_value, values, f"duplicate trade_date {row[0].isoformat()}")
            return
        self.good[row[0]] = row

    def result(self) -> ParsedBars:
        rows = [self.good[d] for d in sorted(self.good)]
        if rows:
            columns = list(zip(*rows))
            bars = pd.DataFrame(
                {
                    "trade_date": pd.Series(list(columns[0]), dtype=object),
                    "open": pd.Series(columns[1], dtype="float64"),
                    "high": pd.Series(columns[2], dtype="float64"),
                    "low": pd.Series(columns[3], dtype="float64"),
                    "close": pd.Series(columns[4], dtype="float64"),
                    "volume": pd.Series(columns[5], dtype="int64"),
                }
            )
        else:
            bars = empty_bars()
        rejected = pd.DataFrame(
            {
                name: pd.Series([r[i] for r in self.rejected], dtype=object)
                for i, name in enumerate(REJECTED_COLUMNS)
            }
        )
        return ParsedBars(bars=bars, rejected=rejected)


def _series_to_bars(series: Any) -> ParsedBars:
    items = series.pairs if isinstance(series, _Pairs) else list(series.items())
    collected = _Collector()
    for date_value, entry in items:
        if not isinstance(entry, dict):
            collected.reject(date_value, [entry], "entry is not a JSON object")
            continue
        missing = [f for f in JSON_FIELDS if f not in entry]
        values = [entry.get(f) for f in JSON_FIELDS]
        if missing:
            collected.reject(date_value, values, f"missing {', '.join(missing)}")
            continue
        collected.add(date_value, values)
    return collected.result()


def parse_json(text: str) -> ParsedBars:
    """Bars from a ``TIME_SERIES_DAILY`` JSON body; ``PayloadError`` if it is not one."""
    obj = _loads(_strip_body(text))
    if not isinstance(obj, dict):
        raise PayloadError("JSON body is not an object", text)
    series = obj.get(SERIES_KEY)
    if not isinstance(series, dict):
        raise PayloadError(f"JSON body has no {SERIES_KEY!r} object", text)
    return _series_to_bars(series)


def parse_csv(text: str) -> ParsedBars:
    """Bars from a ``datatype=csv`` body (header timestamp,open,high,low,close,volume)."""
    if "\x00" in text:  # the csv module rejects NUL before 3.11: refuse it everywhere alike
        raise PayloadError("NUL byte in CSV body", text)
    try:
        rows = list(csv.reader(io.StringIO(_strip_body(text), newline="")))
    except csv.Error as exc:
        raise PayloadError(f"malformed CSV ({exc})", text) from None
    rows = [r for r in rows if any(f.strip() for f in r)]  # blank lines carry nothing
    if not rows:
        raise PayloadError("empty CSV body", text)
    header = tuple(f.strip().lower() for f in rows[0])
    if header != CSV_HEADER:
        raise PayloadError(
            f"CSV header is {','.join(rows[0])[:80]!r}, expected {','.join(CSV_HEADER)!r}", text
        )
    collected = _Collector()
    for row in rows[1:]:
        if len(row) != len(CSV_HEADER):
            collected.reject(
                row[0], row[1:], f"expected {len(CSV_HEADER)} fields, found {len(row)}"
            )
            continue
        collected.add(row[0], row[1:])
    return collected.result()


def parse_actions(function: str, data: Any) -> pd.DataFrame:
    """(date, value) text rows of a SPLITS or DIVIDENDS answer, as received; ingest judges
    them. An entry that is not an object keeps its text as the date, so it is rejected."""
    date_field, value_field = ACTION_FIELDS[function]
    dates, values = [], []
    for entry in data.get("data") or []:
        if isinstance(entry, dict):
            dates.append(_as_text(entry.get(date_field)))
            values.append(_as_text(entry.get(value_field)))
        else:
            dates.append(_as_text(entry))
            values.append("")
    return pd.DataFrame(
        {"date": pd.Series(dates, dtype=object), "value": pd.Series(values, dtype=object)}
    )


# -- HTTP -----------------------------------------------------------------------------


class _Retryable(Exception):
    """An attempt failed in a way worth another attempt."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Transport(_Retryable):
    pass


class _Throttled(_Retryable):
    pass


class _Garbled(_Retryable):
    def __init__(self, reason: str, payload: str) -> None:
        super().__init__(reason)
        self.payload = payload


class _PremiumRefusal(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None  # absent, or an HTTP date: fall back to our own backoff
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name in Content-Type
        return raw.decode("utf-8", errors="replace")


@dataclasses.dataclass
class FetchResult:
    """One symbol's answer. ``bars`` is filtered to [since, until]; ``rejected`` holds
    every row of the payload that could not be parsed (unfiltered: an unparseable date
    cannot be placed); ``payload`` is the body as received with the key redacted."""

    symbol: str
    bars: pd.DataFrame
    rejected: pd.DataFrame
    payload: str
    outputsize: str
    attempts: int


class AlphaVantageProvider:
    """``TIME_SERIES_DAILY`` from Alpha Vantage.

    ``fetch(symbol, since, until) -> FetchResult`` is the explicit interface: bars,
    rejected rows and the redacted payload (for quarantine) together.
    ``fetch_daily`` is the ``Provider`` protocol: it returns ``fetch(...).bars`` and
    keeps the whole result in ``last_result`` and the rejected rows in
    ``last_rejected``.

    Every HTTP attempt, retries included, first calls ``limiter.acquire()``; a
    ``QuotaExhausted`` from it propagates untouched. When Alpha Vantage itself says the
    daily limit is reached, the limiter is marked exhausted (``mark_exhausted``) so the
    rest of the run makes no further calls.

    ``on_event(kind, message)`` reports, redacted: ``"retry"`` (before each backoff
    sleep) and ``"fallback"`` (outputsize=full refused, compact used; once).
    """

    name = "alphavantage"
    # Each answer repeats the last 100 sessions (compact): ingest compares them with what
    # landed, so a corrected bar is rewritten.
    resends_history = True

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        outputsize: str = "compact",
        datatype: str = "json",
        max_retries: int = 3,
        backoff_seconds: float = 15.0,
        timeout: float = 30.0,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_event: Callable[[str, str], None] | None = None,
        max_backoff_seconds: float = 120.0,
        jitter_seconds: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise InvalidApiKey(f"no Alpha Vantage API key is set; {KEY_HELP}")
        if outputsize not in OUTPUTSIZES:
            raise ValueError(f"outputsize must be one of {OUTPUTSIZES}, not {outputsize!r}")
        if datatype not in DATATYPES:
            raise ValueError(f"datatype must be one of {DATATYPES}, not {datatype!r}")
        if max_retries < 0 or backoff_seconds < 0 or jitter_seconds < 0 or timeout <= 0:
            raise ValueError("max_retries, backoff and jitter must be >= 0, timeout > 0")
        self._api_key = api_key.strip()
        self.base_url = base_url
        self.outputsize = outputsize  # becomes "compact" after a premium fallback
        self.datatype = datatype
        self.max_retries = int(max_retries)
        self.backoff_seconds = float(backoff_seconds)
        self.max_backoff_seconds = float(max_backoff_seconds)
        self.jitter_seconds = float(jitter_seconds)
        self.timeout = float(timeout)
        self.limiter = limiter
        self._sleep = sleep
        self.on_event = on_event
        # A seeded generator keeps jittered waits reproducible; jitter is off by default.
        self._rng = rng if rng is not None else random.Random()
        self._attempts = 0
        self.last_result: FetchResult | None = None
        self.last_rejected: pd.DataFrame = empty_rejected()

    def __repr__(self) -> str:  # never show the key
        return f"AlphaVantageProvider(base_url={self.base_url!r}, outputsize={self.outputsize!r})"

    # -- public ---------------------------------------------------------------------

    def fetch_daily(self, symbol: str, since: dt.date | None, until: dt.date) -> pd.DataFrame:
        return self.fetch(symbol, since, until).bars

    def fetch_actions(self, kind: str, symbol: str, until: dt.date) -> pd.DataFrame:
        """The symbol's splits or dividends (`kind`), one request (retries aside): text
        (date, value) rows as received. ``PremiumOnly`` or ``UnknownFunction`` when this key
        cannot ask for them."""
        function = "SPLITS" if kind == "splits" else "DIVIDENDS"
        self._attempts = 0
        try:
            _, parsed = self._call(symbol, "compact", function)
        except _PremiumRefusal as refusal:
            raise PremiumOnly(
                f"Alpha Vantage serves {function} to premium keys only "
                f"({self._excerpt(refusal.message)})"
            ) from None
        return parsed

    def fetch(self, symbol: str, since: dt.date | None, until: dt.date) -> FetchResult:
        self._attempts = 0
        outputsize = self.outputsize
        try:
            text, parsed = self._call(symbol, outputsize)
        except _PremiumRefusal as refusal:
            if outputsize != "full":
                raise PremiumOnly(
                    f"Alpha Vantage serves {FUNCTION} for {symbol} to premium keys only "
                    f"({self._excerpt(refusal.message)}); use a premium key"
                ) from None
            # Free keys lost outputsize=full: compact (the last 100 sessions) still works.
            # The switch sticks to this provider, so the fallback is said once per instance.
            self.outputsize = outputsize = "compact"
            self._event(
                "fallback",
                "Alpha Vantage refuses outputsize=full for this key (premium only); "
                "using compact: the last 100 sessions per symbol",
            )
            try:
                text, parsed = self._call(symbol, outputsize)
            except _PremiumRefusal as again:
                raise PremiumOnly(
                    f"Alpha Vantage serves {FUNCTION} for {symbol} to premium keys only "
                    f"({self._excerpt(again.message)}); use a premium key"
                ) from None
        bars = parsed.bars
        keep = [(since is None or d >= since) and d <= until for d in bars["trade_date"]]
        bars = bars.loc[keep].reset_index(drop=True)
        result = FetchResult(
            symbol=symbol,
            bars=bars,
            rejected=parsed.rejected,
            payload=self._redact(text),
            outputsize=outputsize,
            attempts=self._attempts,
        )
        self.last_result = result
        self.last_rejected = result.rejected
        return result

    # -- internals ------------------------------------------------------------------

    def _redact(self, text: str | None) -> str:
        return redact(text, self._api_key)

    def _excerpt(self, text: str) -> str:
        return _one_line(self._redact(text))[:300]

    def _event(self, kind: str, message: str) -> None:
        message = self._redact(message)
        log.info("%s: %s", kind, message)
        if self.on_event is not None:
            self.on_event(kind, message)

    def _url(self, symbol: str, outputsize: str, function: str = FUNCTION) -> str:
        params = {"function": function, "symbol": symbol}
        if function == FUNCTION:
            params.update({"outputsize": outputsize, "datatype": self.datatype})
        params["apikey"] = self._api_key
        query = urllib.parse.urlencode(params)
        return f"{self.base_url}{'&' if '?' in self.base_url else '?'}{query}"

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exponential = tenacity.wait_exponential(
            multiplier=self.backoff_seconds, max=self.max_backoff_seconds
        )
        seconds = float(exponential(state))
        if self.jitter_seconds:
            seconds += self._rng.uniform(0.0, self.jitter_seconds)
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:  # the server knows better, within our ceiling
            seconds = max(seconds, min(retry_after, self.max_backoff_seconds))
        return seconds

    def _call(self, symbol: str, outputsize: str, function: str = FUNCTION) -> tuple[str, Any]:
        url = self._url(symbol, outputsize, function)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            self._event(
                "retry",
                f"{symbol}: {getattr(exc, 'reason', exc)}; retry "
                f"{state.attempt_number}/{self.max_retries} in {wait:.1f}s",
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        attempts = self.max_retries + 1
        try:
            return retrying(self._attempt, url, symbol, function)
        except _Throttled as exc:
            raise RateLimited(
                f"Alpha Vantage still throttles after {attempts} attempts for {symbol} "
                f"({self._excerpt(exc.reason)}); lower the call rate or retry later"
            ) from None
        except _Garbled as exc:
            raise PayloadError(
                f"unusable answer for {symbol} after {attempts} attempts: "
                f"{self._excerpt(exc.reason)}",
                self._redact(exc.payload),
                symbol=symbol,
            ) from None
        except _Transport as exc:
            raise FetchFailed(
                f"could not fetch {symbol} from Alpha Vantage after {attempts} attempts: "
                f"{self._excerpt(exc.reason)}; check the network and retry"
            ) from None

    def _attempt(self, url: str, symbol: str, function: str = FUNCTION) -> tuple[str, Any]:
        if self.limiter is not None:
            self.limiter.acquire()
        self._attempts += 1
        log.debug("GET %s", self._redact(url))
        text = self._get(url)
        answer = classify(text, function)
        kind = answer.kind
        if kind == OK_JSON and function != FUNCTION:
            return text, parse_actions(function, answer.data)
        if kind == OK_JSON:
            try:
                return text, _series_to_bars(answer.data[SERIES_KEY])
            except PayloadError as exc:  # defensive: classify already checked the shape
                raise _Garbled(exc.reason, text) from None
        if kind == OK_CSV:
            try:
                return text, parse_csv(text)
            except PayloadError as exc:
                raise _Garbled(exc.reason, text) from None
        if kind == THROTTLED:
            raise _Throttled(f"throttled: {answer.message}")
        if kind == GARBLED:
            raise _Garbled(answer.message, text)
        if kind == PREMIUM_ONLY:
            raise _PremiumRefusal(answer.message)
        if kind == DAILY_LIMIT:
            if self.limiter is not None:
                self.limiter.mark_exhausted()
            raise DailyLimitReached(
                "Alpha Vantage says this key's daily request limit is reached "
                f"({self._excerpt(answer.message)}); the remaining symbols wait for the "
                "next day's run, or use a premium key"
            )
        if kind == INVALID_KEY:
            raise InvalidApiKey(
                f"Alpha Vantage does not accept the API key ({self._excerpt(answer.message)}); "
                f"{KEY_HELP}"
            )
        if kind == UNKNOWN_FUNCTION:
            raise UnknownFunction(
                f"Alpha Vantage does not offer {function} ({self._excerpt(answer.message)})"
            )
        if kind == INVALID_SYMBOL:
            raise InvalidSymbol(
                f"Alpha Vantage does not know {symbol!r} ({self._excerpt(answer.message)}); "
                "check the ticker: it is skipped",
                symbol,
            )
        raise AssertionError(f"unhandled answer class {kind}")  # pragma: no cover

    def _get(self, url: str) -> str:
        try:
            request = urllib.request.Request(
                url, headers={"User-Agent": "marketlake", "Accept": "application/json, text/csv"}
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                charset = response.headers.get_content_charset()
        except (ValueError, http.client.InvalidURL) as exc:
            # A malformed base URL: retrying cannot help, and the text quotes the key.
            raise FetchFailed(
                f"cannot request {self._redact(url)}: {self._redact(str(exc))}; "
                "check ALPHAVANTAGE_BASE_URL"
            ) from None
        except urllib.error.HTTPError as exc:
            status = exc.code
            retry_after = _retry_after(exc.headers)
            exc.close()
            if status == 429 or 500 <= status <= 599:
                raise _Transport(f"HTTP {status}", retry_after) from None
            raise FetchFailed(
                f"Alpha Vantage answered HTTP {status} at {self._redact(url)}; check the base URL"
            ) from None
        except (socket.timeout, TimeoutError):
            raise _Transport(f"no answer within {self.timeout:g}s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                raise _Transport(f"no answer within {self.timeout:g}s") from None
            raise _Transport(f"connection failed: {exc.reason}") from None
        except (http.client.HTTPException, OSError) as exc:
            # RemoteDisconnected, IncompleteRead, ConnectionResetError...: a dropped answer.
            raise _Transport(f"connection dropped: {type(exc).__name__}: {exc}") from None
        return _decode(raw, charset)
