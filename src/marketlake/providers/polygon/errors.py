"""What Polygon trouble is raised as: each class is one of the providers' neutral errors
(providers.base), so ingest handles it without knowing the vendor."""

from __future__ import annotations

from marketlake.config import POLYGON_KEY_HELP
from marketlake.errors import MarketlakeError
from marketlake.providers.base import (
    BeyondPlan,
    Fatal,
    NotOffered,
    Retriable,
    UnusablePayload,
)

__all__ = [
    "POLYGON_KEY_HELP",
    "FetchFailed",
    "InvalidApiKey",
    "NotEntitled",
    "PayloadError",
    "PlanHistoryLimit",
    "PolygonError",
    "RateLimited",
]


class PolygonError(MarketlakeError):
    """Base of every error this package raises."""


class PayloadError(UnusablePayload, PolygonError):
    """The body is not a usable answer (HTML, truncated JSON, JSON of another shape...).
    ``payload`` is the body, redacted, for quarantine."""


class FetchFailed(Retriable, PolygonError):
    """Polygon could not be reached, or answered with an HTTP error, after every retry."""


class RateLimited(Retriable, PolygonError):
    """Polygon kept answering HTTP 429 after every retry."""


class InvalidApiKey(Fatal, PolygonError):
    """The key is missing or Polygon does not know it (fatal for the run)."""


class NotEntitled(NotOffered, PolygonError):
    """The plan does not include this endpoint or data (HTTP 403 other than history)."""


class PlanHistoryLimit(BeyondPlan, PolygonError):
    """The plan does not reach back to ``asked_from`` (HTTP 403: "Your plan doesn't include
    this data timeframe")."""
