"""US/Eastern trading sessions on the NYSE calendar: --as-of parsing and closed sessions."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from marketlake.errors import ConfigError
from marketlake.sessions import (
    eastern_date,
    last_closed_session,
    parse_as_of,
    sessions_between,
)

NY = ZoneInfo("America/New_York")
UTC = dt.timezone.utc


def eastern(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=NY)


# -- parse_as_of ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offset_hours"),
    [("2024-07-03", -4), ("2024-01-05", -5)],  # summer (EDT) and winter (EST)
)
def test_a_date_means_23_59_eastern_that_day(text, offset_hours):
    moment = parse_as_of(text)
    assert moment.tzinfo is not None
    local = moment.astimezone(NY)
    assert local.date() == dt.date.fromisoformat(text)
    assert (local.hour, local.minute) == (23, 59)
    assert moment.utcoffset() == dt.timedelta(hours=offset_hours)


def test_an_iso_datetime_with_offset_is_that_moment():
    moment = parse_as_of("2024-06-28T16:30:00-04:00")
    assert moment == dt.datetime(2024, 6, 28, 20, 30, tzinfo=UTC)


def test_an_iso_datetime_in_utc_with_z():
    assert parse_as_of(" 2024-06-28T20:30:00Z ") == dt.datetime(2024, 6, 28, 20, 30, tzinfo=UTC)


def test_no_offset_is_a_config_error_that_suggests_one():
    with pytest.raises(ConfigError) as info:
        parse_as_of("2024-06-28T16:30:00")
    assert "offset" in str(info.value)
    assert "2024-06-28T16:30:00-04:00" in str(info.value)


@pytest.mark.parametrize("text", ["yesterday", "2024-02-30", "28/06/2024", "2024-06-28T25:00Z"])
def test_garbage_is_a_config_error_quoting_the_input(text):
    with pytest.raises(ConfigError) as info:
        parse_as_of(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["2999-01-04", "2999-01-04T10:00:00-05:00"])
def test_a_future_moment_is_a_config_error(text):
    with pytest.raises(ConfigError, match="future"):
        parse_as_of(text)


def test_a_moment_a_minute_ahead_is_future():
    ahead = dt.datetime.now(UTC) + dt.timedelta(minutes=1)
    with pytest.raises(ConfigError, match="future"):
        parse_as_of(ahead.isoformat())


def test_no_as_of_means_now():
    before = dt.datetime.now(UTC)
    moment = parse_as_of(None)
    assert before <= moment <= dt.datetime.now(UTC)


# -- last_closed_session ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "session"),
    [
        # A regular Monday: the close is 16:00 Eastern.
        ("2024-03-11 15:59", "2024-03-08"),  # before the close: Friday's session
        ("2024-03-11 16:00", "2024-03-11"),  # at the close: that session is closed
        ("2024-03-11 23:59", "2024-03-11"),
        ("2024-03-12 09:30", "2024-03-11"),  # the next open: still the previous session
        # Early close (13:00) on the eve of Independence Day.
        ("2024-07-03 12:59", "2024-07-02"),
        ("2024-07-03 13:00", "2024-07-03"),
        ("2024-07-03 14:30", "2024-07-03"),
        # The holiday itself and the weekend after it.
        ("2024-07-04 18:00", "2024-07-03"),
        ("2024-07-05 15:00", "2024-07-03"),
        ("2024-07-06 12:00", "2024-07-05"),
        ("2024-07-07 23:00", "2024-07-05"),
        ("2024-07-08 10:00", "2024-07-05"),
        # Good Friday 2024 and New Year's Day.
        ("2024-03-29 20:00", "2024-03-28"),
        ("2024-01-01 20:00", "2023-12-29"),
    ],
)
def test_last_closed_session(moment, session):
    assert last_closed_session(eastern(moment)) == dt.date.fromisoformat(session)


def test_last_closed_session_honours_the_offset_of_any_zone():
    # 20:59 UTC in January is 15:59 EST (before the close); 21:00 UTC is the close.
    assert last_closed_session(dt.datetime(2024, 1, 5, 20, 59, tzinfo=UTC)) == dt.date(2024, 1, 4)
    assert last_closed_session(dt.datetime(2024, 1, 5, 21, 0, tzinfo=UTC)) == dt.date(2024, 1, 5)
    tokyo = dt.timezone(dt.timedelta(hours=9))
    # Saturday morning in Tokyo is Friday evening in New York.
    assert last_closed_session(dt.datetime(2024, 1, 6, 7, 0, tzinfo=tokyo)) == dt.date(2024, 1, 5)


def test_a_parsed_date_is_after_that_days_close():
    assert last_closed_session(parse_as_of("2024-07-03")) == dt.date(2024, 7, 3)
    assert last_closed_session(parse_as_of("2024-07-04")) == dt.date(2024, 7, 3)


def test_before_the_calendar_start_is_a_config_error():
    with pytest.raises(ConfigError, match="calendar start"):
        last_closed_session(eastern("1999-06-01 12:00"))


def test_eastern_date_of_a_utc_evening():
    # 02:00 UTC on the 4th is still the 3rd in New York.
    assert eastern_date(dt.datetime(2024, 7, 4, 2, 0, tzinfo=UTC)) == dt.date(2024, 7, 3)


# -- sessions_between -------------------------------------------------------------------


def test_2024_has_252_nyse_sessions():
    sessions = sessions_between(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert len(sessions) == 252
    assert sessions[0] == dt.date(2024, 1, 2)
    assert sessions[-1] == dt.date(2024, 12, 31)


def test_sessions_skip_weekends_and_holidays():
    sessions = sessions_between(dt.date(2024, 6, 28), dt.date(2024, 7, 9))
    assert sessions == [
        dt.date(2024, 6, 28),
        dt.date(2024, 7, 1),
        dt.date(2024, 7, 2),
        dt.date(2024, 7, 3),  # early close, still a session
        dt.date(2024, 7, 5),
        dt.date(2024, 7, 8),
        dt.date(2024, 7, 9),
    ]
    whole_year = sessions_between(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert all(d.weekday() < 5 for d in whole_year)
    holidays = {dt.date(2024, 1, 1), dt.date(2024, 3, 29), dt.date(2024, 12, 25)}
    assert holidays.isdisjoint(whole_year)
    assert all(isinstance(d, dt.date) and not isinstance(d, dt.datetime) for d in whole_year)


def test_sessions_between_is_inclusive_and_empty_when_reversed():
    assert sessions_between(dt.date(2024, 7, 3), dt.date(2024, 7, 3)) == [dt.date(2024, 7, 3)]
    assert sessions_between(dt.date(2024, 7, 6), dt.date(2024, 7, 7)) == []
    assert sessions_between(dt.date(2024, 7, 9), dt.date(2024, 7, 1)) == []
