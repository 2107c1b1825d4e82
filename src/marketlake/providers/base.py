"""The Provider protocol: where daily bars come from, what a provider may say went wrong,
and the rate limiter it is handed.

Ingest handles every provider's trouble through the error classes here, without knowing
which vendor raised them:

=====================  ===========================================================
``Fatal``              nothing more can be fetched this run (a bad key): stop at once
``ServerUnreachable``  a ``Fatal``: the run's first request could not connect
``NotOffered``         a ``Fatal`` for bars; for corporate actions the feature is off
``Retriable``          transport trouble or throttling after every retry: the symbol
                       is asked again next run, the others carry on
``QuotaExhausted``     the day's API budget is spent: the remaining symbols wait
``UnknownSymbol``      the provider does not know the symbol: skipped, recorded
``UnusablePayload``    an answer that cannot be used: kept in quarantine with
                       ``payload``
``BeyondPlan``         the account's plan does not reach the dates asked (``asked_from``):
                       ingest finds and reports the plan's history edge
=====================  ===========================================================

Python 3.9-compatible: the Glue job imports it (through ingest.validate).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Callable, Protocol

import pandas as pd

from marketlake.errors import MarketlakeError

# What every provider returns: one row per session, oldest first, unique trade_date.
# trade_date holds datetime.date objects; prices are float64, volume int64. Values are
# as received: validation (ingest.validate) decides what reaches the raw zone.
BAR_COLUMNS = ["trade_date", "open", "high", "low", "close", "volume"]
# Rows a provider could not parse: every value a string as received, plus why.
REJECTED_COLUMNS = [*BAR_COLUMNS, "reason"]
# A market-wide answer (one session, every symbol): the same, with the symbol first.
GROUPED_COLUMNS = ["symbol", *BAR_COLUMNS]
GROUPED_REJECTED_COLUMNS = ["symbol", *REJECTED_COLUMNS]
_EXCERPT = 160


def empty_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trade_date": pd.Series([], dtype=object),
            "open": pd.Series([], dtype="float64"),
            "high": pd.Series([], dtype="float64"),
            "low": pd.Series([], dtype="float64"),
            "close": pd.Series([], dtype="float64"),
            "volume": pd.Series([], dtype="int64"),
        }
    )


def empty_rejected() -> pd.DataFrame:
    """A ``rejected`` frame with no rows."""
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in REJECTED_COLUMNS})


def empty_grouped_rejected() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in GROUPED_REJECTED_COLUMNS})


def one_line(text: str) -> str:
    return " ".join(text.split())


# -- what can go wrong ------------------------------------------------------------------


class ProviderError(MarketlakeError):
    """Base of every provider error."""


class Fatal(ProviderError):
    """Nothing more can be fetched this run (the key is missing or refused)."""


class NotOffered(Fatal):
    """This account cannot ask for that (a premium-only request, a function not offered)."""


class ServerUnreachable(Fatal):
    """The run's first request could not connect to the vendor (no network, a name that
    does not resolve, a wrong base URL): every symbol would spend minutes retrying the
    same, so the run stops at once. The message names the base-URL setting."""


class Retriable(ProviderError):
    """The provider could not be reached, or kept throttling, after every retry."""


class QuotaExhausted(MarketlakeError):
    """The day's API budget is spent: no further call may be made today.

    ``used_today`` and ``calls_per_day`` are ``None`` when the provider, not our own
    count, said so (e.g. ``alphavantage.DailyLimitReached``).
    """

    def __init__(
        self,
        message: str,
        used_today: int | None = None,
        calls_per_day: int | None = None,
    ) -> None:
        super().__init__(message)
        self.used_today = used_today
        self.calls_per_day = calls_per_day


class UnknownSymbol(ProviderError):
    """The provider does not know the symbol."""

    def __init__(self, message: str, symbol: str) -> None:
        super().__init__(message)
        self.symbol = symbol


class UnusablePayload(ProviderError):
    """The body is not a usable answer (HTML, ``{}``, truncated JSON, wrong CSV header...).

    ``payload`` is the body (redacted when raised by a provider), for quarantine.
    """

    def __init__(self, reason: str, payload: str = "", symbol: str | None = None) -> None:
        excerpt = one_line(payload)[:_EXCERPT]
        super().__init__(f"{reason} (body starts: {excerpt!r})" if excerpt else reason)
        self.reason = reason
        self.payload = payload
        self.symbol = symbol


class BeyondPlan(ProviderError):
    """The account's plan does not reach the dates asked for (a free plan keeps about two
    years of history). Not retried: the same request gets the same refusal.

    ``asked_from`` is the oldest date the request asked for (None when it asked for no
    date); ``vendor_message`` is the vendor's own words, redacted."""

    def __init__(self, message: str, asked_from: dt.date | None, vendor_message: str = "") -> None:
        super().__init__(message)
        self.asked_from = asked_from
        self.vendor_message = vendor_message


# -- what a market-wide provider answers ------------------------------------------------


@dataclasses.dataclass
class GroupedDay:
    """Every symbol's bar for one session, from one market-wide answer.

    ``bars``: GROUPED_COLUMNS (trade_date datetime.date, prices float64, volume int64), one
    row per symbol, symbols spelled as the vendor sends them. ``rejected``:
    GROUPED_REJECTED_COLUMNS, every value a string as received, plus ``reason``.
    ``payload``: the body as received, redacted; ingest quarantines it only when the whole
    answer is unusable (each rejected row carries its own values)."""

    session: dt.date
    bars: pd.DataFrame
    rejected: pd.DataFrame
    payload: str = ""


# -- what a provider is handed and what it offers ------------------------------------------


class Limiter(Protocol):
    """Paces calls (ingest.ratelimit.RateLimiter is the one ingest hands over)."""

    def acquire(self) -> float:
        """Wait for the next call's turn; ``QuotaExhausted`` when the day's budget is spent."""

    def mark_exhausted(self) -> None:
        """The provider says the day's budget is spent: refuse every further call."""

    def refund(self) -> None:
        """The call last acquired never reached the server (no connection): uncount it."""


# A provider's corporate actions: fetch_actions(kind "splits"|"dividends", symbol, until)
# -> rows (date, value) as received; ``NotOffered`` when this account cannot ask for them.
FetchActions = Callable[[str, str, dt.date], pd.DataFrame]
# A provider's quarterly earnings: fetch_earnings(symbol, until) -> the text frame
# lake.earnings.empty_earnings describes (fiscal_date_ending, reported_date, reported_eps as
# received); ``NotOffered`` when this account cannot ask for them.
FetchEarnings = Callable[[str, dt.date], pd.DataFrame]


class Provider(Protocol):
    # Read-only to ingest: a provider may declare each as a class attribute, a property or
    # (fetch_actions) a method.
    @property
    def name(self) -> str:
        """Also the `source` column of the raw zone."""

    @property
    def resends_history(self) -> bool:
        """Each answer repeats recent sessions: ingest compares them with what landed, so a
        corrected bar is rewritten. False: ask only for what follows the watermark."""

    @property
    def last_rejected(self) -> pd.DataFrame:
        """Rows of the last fetch_daily answer that could not be parsed (REJECTED_COLUMNS):
        they go through validation too, and so to quarantine."""

    @property
    def fetch_actions(self) -> FetchActions | None:
        """None: the provider knows no splits or dividends."""

    @property
    def fetch_earnings(self) -> FetchEarnings | None:
        """None: the provider knows no earnings."""

    @property
    def restates_earnings(self) -> bool:
        """Its EPS are restated for every later split (on the share basis of the fetch day),
        not as reported (lake/earnings.py's basis date)."""

    def fetch_daily(self, symbol: str, since: dt.date | None, until: dt.date) -> pd.DataFrame:
        """Bars for sessions in [since, until] (since=None: as far back as the provider goes)."""


class ProviderDefaults:
    """What a provider that declares nothing more has: no resent history, nothing left
    unparsed, no corporate actions, no earnings. Subclass it and define ``name`` and
    ``fetch_daily``."""

    resends_history = False
    fetch_actions: FetchActions | None = None
    fetch_earnings: FetchEarnings | None = None
    restates_earnings = False

    @property
    def last_rejected(self) -> pd.DataFrame:
        return empty_rejected()
