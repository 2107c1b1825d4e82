"""split_valid: what may reach the raw zone, and why the rest may not."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketlake.ingest.validate import split_valid
from marketlake.providers.base import BAR_COLUMNS, empty_bars

D1, D2, D3 = dt.date(2024, 7, 1), dt.date(2024, 7, 2), dt.date(2024, 7, 3)
GOOD = {"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 1000}


def bars(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=BAR_COLUMNS)


def good(day: dt.date, **changes) -> dict:
    return {"trade_date": day, **GOOD, **changes}


def test_good_bars_pass_typed_per_the_provider_contract():
    valid, rejected = split_valid(bars(good(D2), good(D1, volume=0), good(D3, high=10.5)))
    assert rejected.empty
    assert list(rejected.columns) == [*BAR_COLUMNS, "reason"]
    assert list(valid.columns) == BAR_COLUMNS
    # Oldest first, dates as datetime.date, prices float64, volume int64.
    assert list(valid["trade_date"]) == [D1, D2, D3]
    assert all(type(d) is dt.date for d in valid["trade_date"])
    for column in ("open", "high", "low", "close"):
        assert valid[column].dtype == np.float64
    assert valid["volume"].dtype == np.int64
    assert list(valid["volume"]) == [0, 1000, 1000]
    assert list(valid.index) == [0, 1, 2]


def test_string_inputs_as_a_csv_provider_gives_them_are_accepted():
    text = pd.DataFrame(
        {
            "trade_date": [" 2024-07-02", "2024-07-01 "],
            "open": ["10.25", "1e1"],
            "high": ["11", "10.5"],
            "low": ["9.75", "9.5"],
            "close": [" 10.5 ", "10"],
            "volume": ["1200", "3.0"],
        }
    )
    valid, rejected = split_valid(text)
    assert rejected.empty, rejected
    assert list(valid["trade_date"]) == [D1, D2]
    assert list(valid["open"]) == [10.0, 10.25]
    assert list(valid["close"]) == [10.0, 10.5]
    assert list(valid["volume"]) == [3, 1200]
    assert valid["volume"].dtype == np.int64
    assert all(type(d) is dt.date for d in valid["trade_date"])


def test_timestamps_become_dates():
    valid, _ = split_valid(bars(good(pd.Timestamp("2024-07-01")), good(dt.datetime(2024, 7, 2))))
    assert list(valid["trade_date"]) == [D1, D2]
    assert all(type(d) is dt.date for d in valid["trade_date"])


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"trade_date": "2024-13-01"}, "unparseable trade_date"),
        ({"trade_date": "July 1st"}, "unparseable trade_date"),
        ({"trade_date": None}, "unparseable trade_date"),
        ({"open": "ten"}, "open is not a number"),
        ({"high": ""}, "high is not a number"),
        ({"close": float("nan")}, "close is not a number"),
        ({"low": float("inf")}, "low is not a number"),
        ({"open": 0.0, "low": 0.0}, "open is not positive"),
        ({"close": -1.0}, "close is not positive"),
        ({"close": -1.0, "low": -2.0}, "low is not positive"),  # the first failing column
        ({"low": 0.0}, "low is not positive"),
        ({"high": 10.2}, "high is below open, close or low"),  # below close 10.5
        ({"high": 9.9, "close": 9.5}, "high is below open, close or low"),  # below open 10
        ({"high": 10.5, "low": 10.8, "open": 10.5}, "high is below open, close or low"),
        ({"low": 10.2}, "low is above open or close"),  # above open 10
        ({"low": 10.6, "open": 10.7}, "low is above open or close"),  # above close 10.5
        ({"volume": -1}, "volume is negative"),
        ({"volume": 1.5}, "volume is not a whole number"),
        ({"volume": "12.25"}, "volume is not a whole number"),
        ({"volume": "lots"}, "volume is not a number"),
        # ASCII digits only: \d, int() and float() also read these as 12345 and 1.5.
        ({"volume": "١٢٣٤٥"}, "volume is not a number"),
        ({"volume": "１２３４５"}, "volume is not a number"),
        ({"open": "١٫٥"}, "open is not a number"),
        ({"close": "١٠"}, "close is not a number"),
        ({"trade_date": "٢٠٢٤-٠٧-٠٢"}, "unparseable trade_date"),
        # Decimal and exponent spellings of a whole volume; ranked as validation ranks them.
        ({"volume": "-1.5"}, "volume is negative"),
        ({"volume": "1e30"}, "volume is too large"),
        ({"volume": "-99999999999999999999"}, "volume is negative"),
    ],
)
def test_each_rejection_reason(changes, reason):
    row = good(D2, **changes)
    valid, rejected = split_valid(bars(good(D1), row, good(D3)))
    assert list(valid["trade_date"]) == [D1, D3]
    assert len(rejected) == 1
    assert rejected.loc[0, "reason"] == reason
    # The payload is kept as received, as text, for the quarantine.
    assert list(rejected.columns) == [*BAR_COLUMNS, "reason"]
    assert rejected.loc[0, "open"] == str(row["open"])
    assert rejected.loc[0, "volume"] == str(row["volume"])


def test_a_duplicated_date_is_rejected_whole():
    valid, rejected = split_valid(bars(good(D1), good(D2), good(D2, close=10.25), good(D3)))
    assert list(valid["trade_date"]) == [D1, D3]
    assert len(rejected) == 2
    assert set(rejected["reason"]) == {"trade_date appears more than once"}
    assert sorted(rejected["close"]) == ["10.25", "10.5"]


def test_a_date_given_as_date_and_as_text_is_a_duplicate():
    valid, rejected = split_valid(bars(good(D1), good("2024-07-01")))
    assert valid.empty
    assert list(rejected["reason"]) == ["trade_date appears more than once"] * 2


def test_every_bad_row_is_rejected_and_every_good_row_kept():
    rows = [good(dt.date(2024, 1, 1) + dt.timedelta(days=i)) for i in range(10)]
    rows[2]["volume"] = -5
    rows[5]["high"] = 1.0
    rows[7]["open"] = "x"
    valid, rejected = split_valid(bars(*rows))
    assert len(valid) + len(rejected) == 10
    assert len(rejected) == 3
    assert sorted(rejected["trade_date"]) == sorted(str(rows[i]["trade_date"]) for i in (2, 5, 7))
    assert rows[2]["trade_date"] not in set(valid["trade_date"])


def test_empty_input_gives_two_empty_frames():
    valid, rejected = split_valid(empty_bars())
    assert valid.empty and rejected.empty
    assert list(valid.columns) == BAR_COLUMNS
    assert list(rejected.columns) == [*BAR_COLUMNS, "reason"]


# Regression: volume went through float64 and astype('int64'), so a volume beyond 2**63
# passed every check and wrapped to a negative int64.
def test_a_volume_too_big_for_64_bits_is_rejected_not_wrapped():
    valid, rejected = split_valid(bars(good(D1, volume="99999999999999999999")))
    assert (valid["volume"] >= 0).all()
    assert len(rejected) == 1


# Regression: volume went through float64, so a whole volume above 2**53 changed silently.
def test_a_large_whole_volume_keeps_every_digit():
    valid, rejected = split_valid(bars(good(D1, volume="9007199254740993")))
    assert rejected.empty
    assert int(valid.loc[0, "volume"]) == 9007199254740993
