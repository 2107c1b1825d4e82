"""One parser per field of the data: trade date, price, volume, split factor, dividend amount.

The provider's parsers, ``import`` and validation all read values through these, so a value
means the same wherever it comes from. Each raises ``FieldError`` (a ``ValueError``) whose
message names the value, and whose ``problem`` is the short complaint validation reports
("not a number", "not a whole number", ...).

Digits are ASCII only: ``\\d``, ``int()`` and ``float()`` also accept Arabic-Indic and other
Unicode digits ('١٢٣' is 123 to them), which no market file means. Hence no
pandas.to_numeric or dateutil here: both are laxer than the formats these fields have.

Python 3.9-compatible: the Glue job imports it (through ingest.actions).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import numbers
import re
from typing import Any

# Problems (FieldError.problem).
NOT_A_DATE = "not a date"
NOT_A_NUMBER = "not a number"
NOT_WHOLE = "not a whole number"
TOO_LARGE = "too large"
NEGATIVE = "negative"
NOT_POSITIVE = "not positive"

INT64_MAX = 2**63 - 1

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_WHOLE = re.compile(r"([+-]?)([0-9]+)(?:\.0*)?\Z")


class FieldError(ValueError):
    """A value that is not what its field holds. ``str(exc)`` names the value."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


def as_text(value: Any) -> str:
    """A value as the text it was received as (JSON for objects and arrays)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, allow_nan=True)
    return str(value)


def _excerpt(value: Any) -> str:
    return repr(as_text(value)[:40])


def parse_date(value: Any, name: str = "trade_date") -> dt.date:
    """A date, a datetime's date, or YYYY-MM-DD text (surrounding blanks ignored)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        raise FieldError(f"{name} {_excerpt(value)} is not YYYY-MM-DD", NOT_A_DATE)
    year, month, day = (int(p) for p in value.strip().split("-"))
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise FieldError(f"{name} {value.strip()!r} is not a calendar date", NOT_A_DATE) from None


def date_or_none(value: Any) -> dt.date | None:
    """``parse_date``, or None where it would raise."""
    try:
        return parse_date(value)
    except FieldError:
        return None


def _decimal(name: str, value: Any) -> float:
    """A finite number from a real number or decimal text."""
    if isinstance(value, bool):
        raise FieldError(f"{name} is a boolean", NOT_A_NUMBER)
    if isinstance(value, numbers.Real):
        number = float(value)
    elif isinstance(value, str) and _DECIMAL.match(value.strip()):
        number = float(value.strip())
    else:
        raise FieldError(f"{name} {_excerpt(value)} is not a decimal number", NOT_A_NUMBER)
    if not math.isfinite(number):
        raise FieldError(f"{name} {_excerpt(value)} is not finite", NOT_A_NUMBER)
    return number


def parse_price(value: Any, name: str = "price") -> float:
    """A finite price (sign and size are validation's to judge)."""
    return _decimal(name, value)


def parse_volume(value: Any) -> int:
    """A whole number of shares that fits in 64 bits, exactly (never through float64).

    Text may spell it in decimal or exponent notation (3.0, 1.2e6). ``problem`` is what
    validation reports first: a negative volume is "negative" even when it is not whole."""
    if isinstance(value, bool):
        raise FieldError("volume is a boolean", NOT_A_NUMBER)
    whole = f"volume {_excerpt(value)} is not a whole number"
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise FieldError(whole, NOT_A_NUMBER)
        if not float(value).is_integer():
            raise FieldError(whole, NEGATIVE if value < 0 else NOT_WHOLE)
        # typeshed's numbers.Real declares no __int__; float, Fraction and numpy's floats have it.
        number = int(value)  # type: ignore[call-overload]
    elif isinstance(value, str) and (found := _WHOLE.match(value.strip())):
        sign, digits = found.groups()
        digits = digits.lstrip("0") or "0"
        # Length check first: int() refuses very long digit strings on Python 3.11+.
        if len(digits) > 19:
            problem = NEGATIVE if sign == "-" else TOO_LARGE
            raise FieldError(f"volume {value.strip()[:40]!r} does not fit in 64 bits", problem)
        number = -int(digits) if sign == "-" else int(digits)
    elif isinstance(value, str) and _DECIMAL.match(value.strip()):
        exact = decimal.Decimal(value.strip())  # exact, unlike float: 9.3e18 stays 93 * 10**17
        if exact != exact.to_integral_value():
            raise FieldError(whole, NEGATIVE if exact < 0 else NOT_WHOLE)
        if exact.adjusted() > 18:  # checked before int(): 1e999999 would take a while
            problem = NEGATIVE if exact < 0 else TOO_LARGE
            raise FieldError(f"volume {value.strip()[:40]!r} does not fit in 64 bits", problem)
        number = int(exact)
    else:
        raise FieldError(whole, NOT_A_NUMBER)
    if not -INT64_MAX - 1 <= number <= INT64_MAX:
        problem = NEGATIVE if number < 0 else TOO_LARGE
        raise FieldError(f"volume {number} does not fit in 64 bits", problem)
    return number


def _finite(name: str, value: Any) -> float:
    try:
        return _decimal(name, value)
    except FieldError as exc:
        text = repr(str(value)[:40])
        raise FieldError(f"{name} {text} is not a finite number", exc.problem) from None


def parse_split_factor(value: Any) -> float:
    """New shares per old share: 10 for a 10:1 split, 0.25 for a 1:4 reverse split."""
    number = _finite("split_factor", value)
    if number <= 0:
        raise FieldError(f"split_factor {number:g} is not > 0", NOT_POSITIVE)
    return number


def parse_amount(value: Any) -> float:
    """A dividend's cash per share, as declared."""
    number = _finite("amount", value)
    if number < 0:
        raise FieldError(f"amount {number:g} is negative", NEGATIVE)
    return number
