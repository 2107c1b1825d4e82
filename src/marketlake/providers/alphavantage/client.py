"""What an Alpha Vantage HTTP status means. The request itself, its retries and pacing are
providers.http's (shared with the other vendors); Alpha Vantage says most things with HTTP
200, so only transport trouble and a few statuses are judged here.
"""

from __future__ import annotations

from typing import Callable

from marketlake.providers.alphavantage.errors import FetchFailed
from marketlake.providers.http import (
    TIMEOUT_SECONDS,
    Garbled,
    Reply,
    Retryable,
    Throttled,
    Transport,
)

__all__ = [
    "TIMEOUT_SECONDS",
    "Garbled",
    "Retryable",
    "Throttled",
    "Transport",
    "_PremiumRefusal",
    "body_of",
]


class _PremiumRefusal(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def body_of(reply: Reply, url: str, redact: Callable[[str | None], str]) -> str:
    """The body of an answer Alpha Vantage gave with a success status. HTTP 429 and 5xx are
    worth another attempt (``Transport``); any other error status is final."""
    status = reply.status
    if status >= 400:
        if status == 429 or 500 <= status <= 599:
            raise Transport(f"HTTP {status}", reply.retry_after)
        raise FetchFailed(
            f"Alpha Vantage answered HTTP {status} at {redact(url)}; check the base URL"
        )
    return reply.text
