"""What Alpha Vantage trouble is raised as: each class is one of the providers' neutral
errors (providers.base), so ingest handles it without knowing the vendor."""

from __future__ import annotations

from marketlake.errors import MarketlakeError
from marketlake.providers.base import (
    Fatal,
    NotOffered,
    QuotaExhausted,
    Retriable,
    UnknownSymbol,
    UnusablePayload,
)

KEY_HELP = (
    "export ALPHAVANTAGE_API_KEY=<your key> (a free key takes a minute at "
    "https://www.alphavantage.co/support/#api-key)"
)


class AlphaVantageError(MarketlakeError):
    """Base of every error this package raises."""


class PayloadError(UnusablePayload, AlphaVantageError):
    """The body is not a usable answer (HTML, ``{}``, truncated JSON, wrong CSV header...).

    ``payload`` is the body (redacted when raised by the provider), for quarantine.
    """


class FetchFailed(Retriable, AlphaVantageError):
    """Alpha Vantage could not be reached or answered with an HTTP error."""


class RateLimited(Retriable, AlphaVantageError):
    """Alpha Vantage kept throttling after every retry."""


class DailyLimitReached(QuotaExhausted, AlphaVantageError):
    """Alpha Vantage says the key's daily limit is reached; defer the remaining symbols."""


class InvalidApiKey(Fatal, AlphaVantageError):
    """The key is missing or Alpha Vantage does not accept it (fatal for the run)."""


class PremiumOnly(NotOffered, AlphaVantageError):
    """The request needs a premium plan and has no free fallback."""


class UnknownFunction(NotOffered, AlphaVantageError):
    """Alpha Vantage does not offer the function asked for (or no longer does)."""


class InvalidSymbol(UnknownSymbol, AlphaVantageError):
    """Alpha Vantage does not know the symbol ("Error Message": "Invalid API call...")."""
