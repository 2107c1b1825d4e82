"""Alpha Vantage ``TIME_SERIES_DAILY`` (and SPLITS, DIVIDENDS, EARNINGS), by concern:

errors.py    what its trouble is raised as (each one of providers.base's neutral errors)
answers.py   what a body is: data, which refusal, or garbage (``classify``)
parse.py     bars, corporate actions and earnings out of a data answer (``parse_json``, ...)
client.py    what an HTTP status means (the GET itself is providers.http's, shared)
provider.py  AlphaVantageProvider: requests, retries (providers.http), fallbacks

Python 3.9-compatible, like the rest of the library's lower layers.
"""

from marketlake.providers.alphavantage.answers import (
    ACTION_FIELDS,
    CSV_HEADER,
    DAILY_LIMIT,
    EARNINGS_FIELDS,
    EARNINGS_FUNCTION,
    EARNINGS_KEY,
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
    Answer,
    classify,
)
from marketlake.providers.alphavantage.client import TIMEOUT_SECONDS
from marketlake.providers.alphavantage.errors import (
    KEY_HELP,
    AlphaVantageError,
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
    JSON_FIELDS,
    REJECTED_COLUMNS,
    ParsedBars,
    empty_rejected,
    parse_actions,
    parse_csv,
    parse_earnings,
    parse_json,
)
from marketlake.providers.alphavantage.provider import (
    DATATYPES,
    DEFAULT_BASE_URL,
    MAX_BACKOFF_SECONDS,
    OUTPUTSIZES,
    AlphaVantageProvider,
    FetchResult,
)
from marketlake.redaction import redact

__all__ = [
    "ACTION_FIELDS",
    "CSV_HEADER",
    "DAILY_LIMIT",
    "DATATYPES",
    "DEFAULT_BASE_URL",
    "EARNINGS_FIELDS",
    "EARNINGS_FUNCTION",
    "EARNINGS_KEY",
    "FUNCTION",
    "GARBLED",
    "INVALID_KEY",
    "INVALID_SYMBOL",
    "JSON_FIELDS",
    "KEY_HELP",
    "MAX_BACKOFF_SECONDS",
    "OK_CSV",
    "OK_JSON",
    "OUTPUTSIZES",
    "PREMIUM_ONLY",
    "REJECTED_COLUMNS",
    "SERIES_KEY",
    "THROTTLED",
    "TIMEOUT_SECONDS",
    "UNKNOWN_FUNCTION",
    "AlphaVantageError",
    "AlphaVantageProvider",
    "Answer",
    "DailyLimitReached",
    "FetchFailed",
    "FetchResult",
    "InvalidApiKey",
    "InvalidSymbol",
    "ParsedBars",
    "PayloadError",
    "PremiumOnly",
    "RateLimited",
    "UnknownFunction",
    "classify",
    "empty_rejected",
    "parse_actions",
    "parse_csv",
    "parse_earnings",
    "parse_json",
    "redact",
]
