"""AlphaVantageProvider: ``TIME_SERIES_DAILY`` (and SPLITS, DIVIDENDS, EARNINGS) per symbol,
each answer classified (answers.py) before it is parsed (parse.py), retried where another
attempt can help, every text redacted before it leaves (requests, retries, pacing and
redaction are providers.http's, shared with the other vendors).

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
retried the same bounded way and end in ``FetchFailed``; but a connection that cannot be
made before Alpha Vantage has answered once ends the run (``ServerUnreachable``, naming
ALPHAVANTAGE_BASE_URL) after a few seconds. The API key never appears in
an exception, payload, event or log line: everything goes through ``redact`` first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import time
import urllib.parse
from typing import Any, Callable

import pandas as pd

from marketlake.config import default
from marketlake.providers.alphavantage.answers import (
    DAILY_LIMIT,
    EARNINGS_FUNCTION,
    FUNCTION,
    GARBLED,
    INVALID_KEY,
    INVALID_SYMBOL,
    OK_CSV,
    OK_JSON,
    PREMIUM_ONLY,
    SERIES_KEY,
    THROTTLED,
    UNKNOWN_FUNCTION,
    classify,
)
from marketlake.providers.alphavantage.client import _PremiumRefusal, body_of
from marketlake.providers.alphavantage.errors import (
    KEY_HELP,
    DailyLimitReached,
    FetchFailed,
    InvalidApiKey,
    InvalidSymbol,
    PayloadError,
    PremiumOnly,
    RateLimited,
    UnknownFunction,
)
from marketlake.providers.alphavantage.parse import (
    _series_to_bars,
    empty_rejected,
    parse_actions,
    parse_csv,
    parse_earnings,
)
from marketlake.providers.base import Limiter
from marketlake.providers.http import (
    MAX_BACKOFF_SECONDS,
    TIMEOUT_SECONDS,
    Garbled,
    KeyedClient,
    Throttled,
    Transport,
    Unreached,
    Unrequestable,
)

log = logging.getLogger("marketlake.providers.alphavantage")

DEFAULT_BASE_URL = default("av_base_url")
OUTPUTSIZES = ("compact", "full")
DATATYPES = ("json", "csv")
__all__ = [
    "DATATYPES",
    "DEFAULT_BASE_URL",
    "MAX_BACKOFF_SECONDS",
    "OUTPUTSIZES",
    "AlphaVantageProvider",
    "FetchResult",
]


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
    # EARNINGS restates every past quarter's EPS for later splits: its values are on the share
    # basis of the day they were fetched (lake/earnings.py), not as reported.
    restates_earnings = True

    def __init__(
        self,
        api_key: str | None,
        base_url: str = DEFAULT_BASE_URL,
        outputsize: str = default("av_outputsize"),
        datatype: str = default("av_datatype"),
        max_retries: int = default("av_max_retries"),
        backoff_seconds: float = default("av_backoff_seconds"),
        timeout: float = TIMEOUT_SECONDS,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_event: Callable[[str, str], None] | None = None,
        max_backoff_seconds: float = MAX_BACKOFF_SECONDS,
        jitter_seconds: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise InvalidApiKey(f"no Alpha Vantage API key is set; {KEY_HELP}")
        if outputsize not in OUTPUTSIZES:
            raise ValueError(f"outputsize must be one of {OUTPUTSIZES}, not {outputsize!r}")
        if datatype not in DATATYPES:
            raise ValueError(f"datatype must be one of {DATATYPES}, not {datatype!r}")
        self._api_key = api_key.strip()
        self.base_url = base_url
        self.outputsize = outputsize  # becomes "compact" after a premium fallback
        self.datatype = datatype
        # Requests, pacing, retries and redaction: shared with the other vendors.
        self._client = KeyedClient(
            self._api_key,
            log=log,
            timeout=timeout,
            limiter=limiter,
            sleep=sleep,
            on_event=on_event,
            max_retries=max_retries,
            backoff_seconds=backoff_seconds,
            max_backoff_seconds=max_backoff_seconds,
            jitter_seconds=jitter_seconds,
            rng=rng,
        )
        self.limiter = limiter
        self.last_result: FetchResult | None = None
        self.last_rejected: pd.DataFrame = empty_rejected()

    @property
    def requests_made(self) -> int:
        """HTTP attempts sent, retries included."""
        return self._client.requests_made

    def __repr__(self) -> str:  # never show the key
        return f"AlphaVantageProvider(base_url={self.base_url!r}, outputsize={self.outputsize!r})"

    # -- public ---------------------------------------------------------------------

    def fetch_daily(self, symbol: str, since: dt.date | None, until: dt.date) -> pd.DataFrame:
        return self.fetch(symbol, since, until).bars

    def fetch_actions(self, kind: str, symbol: str, until: dt.date) -> pd.DataFrame:
        """The symbol's splits or dividends (`kind`), one request (retries aside): text
        (date, value) rows as received. ``PremiumOnly`` or ``UnknownFunction`` when this key
        cannot ask for them."""
        return self._ask(symbol, "SPLITS" if kind == "splits" else "DIVIDENDS")

    def fetch_earnings(self, symbol: str, until: dt.date) -> pd.DataFrame:
        """The symbol's quarterly earnings (EARNINGS), one request (retries aside): the text
        frame lake.earnings.empty_earnings describes, every quarter as received (ingest
        judges them and holds back those reported after `until`). No rows for a symbol
        without earnings. ``PremiumOnly`` or ``UnknownFunction`` when this key cannot ask."""
        return self._ask(symbol, EARNINGS_FUNCTION)

    def _ask(self, symbol: str, function: str) -> pd.DataFrame:
        """One function's parsed answer for `symbol`; a premium refusal as ``PremiumOnly``."""
        self._client.attempts = 0
        try:
            _, parsed = self._call(symbol, "compact", function)
        except _PremiumRefusal as refusal:
            raise PremiumOnly(
                f"Alpha Vantage serves {function} to premium keys only "
                f"({self._excerpt(refusal.message)})"
            ) from None
        return parsed

    def fetch(self, symbol: str, since: dt.date | None, until: dt.date) -> FetchResult:
        self._client.attempts = 0
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
            attempts=self._client.attempts,
        )
        self.last_result = result
        self.last_rejected = result.rejected
        return result

    # -- internals ------------------------------------------------------------------

    def _redact(self, text: str | None) -> str:
        return self._client.redact(text)

    def _excerpt(self, text: str) -> str:
        return self._client.excerpt(text)

    def _event(self, kind: str, message: str) -> None:
        self._client.event(kind, message)

    def _url(self, symbol: str, outputsize: str, function: str = FUNCTION) -> str:
        params = {"function": function, "symbol": symbol}
        if function == FUNCTION:
            params.update({"outputsize": outputsize, "datatype": self.datatype})
        params["apikey"] = self._api_key
        query = urllib.parse.urlencode(params)
        return f"{self.base_url}{'&' if '?' in self.base_url else '?'}{query}"

    def _call(self, symbol: str, outputsize: str, function: str = FUNCTION) -> tuple[str, Any]:
        url = self._url(symbol, outputsize, function)
        attempts = self._client.max_retries + 1
        try:
            return self._client.retry(lambda: self._attempt(url, symbol, function), symbol)
        except Unrequestable as exc:
            raise FetchFailed(f"{exc}; check ALPHAVANTAGE_BASE_URL") from None
        except Throttled as exc:
            raise RateLimited(
                f"Alpha Vantage still throttles after {attempts} attempts for {symbol} "
                f"({self._excerpt(exc.reason)}); lower the call rate or retry later"
            ) from None
        except Garbled as exc:
            raise PayloadError(
                f"unusable answer for {symbol} after {attempts} attempts: "
                f"{self._excerpt(exc.reason)}",
                self._redact(exc.payload),
                symbol=symbol,
            ) from None
        except Transport as exc:
            if isinstance(exc, Unreached) and not self._client.answered:
                # The run's first contact: stop the run, not each symbol in turn.
                raise self._client.unreachable(
                    "ALPHAVANTAGE_BASE_URL", self.base_url, exc
                ) from None
            raise FetchFailed(
                f"could not fetch {symbol} from Alpha Vantage after {attempts} attempts: "
                f"{self._excerpt(exc.reason)}; check the network and retry"
            ) from None

    def _attempt(self, url: str, symbol: str, function: str = FUNCTION) -> tuple[str, Any]:
        text = body_of(self._client.get(url), url, self._redact)
        answer = classify(text, function)
        kind = answer.kind
        if kind == OK_JSON and function == EARNINGS_FUNCTION:
            return text, parse_earnings(answer.data)
        if kind == OK_JSON and function != FUNCTION:
            return text, parse_actions(function, answer.data)
        if kind == OK_JSON:
            try:
                return text, _series_to_bars(answer.data[SERIES_KEY])
            except PayloadError as exc:  # defensive: classify already checked the shape
                raise Garbled(exc.reason, text) from None
        if kind == OK_CSV:
            try:
                return text, parse_csv(text)
            except PayloadError as exc:
                raise Garbled(exc.reason, text) from None
        if kind == THROTTLED:
            raise Throttled(f"throttled: {answer.message}")
        if kind == GARBLED:
            raise Garbled(answer.message, text)
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
