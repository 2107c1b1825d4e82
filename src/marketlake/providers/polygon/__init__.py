"""Polygon.io (Massive since October 2025): grouped daily bars for the whole US market,
one ticker's range, and market-wide splits and dividends, by concern:

errors.py    what its trouble is raised as (each one of providers.base's neutral errors)
answers.py   what a reply is, from its status and body: data, which refusal, or garbage
parse.py     bars and corporate actions out of a data answer; which tickers can be symbols
provider.py  PolygonProvider: URLs, pages (next_url), what each answer class becomes

Requests, pacing, retries and redaction are providers.http's, shared with Alpha Vantage.
Python 3.9-compatible, like the rest of the library's lower layers.
"""

from marketlake.providers.base import GroupedDay
from marketlake.providers.polygon.answers import (
    BEYOND_PLAN,
    GARBLED,
    INVALID_KEY,
    NOT_ENTITLED,
    OK,
    REFUSED,
    SERVER_ERROR,
    THROTTLED,
    Answer,
    classify,
)
from marketlake.providers.polygon.errors import (
    POLYGON_KEY_HELP,
    FetchFailed,
    InvalidApiKey,
    NotEntitled,
    PayloadError,
    PlanHistoryLimit,
    PolygonError,
    RateLimited,
)
from marketlake.providers.polygon.parse import (
    ACTION_COLUMNS,
    MAX_TICKER_LENGTH,
    parse_aggs,
    parse_dividends,
    parse_grouped,
    parse_splits,
    split_value,
    ticker_problem,
)
from marketlake.providers.polygon.provider import (
    AGGS_LIMIT,
    DEFAULT_BASE_URL,
    HISTORY_START,
    REFERENCE_LIMIT,
    PolygonProvider,
)

__all__ = [
    "ACTION_COLUMNS",
    "AGGS_LIMIT",
    "BEYOND_PLAN",
    "DEFAULT_BASE_URL",
    "GARBLED",
    "HISTORY_START",
    "INVALID_KEY",
    "MAX_TICKER_LENGTH",
    "NOT_ENTITLED",
    "OK",
    "POLYGON_KEY_HELP",
    "REFERENCE_LIMIT",
    "REFUSED",
    "SERVER_ERROR",
    "THROTTLED",
    "Answer",
    "FetchFailed",
    "GroupedDay",
    "InvalidApiKey",
    "NotEntitled",
    "PayloadError",
    "PlanHistoryLimit",
    "PolygonError",
    "PolygonProvider",
    "RateLimited",
    "classify",
    "parse_aggs",
    "parse_dividends",
    "parse_grouped",
    "parse_splits",
    "split_value",
    "ticker_problem",
]
