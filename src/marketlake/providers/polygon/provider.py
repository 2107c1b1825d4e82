"""PolygonProvider: Polygon.io (Massive since October 2025; api.polygon.io still answers).
The whole US market's bars for one session in one request (grouped daily), one ticker's
range, market-wide splits and dividends by date, and one ticker's quarterly earnings from
its SEC filings (financials.py); always ``adjusted=false``, since the lake keeps prices as
traded and applies corporate actions itself.

Each reply is classified (answers.py) from its HTTP status and body before it is parsed
(parse.py). Requests, the caller's limiter before every attempt, retries and redaction
are providers.http's, shared with Alpha Vantage. What the provider does with each class:

==================  ==========================================================
ok                  parse; rows that cannot be parsed go to ``rejected``
                    (``GroupedDay.rejected``, or ``last_rejected`` for one
                    ticker); follow ``next_url`` (each page is a request)
throttled (429)     wait (Retry-After when sent, else the backoff) and retry;
                    ``RateLimited`` when spent
invalid-key (401)   ``InvalidApiKey`` at once (fatal), naming POLYGON_API_KEY
beyond-plan (403)   ``PlanHistoryLimit`` at once (a ``BeyondPlan``: the plan
                    does not reach ``asked_from``); never retried
not-entitled (403)  ``NotEntitled`` at once (a ``NotOffered``)
server-error (5xx)  retry; ``FetchFailed`` when spent
refused (4xx)       ``FetchFailed`` at once (another attempt gets the same)
garbled             HTML, truncated or invalid JSON, JSON of another shape:
                    retry; ``PayloadError`` (payload kept, redacted) when spent
==================  ==========================================================

Transport failures (connection refused or dropped, timeouts) are retried the same bounded
way and end in ``FetchFailed``; but a connection that cannot be made before Polygon has
answered once ends the run (``ServerUnreachable``, naming POLYGON_BASE_URL) after a few
seconds. Pacing is the caller's limiter (ingest builds it from
POLYGON_CALLS_PER_MINUTE); the provider builds none. The API key never appears in an
exception, payload, event or log line.

Python 3.9-compatible, like the rest of the providers.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any, Callable

import pandas as pd

from marketlake.config import default
from marketlake.providers.base import GroupedDay, Limiter, empty_rejected
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
from marketlake.providers.polygon.answers import (
    AGGS,
    BEYOND_PLAN,
    DIVIDENDS,
    FINANCIALS,
    GARBLED,
    GROUPED,
    INVALID_KEY,
    NOT_ENTITLED,
    OK,
    REFUSED,
    SERVER_ERROR,
    SPLITS,
    THROTTLED,
    Endpoint,
    classify,
)
from marketlake.providers.polygon.errors import (
    POLYGON_KEY_HELP,
    FetchFailed,
    InvalidApiKey,
    NotEntitled,
    PayloadError,
    PlanHistoryLimit,
    RateLimited,
)
from marketlake.providers.polygon.financials import parse_financials
from marketlake.providers.polygon.parse import (
    ParsedActions,
    parse_aggs,
    parse_dividends,
    parse_grouped,
    parse_splits,
)

log = logging.getLogger("marketlake.providers.polygon")

DEFAULT_BASE_URL = default("polygon_base_url")
# Where "as far back as the plan goes" starts (fetch_daily with since=None): the lake's NYSE
# calendar begins here (sessions.CALENDAR_START), so no older bar could be placed on a
# session, and Polygon's stock history begins later anyway. A plan that reaches less far
# answers 403 (PlanHistoryLimit), which is how ingest finds the plan's edge.
HISTORY_START = dt.date(2000, 1, 3)
# A daily range answer holds at most this many bars per page (Polygon's maximum); 20 years
# of sessions are about 5,000, so one page is the rule and next_url the exception.
AGGS_LIMIT = 50_000
# Reference answers hold at most 1,000 results per page (Polygon's maximum).
REFERENCE_LIMIT = 1_000
# A financials answer holds at most this many filings per page (the endpoint's maximum);
# 25 years of quarters are 100, so one page is the rule.
FINANCIALS_LIMIT = 100
# Pages followed for one call before the answer is judged a loop (a year of the whole
# market's dividends is tens of pages).
MAX_PAGES = 10_000
# Which date each reference endpoint is asked by.
ACTION_DATE_FIELDS = {"splits": "execution_date", "dividends": "ex_dividend_date"}


class PolygonProvider:
    """Polygon's daily bars and corporate actions.

    ``fetch_grouped(session) -> GroupedDay``: every US stock's bar for one session, one
    request. ``fetch_daily`` (the ``Provider`` protocol): one ticker's range, its rejected
    rows in ``last_rejected``. ``fetch_market_actions(kind, since, until)``: the whole
    market's splits or dividends by date (per-symbol ``fetch_actions`` is not offered:
    asking market-wide costs a few requests instead of one per symbol).
    ``fetch_earnings(symbol, until)``: one ticker's quarters filed by `until`; the financials
    endpoint is per ticker, so ingest asks at most ``earnings_per_run`` symbols a run
    (POLYGON_EARNINGS_PER_RUN; 0: no limit).

    Every HTTP attempt (retries and pages included) first calls ``limiter.acquire()``; a
    ``QuotaExhausted`` from it propagates untouched. ``requests_made`` counts them.
    ``on_event(kind, message)`` reports, redacted: ``"retry"`` (before each backoff sleep)
    and ``"skipped"`` (corporate actions left out, with why).
    """

    name = "polygon"
    # Ask only what follows the watermark: a range answer repeats nothing unasked.
    resends_history = False
    fetch_actions: Callable[[str, str, dt.date], pd.DataFrame] | None = None
    # A filing's EPS are on the share basis of its filing day, the reported date here.
    restates_earnings = False

    def __init__(
        self,
        api_key: str | None,
        base_url: str = DEFAULT_BASE_URL,
        max_retries: int = default("polygon_max_retries"),
        backoff_seconds: float = default("polygon_backoff_seconds"),
        timeout: float = TIMEOUT_SECONDS,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_event: Callable[[str, str], None] | None = None,
        max_backoff_seconds: float = MAX_BACKOFF_SECONDS,
        earnings_per_run: int = default("polygon_earnings_per_run"),
    ) -> None:
        if not api_key or not api_key.strip():
            raise InvalidApiKey(f"no Polygon API key is set; {POLYGON_KEY_HELP}")
        self._api_key = api_key.strip()
        # The paths are appended; a trailing slash would double theirs.
        self.base_url = base_url.rstrip("/")
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
        )
        self.limiter = limiter
        self.earnings_per_run = earnings_per_run
        self.last_rejected: pd.DataFrame = empty_rejected()

    def __repr__(self) -> str:  # never show the key
        return f"PolygonProvider(base_url={self.base_url!r})"

    @property
    def requests_made(self) -> int:
        """HTTP attempts sent, retries and pages included."""
        return self._client.requests_made

    def close(self) -> None:
        self._client.close()

    # -- public ---------------------------------------------------------------------

    def fetch_grouped(self, session: dt.date) -> GroupedDay:
        """Every US stock's bar for `session`. A day without trading answers no rows."""
        day = session.isoformat()
        url = self._url(f"/v2/aggs/grouped/locale/us/market/stocks/{day}", [("adjusted", "false")])
        self._client.attempts = 0
        data, text = self._request(url, GROUPED, f"grouped {day}", session)
        parsed = parse_grouped(data, session)
        return GroupedDay(session, parsed.bars, parsed.rejected, self._client.redact(text))

    def fetch_daily(self, symbol: str, since: dt.date | None, until: dt.date) -> pd.DataFrame:
        """`symbol`'s bars for sessions in [since, until]; since=None: from HISTORY_START.
        The ticker is sent as given (Polygon's tickers are case-sensitive)."""
        self.last_rejected = empty_rejected()
        first = since if since is not None else HISTORY_START
        if first > until:
            return parse_aggs([], first, until).bars
        path = (
            f"/v2/aggs/ticker/{urllib.parse.quote(symbol, safe='')}/range/1/day/"
            f"{first.isoformat()}/{until.isoformat()}"
        )
        url = self._url(path, [("adjusted", "false"), ("sort", "asc"), ("limit", str(AGGS_LIMIT))])
        self._client.attempts = 0
        results: list[Any] = []
        for data, _ in self._pages(url, AGGS, symbol, first, symbol):
            results.extend(data.get("results") or [])
        parsed = parse_aggs(results, first, until)
        self.last_rejected = parsed.rejected
        return parsed.bars

    def fetch_market_actions(self, kind: str, since: dt.date, until: dt.date) -> pd.DataFrame:
        """Every split (`kind` "splits") or dividend ("dividends") of the US market dated in
        [since, until]: columns symbol, date (the text received), value (a split's factor
        new-per-old as a float; a dividend's cash amount as received). Rows no factor can
        be computed for keep their text, so ingest's judge_actions rejects them visibly;
        rows left out (a ticker that cannot be a symbol, a non-USD dividend) are reported
        through ``on_event("skipped", ...)``."""
        if kind not in ACTION_DATE_FIELDS:
            raise ValueError(f"kind must be one of {sorted(ACTION_DATE_FIELDS)}, not {kind!r}")
        field = ACTION_DATE_FIELDS[kind]
        url = self._url(
            f"/v3/reference/{kind}",
            [
                (f"{field}.gte", since.isoformat()),
                (f"{field}.lte", until.isoformat()),
                ("limit", str(REFERENCE_LIMIT)),
                ("order", "asc"),
                ("sort", field),
            ],
        )
        endpoint: Endpoint = SPLITS if kind == "splits" else DIVIDENDS
        label = f"{kind} {since}..{until}"
        self._client.attempts = 0
        results: list[Any] = []
        for data, _ in self._pages(url, endpoint, label, since):
            results.extend(data.get("results") or [])
        parsed: ParsedActions = (parse_splits if kind == "splits" else parse_dividends)(results)
        if parsed.skipped:
            shown = "; ".join(parsed.skipped[:3])
            more = f"; and {len(parsed.skipped) - 3} more" if len(parsed.skipped) > 3 else ""
            self._client.event("skipped", f"{label}: {len(parsed.skipped)} left out: {shown}{more}")
        return parsed.actions

    def fetch_earnings(self, symbol: str, until: dt.date) -> pd.DataFrame:
        """`symbol`'s quarters filed on or before `until` (``/vX/reference/financials``): the
        text frame lake.earnings.empty_earnings describes, dated by filing (financials.py).
        No rows for a ticker without filings (a fund). ``NotEntitled`` when the key's plan
        has no financials. Quarters left out (a later filing of one, EPS not in USD) are
        reported through ``on_event("skipped", ...)``."""
        url = self._url(
            "/vX/reference/financials",
            [
                ("ticker", symbol),
                ("timeframe", "quarterly"),
                ("filing_date.lte", until.isoformat()),
                ("order", "asc"),
                ("sort", "filing_date"),
                ("limit", str(FINANCIALS_LIMIT)),
            ],
        )
        self._client.attempts = 0
        results: list[Any] = []
        for data, _ in self._pages(url, FINANCIALS, f"financials of {symbol}", None, symbol):
            results.extend(data.get("results") or [])
        parsed = parse_financials(results, symbol)
        if parsed.skipped:
            shown = "; ".join(parsed.skipped[:3])
            more = f"; and {len(parsed.skipped) - 3} more" if len(parsed.skipped) > 3 else ""
            self._client.event("skipped", f"earnings of {symbol}: {shown}{more}")
        return parsed.earnings

    # -- internals ------------------------------------------------------------------

    def _url(self, path: str, params: list[tuple[str, str]]) -> str:
        query = urllib.parse.urlencode([*params, ("apiKey", self._api_key)])
        return f"{self.base_url}{path}?{query}"

    def _follow(self, next_url: str, text: str, symbol: str | None) -> str:
        """The next page's URL: ``next_url``'s path and query (its cursor) on our base URL,
        with the key added (Polygon leaves it out). Its host is not used, as Polygon's own
        client does: the key only ever goes where POLYGON_BASE_URL points."""
        parts = urllib.parse.urlsplit(next_url)
        if not parts.path.startswith("/"):
            raise PayloadError(
                f"Polygon's next_url {self._client.excerpt(next_url, 120)!r} has no path",
                self._client.redact(text),
                symbol=symbol,
            )
        # The query is kept as sent (the cursor is opaque); any key in it is replaced.
        kept = [p for p in parts.query.split("&") if p and p.split("=")[0].lower() != "apikey"]
        kept.append("apiKey=" + urllib.parse.quote(self._api_key, safe=""))
        return f"{self.base_url}{parts.path}?{'&'.join(kept)}"

    def _pages(
        self,
        url: str,
        endpoint: Endpoint,
        label: str,
        asked_from: dt.date | None,
        symbol: str | None = None,
    ) -> Iterator[tuple[dict, str]]:
        seen = {url}
        for _ in range(MAX_PAGES):
            data, text = self._request(url, endpoint, label, asked_from, symbol)
            yield data, text
            next_url = data.get("next_url")
            if not next_url:
                return
            url = self._follow(next_url, text, symbol)
            if url in seen:
                raise PayloadError(
                    f"Polygon's next_url for {label} repeats a page already read",
                    self._client.redact(text),
                    symbol=symbol,
                )
            seen.add(url)
        raise PayloadError(f"Polygon's answer for {label} ran past {MAX_PAGES} pages")

    def _request(
        self,
        url: str,
        endpoint: Endpoint,
        label: str,
        asked_from: dt.date | None,
        symbol: str | None = None,
    ) -> tuple[dict, str]:
        """One page: attempts under the retry policy, each classified; the data object and
        the body text."""
        attempts = self._client.max_retries + 1
        excerpt = self._client.excerpt
        try:
            return self._client.retry(
                lambda: self._attempt(url, endpoint, label, asked_from), label
            )
        except Unrequestable as exc:
            raise FetchFailed(f"{exc}; check POLYGON_BASE_URL") from None
        except Throttled as exc:
            raise RateLimited(
                f"Polygon still answers HTTP 429 after {attempts} attempts for {label} "
                f"({excerpt(exc.reason)}); lower POLYGON_CALLS_PER_MINUTE or retry later"
            ) from None
        except Garbled as exc:
            raise PayloadError(
                f"unusable answer for {label} after {attempts} attempts: {excerpt(exc.reason)}",
                self._client.redact(exc.payload),
                symbol=symbol,
            ) from None
        except Transport as exc:
            if isinstance(exc, Unreached) and not self._client.answered:
                # The run's first contact: stop the run, not each request in turn.
                raise self._client.unreachable("POLYGON_BASE_URL", self.base_url, exc) from None
            raise FetchFailed(
                f"could not fetch {label} from Polygon after {attempts} attempts: "
                f"{excerpt(exc.reason)}; check the network and retry"
            ) from None

    def _attempt(
        self, url: str, endpoint: Endpoint, label: str, asked_from: dt.date | None
    ) -> tuple[dict, str]:
        reply = self._client.get(url)
        answer = classify(reply.status, reply.text, endpoint)
        kind, message = answer.kind, self._client.excerpt(answer.message)
        if kind == OK:
            return answer.data, reply.text
        if kind == THROTTLED:
            raise Throttled(f"throttled: {message}", reply.retry_after)
        if kind == SERVER_ERROR:
            raise Transport(message, reply.retry_after)
        if kind == GARBLED:
            raise Garbled(answer.message, reply.text)
        if kind == INVALID_KEY:
            raise InvalidApiKey(
                f"Polygon does not accept the API key ({message}); {POLYGON_KEY_HELP}"
            )
        if kind == BEYOND_PLAN:
            back = f"back to {asked_from}" if asked_from is not None else "that far back"
            raise PlanHistoryLimit(
                f"Polygon's plan for this key does not reach {back} ({label}): {message}",
                asked_from,
                message,
            )
        if kind == NOT_ENTITLED:
            raise NotEntitled(f"Polygon does not serve {label} to this key's plan ({message})")
        if kind == REFUSED:
            raise FetchFailed(
                f"Polygon refused {label} ({message}) at {self._client.redact(url)}; "
                "check POLYGON_BASE_URL"
            )
        raise AssertionError(f"unhandled answer class {kind}")  # pragma: no cover
