"""marketlake.fields: the one parser per field the provider, import and validation share."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from marketlake import fields


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-07-01", dt.date(2024, 7, 1)),
        (" 2024-07-01 ", dt.date(2024, 7, 1)),
        (dt.date(2024, 7, 1), dt.date(2024, 7, 1)),
        (dt.datetime(2024, 7, 1, 16, 0), dt.date(2024, 7, 1)),
    ],
)
def test_a_date_is_yyyy_mm_dd_or_a_date(value, expected):
    assert fields.parse_date(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-02-30", "trade_date '2024-02-30' is not a calendar date"),
        ("20240701", "trade_date '20240701' is not YYYY-MM-DD"),
        ("٢٠٢٤-٠٧-٠١", "is not YYYY-MM-DD"),
        (None, "trade_date '' is not YYYY-MM-DD"),
        (20240701, "trade_date '20240701' is not YYYY-MM-DD"),
    ],
)
def test_anything_else_is_not_a_date_and_says_so(value, message):
    with pytest.raises(fields.FieldError, match=message) as caught:
        fields.parse_date(value)
    assert caught.value.problem == fields.NOT_A_DATE
    assert fields.date_or_none(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("10.25", 10.25), ("1e1", 10.0), (" .5 ", 0.5), (7, 7.0), (np.float64(2.5), 2.5)],
)
def test_a_price_is_a_finite_decimal(value, expected):
    assert fields.parse_price(value, "open") == expected


@pytest.mark.parametrize(
    "value", ["ten", "", "inf", "nan", "1_000", "١٠", True, None, float("nan")]
)
def test_anything_else_is_not_a_price(value):
    with pytest.raises(fields.FieldError) as caught:
        fields.parse_price(value, "open")
    assert caught.value.problem == fields.NOT_A_NUMBER
    assert str(caught.value).startswith("open ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1200", 1200),
        ("3.0", 3),
        ("1.2e6", 1_200_000),
        (np.int64(5), 5),
        (5.0, 5),
        ("9223372036854775807", 2**63 - 1),
        ("9007199254740993", 9007199254740993),  # exact: through float64 it would change
    ],
)
def test_a_volume_is_a_whole_number_read_exactly(value, expected):
    assert fields.parse_volume(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("lots", fields.NOT_A_NUMBER),
        ("١٢٣", fields.NOT_A_NUMBER),
        (float("inf"), fields.NOT_A_NUMBER),
        (True, fields.NOT_A_NUMBER),
        ("12.25", fields.NOT_WHOLE),
        (1.5, fields.NOT_WHOLE),
        ("-1.5", fields.NEGATIVE),
        ("9223372036854775808", fields.TOO_LARGE),
        ("1e999999", fields.TOO_LARGE),
        ("-1e30", fields.NEGATIVE),
    ],
)
def test_anything_else_is_not_a_volume_with_what_validation_reports(value, problem):
    with pytest.raises(fields.FieldError) as caught:
        fields.parse_volume(value)
    assert caught.value.problem == problem
    assert str(caught.value).startswith("volume")


def test_split_factors_and_amounts_keep_their_own_bounds_and_messages():
    assert fields.parse_split_factor("0.25") == 0.25
    assert fields.parse_amount("0") == 0.0
    with pytest.raises(fields.FieldError, match=r"split_factor 0 is not > 0"):
        fields.parse_split_factor("0")
    with pytest.raises(fields.FieldError, match=r"amount -0.5 is negative"):
        fields.parse_amount("-0.5")
    with pytest.raises(fields.FieldError, match=r"amount '٠٫٥' is not a finite number"):
        fields.parse_amount("٠٫٥")
