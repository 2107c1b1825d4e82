"""One HTTP GET to Alpha Vantage on a ``requests`` Session, and what a failed attempt is
raised as: a ``_Retryable`` (transport trouble, throttling, garbage: worth another attempt,
retried by the provider with tenacity) or a final ``FetchFailed``.

The key travels in the query string (Alpha Vantage takes it nowhere else), and urllib3 logs
each request line at DEBUG: a filter on its logger masks the key there too.
"""

from __future__ import annotations

import email.message
import logging
import math
from typing import Any, Callable

import requests
import urllib3.exceptions

from marketlake.providers.alphavantage.errors import FetchFailed
from marketlake.redaction import redact

# One request's timeout (connect, and each read), in seconds. The Lambda's time budget
# (aws.lambda_ingest) is computed from it.
TIMEOUT_SECONDS = 30.0
HEADERS = {"User-Agent": "marketlake", "Accept": "application/json, text/csv"}


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


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None  # absent: our own backoff
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None  # an HTTP date (or no number): fall back to our own backoff
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _charset(content_type: str | None) -> str | None:
    # requests would guess ISO-8859-1 for text/* without a charset; Alpha Vantage means UTF-8.
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


class HttpClient:
    """GETs a URL that carries the key; every text it raises is redacted with ``redact``."""

    def __init__(self, timeout: float, redact: Callable[[str | None], str]) -> None:
        self.timeout = float(timeout)
        self._redact = redact
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def get(self, url: str) -> str:
        timed_out = _Transport(f"no answer within {self.timeout:g}s")
        try:
            response = self._session.get(url, headers=HEADERS, timeout=self.timeout)
            raw = response.content
        except (ValueError, requests.exceptions.URLRequired) as exc:
            # A malformed base URL (MissingSchema, InvalidURL... are ValueErrors): retrying
            # cannot help, and the text quotes the key.
            raise FetchFailed(
                f"cannot request {self._redact(url)}: {self._redact(str(exc))}; "
                "check ALPHAVANTAGE_BASE_URL"
            ) from None
        except requests.exceptions.Timeout:
            raise timed_out from None
        except requests.exceptions.RequestException as exc:
            cause = _root_cause(exc)
            # First: urllib3's NewConnectionError is also a ConnectTimeoutError.
            if isinstance(cause, (urllib3.exceptions.NewConnectionError, ConnectionRefusedError)):
                reason = self._redact(str(cause))
                raise _Transport(f"connection failed: {reason}") from None
            if isinstance(cause, (TimeoutError, urllib3.exceptions.TimeoutError)):
                raise timed_out from None  # a timeout while the body was being read
            # RemoteDisconnected, IncompleteRead, ConnectionResetError...: a dropped answer.
            reason = self._redact(f"{type(cause).__name__}: {cause}")
            raise _Transport(f"connection dropped: {reason}") from None
        status = response.status_code
        if status >= 400:
            retry_after = _retry_after(response.headers)
            response.close()
            if status == 429 or 500 <= status <= 599:
                raise _Transport(f"HTTP {status}", retry_after)
            raise FetchFailed(
                f"Alpha Vantage answered HTTP {status} at {self._redact(url)}; check the base URL"
            )
        return _decode(raw, _charset(response.headers.get("Content-Type")))
