"""What every vendor with a key in its URLs shares: one GET on a ``requests`` Session turned
into a status and a body (or a transport failure), the retry policy (tenacity, capped
exponential backoff, Retry-After honoured), the caller's limiter asked before every attempt,
and the key redacted from every text that leaves.

Each vendor keeps what is its own: what a body means (its ``answers`` module) and which
neutral error (providers.base) a spent retry or a refusal becomes.

An attempt that failed in a way another attempt may cure raises a ``Retryable``:

=============  ==============================================================
``Transport``  no answer (refused or dropped connection, timeout), HTTP 5xx,
               or an HTTP 429 the vendor did not explain
``Unreached``  a ``Transport`` whose request never left: the connection could
               not be made (name resolution, refused, connect timeout)
``Throttled``  the vendor said to slow down
``Garbled``    a body that is not a usable answer; ``payload`` keeps it
=============  ==============================================================

Anything else (a refusal) propagates at once.

An ``Unreached`` attempt is given back to the limiter (``refund``): the vendor never saw
it, so it must not spend the day's quota. Before the server has answered once, it is
most likely no network or a wrong base URL rather than a blip: it is retried only
``FIRST_CONTACT_RETRIES`` times, quickly, and the vendor then stops the run with
``unreachable`` (one line naming its base-URL setting) instead of every symbol spending
minutes on backoffs. Once the server has answered, a connect failure is a blip and gets
the usual policy.

The key travels in the query string (both vendors take it there), and urllib3 logs each
request line at DEBUG: a filter on its logger masks the key there too.

Python 3.9-compatible, like the rest of the providers.
"""

from __future__ import annotations

import dataclasses
import email.message
import logging
import math
import random
import socket
import time
import urllib.parse
from typing import Any, Callable, TypeVar

import requests
import tenacity
import urllib3.exceptions

from marketlake.providers.base import Limiter, ServerUnreachable, one_line
from marketlake.redaction import redact

# One request's timeout (connect, and each read), in seconds. The Lambda's time budget
# (aws.lambda_ingest) is computed from it.
TIMEOUT_SECONDS = 30.0
# The longest wait between two attempts, whatever the backoff or Retry-After says. The
# Lambda's time budget (aws.lambda_ingest) is computed from it.
MAX_BACKOFF_SECONDS = 120.0
# The run's first contact (no answer from the server yet): a connect failure is retried
# this many times, FIRST_CONTACT_BACKOFF_SECONDS then twice that apart (3 s in all).
FIRST_CONTACT_RETRIES = 2
FIRST_CONTACT_BACKOFF_SECONDS = 1.0
HEADERS = {"User-Agent": "marketlake", "Accept": "application/json, text/csv"}

T = TypeVar("T")


class Retryable(Exception):
    """An attempt failed in a way worth another attempt."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Transport(Retryable):
    pass


class Unreached(Transport):
    """The connection could not be made, so the request never reached the server.
    ``timed_out``: the connect timeout ran out (already a long wait)."""

    def __init__(self, reason: str, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


class Throttled(Retryable):
    pass


class Garbled(Retryable):
    def __init__(self, reason: str, payload: str) -> None:
        super().__init__(reason)
        self.payload = payload


class Unrequestable(Exception):
    """The URL cannot be requested at all (a malformed base URL): retrying cannot help.
    The text is redacted."""


@dataclasses.dataclass(frozen=True)
class Reply:
    """What came back: the HTTP status, the body decoded, and a Retry-After in seconds."""

    status: int
    text: str
    retry_after: float | None = None


class _MaskKeys(logging.Filter):
    """Masks any apikey= value in a record (urllib3's request lines carry the URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message, None)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_URLLIB3_LOG = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _MaskKeys) for f in _URLLIB3_LOG.filters):
    _URLLIB3_LOG.addFilter(_MaskKeys())


def retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None  # absent: our own backoff
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None  # an HTTP date (or no number): fall back to our own backoff
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _charset(content_type: str | None) -> str | None:
    # requests would guess ISO-8859-1 for text/* without a charset; both vendors mean UTF-8.
    message = email.message.Message()
    message["Content-Type"] = content_type or ""
    return message.get_content_charset()


def _decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name in Content-Type
        return raw.decode("utf-8", errors="replace")


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost reason of a requests/urllib3 error (its text carries no URL)."""
    seen = exc
    while True:
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException):
            args = [a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)]
            inner = args[-1] if args else None
        if inner is None or inner is seen:
            return seen
        seen = inner


def _unreached_reason(cause: BaseException, url: str) -> str:
    """Why the connection could not be made, short: urllib3's text leads with the
    connection object's repr."""
    inner = cause.__cause__ if cause.__cause__ is not None else cause
    if isinstance(cause, (urllib3.exceptions.NameResolutionError, socket.gaierror)):
        host = urllib.parse.urlsplit(url).hostname or "the host"
        why = inner.strerror if isinstance(inner, OSError) and inner.strerror else str(inner)
        return f"name resolution failed for {host} ({why})"
    if isinstance(inner, OSError) and inner.strerror:
        return f"connection failed: {inner.strerror}"
    return f"connection failed: {str(cause).split('): ', 1)[-1]}"


class HttpClient:
    """GETs a URL that carries the key. Every status comes back as a ``Reply`` (the vendor
    judges it); no answer at all raises ``Transport``. Every text it raises is redacted."""

    def __init__(
        self, timeout: float, redact: Callable[[str | None], str], headers: dict | None = None
    ) -> None:
        self.timeout = float(timeout)
        self._redact = redact
        self._headers = dict(HEADERS if headers is None else headers)
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def get(self, url: str) -> Reply:
        timed_out = Transport(f"no answer within {self.timeout:g}s")
        try:
            response = self._session.get(url, headers=self._headers, timeout=self.timeout)
            raw = response.content
        except (ValueError, requests.exceptions.URLRequired) as exc:
            # A malformed base URL (MissingSchema, InvalidURL... are ValueErrors): retrying
            # cannot help, and the text quotes the key.
            raise Unrequestable(
                f"cannot request {self._redact(url)}: {self._redact(str(exc))}"
            ) from None
        except requests.exceptions.ConnectTimeout:
            # First, as it is a Timeout too. No connection: the request was never sent.
            raise Unreached(f"no connection within {self.timeout:g}s", timed_out=True) from None
        except requests.exceptions.Timeout:
            # A read timeout: the request went out, and the server may have counted it.
            raise timed_out from None
        except requests.exceptions.RequestException as exc:
            cause = _root_cause(exc)
            # First: urllib3's NewConnectionError (and NameResolutionError, a subclass) is
            # also a ConnectTimeoutError. Raised before a byte of the request was sent.
            if isinstance(
                cause,
                (urllib3.exceptions.NewConnectionError, ConnectionRefusedError, socket.gaierror),
            ):
                raise Unreached(self._redact(_unreached_reason(cause, url))) from None
            if isinstance(cause, (TimeoutError, urllib3.exceptions.TimeoutError)):
                raise timed_out from None  # a timeout while the body was being read
            # RemoteDisconnected, IncompleteRead, ConnectionResetError...: a dropped answer.
            reason = self._redact(f"{type(cause).__name__}: {cause}")
            raise Transport(f"connection dropped: {reason}") from None
        seconds = retry_after(response.headers)
        text = _decode(raw, _charset(response.headers.get("Content-Type")))
        response.close()
        return Reply(response.status_code, text, seconds)


class KeyedClient:
    """One provider's requests: each attempt waits for the caller's limiter, is counted and
    logged (redacted); ``retry`` runs attempts under the shared policy and reports each
    backoff through ``on_event("retry", ...)``.

    ``attempts`` counts the attempts since the provider last reset it (one logical call:
    a fetch, its retries and pages); ``requests_made`` counts every attempt sent (one that
    could not connect was not). ``answered``: the server has answered at least once.
    """

    def __init__(
        self,
        api_key: str,
        *,
        log: logging.Logger,
        timeout: float = TIMEOUT_SECONDS,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_event: Callable[[str, str], None] | None = None,
        max_retries: int = 3,
        backoff_seconds: float = 15.0,
        max_backoff_seconds: float = MAX_BACKOFF_SECONDS,
        jitter_seconds: float = 0.0,
        rng: random.Random | None = None,
        headers: dict | None = None,
    ) -> None:
        if max_retries < 0 or backoff_seconds < 0 or jitter_seconds < 0 or timeout <= 0:
            raise ValueError("max_retries, backoff and jitter must be >= 0, timeout > 0")
        self._api_key = api_key
        self.log = log
        self.timeout = float(timeout)
        self.limiter = limiter
        self.sleep = sleep
        self.on_event = on_event
        self.max_retries = int(max_retries)
        self.backoff_seconds = float(backoff_seconds)
        self.max_backoff_seconds = float(max_backoff_seconds)
        self.jitter_seconds = float(jitter_seconds)
        # A seeded generator keeps jittered waits reproducible; jitter is off by default.
        self._rng = rng if rng is not None else random.Random()
        self._http = HttpClient(self.timeout, self.redact, headers)
        self.attempts = 0
        self.requests_made = 0
        self.answered = False

    def close(self) -> None:
        self._http.close()

    def redact(self, text: str | None) -> str:
        return redact(text, self._api_key)

    def excerpt(self, text: str, size: int = 300) -> str:
        return one_line(self.redact(text))[:size]

    def event(self, kind: str, message: str) -> None:
        message = self.redact(message)
        self.log.info("%s: %s", kind, message)
        if self.on_event is not None:
            self.on_event(kind, message)

    def get(self, url: str) -> Reply:
        """One attempt: the limiter's turn first (its ``QuotaExhausted`` propagates), then
        the request."""
        if self.limiter is not None:
            self.limiter.acquire()
        self.attempts += 1
        self.log.debug("GET %s", self.redact(url))
        try:
            reply = self._http.get(url)
        except (Unreached, Unrequestable):
            # Never sent, so the vendor did not count it: neither does the day's quota. A
            # read timeout or a dropped answer stays counted (a Transport, below): the
            # request had gone out and the server may have counted it.
            if self.limiter is not None:
                self.limiter.refund()
            raise
        except Transport:
            self.requests_made += 1
            raise
        self.requests_made += 1
        self.answered = True
        return reply

    def unreachable(self, setting: str, base_url: str, exc: Unreached) -> ServerUnreachable:
        """The run-stopping error for a first request that could not connect: one line
        naming the base-URL setting, its value and why."""
        return ServerUnreachable(
            f"cannot reach {setting} ({self.redact(base_url)}): {self.redact(exc.reason)}; "
            "check the network or the setting"
        )

    def _first_contact(self, exc: BaseException | None) -> bool:
        """A connect failure before the server ever answered: no network or a wrong base
        URL, most likely, rather than a blip."""
        return isinstance(exc, Unreached) and not self.answered

    def wait(self, state: tenacity.RetryCallState) -> float:
        exponential = tenacity.wait_exponential(
            multiplier=self.backoff_seconds, max=self.max_backoff_seconds
        )
        seconds = float(exponential(state))
        if self.jitter_seconds:
            seconds += self._rng.uniform(0.0, self.jitter_seconds)
        exc = state.outcome.exception() if state.outcome is not None else None
        if self._first_contact(exc):
            return FIRST_CONTACT_BACKOFF_SECONDS * 2 ** (state.attempt_number - 1)
        after = getattr(exc, "retry_after", None)
        if after is not None:  # the server knows better, within our ceiling
            seconds = max(seconds, min(after, self.max_backoff_seconds))
        return seconds

    def retry(self, attempt: Callable[[], T], label: str) -> T:
        """``attempt()`` until it returns, raises something not ``Retryable``, or the retries
        are spent (then its last ``Retryable`` propagates for the vendor to translate). A
        connect failure before the server ever answered has fewer, quicker retries (none
        after a connect timeout, which has waited long already); then the vendor stops the
        run (``unreachable``)."""
        first_contact = min(FIRST_CONTACT_RETRIES, self.max_retries)

        def retries(exc: BaseException | None) -> int:
            if not self._first_contact(exc):
                return self.max_retries
            return 0 if getattr(exc, "timed_out", False) else first_contact

        def stop(state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome is not None else None
            return state.attempt_number > retries(exc)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            message = (
                f"{label}: {getattr(exc, 'reason', exc)}; retry "
                f"{state.attempt_number}/{retries(exc)} in {wait:.1f}s"
            )
            if self._first_contact(exc):
                # Logged only: if it fails, the one line that stops the run says it all.
                self.log.info("retry: %s", self.redact(message))
            else:
                self.event("retry", message)

        retrying = tenacity.Retrying(
            stop=stop,
            wait=self.wait,
            retry=tenacity.retry_if_exception_type(Retryable),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt)
