"""US/Eastern trading sessions on the NYSE (XNYS) calendar."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

from marketlake.errors import ConfigError

EASTERN = ZoneInfo("America/New_York")
# exchange_calendars only knows sessions inside the bounds it is built with.
CALENDAR_START = "2000-01-03"


@lru_cache(maxsize=1)
def nyse():
    end = (pd.Timestamp.now(tz="UTC") + pd.DateOffset(years=1)).strftime("%Y-%m-%d")
    return xcals.get_calendar("XNYS", start=CALENDAR_START, end=end)


def parse_as_of(text: str | None) -> dt.datetime:
    """A date means "after that day's close"; an ISO datetime needs an offset."""
    if text is None or text == "":
        return dt.datetime.now(dt.timezone.utc)
    text = text.strip()
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        pass
    else:
        # 23:59 Eastern is after the close on every session, early closes included.
        moment = dt.datetime.combine(day, dt.time(23, 59), tzinfo=EASTERN)
        if day == dt.datetime.now(EASTERN).date():
            return dt.datetime.now(dt.timezone.utc)  # today: as of now, so the close may be ahead
        return _not_future(moment, text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--as-of {text!r} is neither a date (2024-06-28) "
            "nor an ISO datetime with offset (2024-06-28T16:30:00-04:00)"
        ) from None
    if moment.tzinfo is None:
        raise ConfigError(
            f"--as-of {text!r} has no UTC offset; add one, e.g. {text}-04:00 or {text}Z"
        )
    return _not_future(moment, text)


def _not_future(moment: dt.datetime, text: str) -> dt.datetime:
    # A run "as of" a moment to come would store bars that cannot exist yet.
    if moment > dt.datetime.now(dt.timezone.utc):
        raise ConfigError(f"--as-of {text} is in the future; give a past date, or omit it for now")
    return moment


def last_closed_session(as_of: dt.datetime) -> dt.date:
    """The latest session whose close is at or before `as_of`: later bars are provisional."""
    cal = nyse()
    closes = cal.closes  # session -> close time (UTC), early closes included
    moment = pd.Timestamp(as_of).tz_convert("UTC")
    if moment < closes.iloc[0]:
        raise ConfigError(
            f"as-of {as_of.isoformat()} is before {CALENDAR_START}, the calendar start"
        )
    if moment > closes.iloc[-1] + pd.Timedelta(days=7):
        raise ConfigError(
            f"as-of {as_of.isoformat()} is past the NYSE calendar's end "
            f"({closes.index[-1].date()}); upgrade exchange-calendars"
        )
    position = closes.searchsorted(moment, side="right") - 1
    return closes.index[position].date()


def sessions_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """NYSE sessions in [start, end], both inclusive."""
    if end < start:
        return []
    cal = nyse()
    lo = max(pd.Timestamp(start), cal.first_session)
    hi = min(pd.Timestamp(end), cal.last_session)
    if hi < lo:
        return []
    return [ts.date() for ts in cal.sessions_in_range(lo, hi)]


def eastern_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(EASTERN).date()
