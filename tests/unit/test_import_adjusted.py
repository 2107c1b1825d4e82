"""Adjusted prices in an imported bars file (ingest.adjusted): a split adjustment the file's
own Stock Splits column explains is undone, any other is refused in one line; a yfinance
history(auto_adjust=True) with a dividend is refused. The lake stores prices as traded."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

import import_samples as samples
from marketlake.errors import MarketlakeError
from marketlake.ingest.adjusted import Split, as_traded, ratio
from marketlake.ingest.csv_formats import read_bars_csv

NVDA = {samples.NVDA_SPLIT: 10.0}
REVERSE = {samples.REVERSE_SPLIT: 0.25}


def nvda_traded() -> list[dict]:
    return samples.traded(samples.NVDA_DAYS, NVDA, start=1150.0)


def check(text: str, recorded=(), name: str = "NVDA.csv") -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(the bars as read, as they would land, the note)."""
    bars = read_bars_csv(text.encode(), name, name.split(".")[0])
    landed, note = as_traded(text.encode(), name, bars, [Split(d, f) for d, f in recorded])
    return bars, landed, note


def refusal(text: str, recorded=(), name: str = "NVDA.csv") -> str:
    with pytest.raises(MarketlakeError) as caught:
        check(text, recorded, name)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{name}: ")
    return message


def values(frame: pd.DataFrame, day: dt.date) -> dict:
    row = frame[frame["trade_date"] == day.isoformat()].iloc[0]
    return {k: row[k] for k in ("open", "high", "low", "close", "volume")}


@pytest.mark.parametrize(("factor", "text"), [(10.0, "10:1"), (0.25, "1:4"), (1.5, "3:2")])
def test_a_factor_reads_as_the_ratio_people_write(factor, text):
    assert ratio(factor) == text


def test_a_yfinance_history_across_a_split_with_its_stock_splits_column_is_undone():
    traded = nvda_traded()
    bars, landed, note = check(samples.yfinance_export(traded, NVDA))
    assert note == "the split adjustment undone (the 10:1 split of 2024-06-10)"
    before, on = dt.date(2024, 6, 7), samples.NVDA_SPLIT
    adjusted, undone = values(bars, before), values(landed, before)
    for key in ("open", "high", "low", "close"):
        assert Decimal(undone[key]) == Decimal(adjusted[key]) * 10  # exactly, in decimal
    assert int(undone["volume"]) * 10 == int(adjusted["volume"])
    assert values(landed, on) == values(bars, on)  # from the split on: as Yahoo gives them
    # As traded, to float32's digits: 895.41 and its volume, the close before the split.
    for got, want in zip(landed.itertuples(), traded):
        assert float(got.close) == pytest.approx(want["close"], rel=1e-6)
        assert int(got.volume) == want["volume"]
    assert list(landed.columns) == list(bars.columns)


def test_the_same_file_without_its_splits_column_is_refused_at_the_recorded_split():
    text = samples.yfinance_export(nvda_traded(), NVDA, splits_column=False)
    assert refusal(text, NVDA.items()) == (
        "NVDA.csv: its prices are split-adjusted (no jump at the 10:1 split of 2024-06-10); "
        "nothing was imported. The lake stores prices as traded and adjusts them itself: "
        "import unadjusted prices (e.g. from your broker or the vendor), or a yfinance "
        "history(auto_adjust=False).to_csv() export that runs to today"
    )
    # Yahoo's web download: the same.
    text = samples.yahoo_web(nvda_traded(), NVDA)
    assert "no jump at the 10:1 split of 2024-06-10" in refusal(text, NVDA.items())
    # With no split known inside its span, nothing can be told: it lands as it is.
    bars, landed, note = check(text)
    assert landed.equals(bars) and note == ""


def test_a_file_with_its_splits_column_and_a_later_recorded_split_is_refused():
    """Yahoo adjusts for every split up to the download: one after the file's last day, which
    its Stock Splits column cannot hold, leaves its prices adjusted after the undoing."""
    later = {dt.date(2024, 9, 3): 2.0}
    traded = nvda_traded()
    text = samples.yfinance_export(traded, {**NVDA, **later})  # the 2:1 after its last day
    message = refusal(text, later.items())
    assert "its prices are split-adjusted (no jump at the 10:1 split of 2024-06-10)" in message


def test_as_traded_prices_across_a_recorded_split_land_unchanged():
    text = samples.as_traded_csv(nvda_traded())
    bars, landed, note = check(text, NVDA.items())
    assert landed.equals(bars) and note == ""


def test_an_as_traded_file_with_a_stock_splits_column_is_not_undone():
    text = samples.yfinance_export(nvda_traded(), {})  # prices as traded...
    text = samples.with_stock_splits(text, NVDA)  # ...and the split in its column
    bars, landed, note = check(text, NVDA.items())
    assert landed.equals(bars) and note == ""


def test_an_undoing_that_leaves_a_split_without_its_jump_is_refused():
    """A file as traded at one split and adjusted at the other: undoing both would make the
    prices before the first four times too large (a jump of 16 at a 4:1 split)."""
    four = {dt.date(2024, 5, 15): 4.0}
    traded = samples.traded(samples.NVDA_DAYS, {**four, **NVDA}, start=4600.0)
    text = samples.with_stock_splits(samples.yfinance_export(traded, NVDA), four)
    message = refusal(text)
    assert "its prices do not jump at the 4:1 split of 2024-05-15 as traded prices do" in message
    assert "even with the splits of its Stock Splits column undone" in message


def test_a_reverse_split_is_undone_and_refused_alike():
    traded = samples.traded(samples.REVERSE_DAYS, REVERSE, start=5.0)
    bars, landed, note = check(samples.yfinance_export(traded, REVERSE), name="INTC.csv")
    assert note == "the split adjustment undone (the 1:4 split of 2023-08-07)"
    before = dt.date(2023, 8, 4)
    adjusted, undone = values(bars, before), values(landed, before)
    assert Decimal(undone["close"]) == Decimal(adjusted["close"]) * Decimal("0.25")
    assert int(undone["volume"]) == int(adjusted["volume"]) * 4
    want = {b["date"].isoformat(): b for b in traded}
    for got in landed.itertuples():
        assert float(got.close) == pytest.approx(want[got.trade_date]["close"], rel=1e-6)
        assert int(got.volume) == want[got.trade_date]["volume"]
    message = refusal(samples.yahoo_web(traded, REVERSE), REVERSE.items(), name="INTC.csv")
    assert "(no jump at the 1:4 split of 2023-08-07)" in message


def test_a_split_too_small_to_tell_from_a_day_s_move_refuses_nothing():
    """6:5 (1.2): an adjusted file and an as-traded one look alike across it."""
    small = {dt.date(2024, 6, 10): 1.2}
    traded = samples.traded(samples.NVDA_DAYS, small, start=120.0)
    for text in (samples.yahoo_web(traded, small), samples.as_traded_csv(traded)):
        bars, landed, note = check(text, small.items())
        assert landed.equals(bars) and note == ""


def test_a_yfinance_auto_adjusted_history_with_a_dividend_is_refused():
    traded = samples.traded(samples.NVDA_DAYS, {}, start=180.0)
    dividend = {dt.date(2024, 5, 9): 1.67}
    text = samples.yfinance_export(traded, {}, dividend, auto_adjust=True)
    assert ",Adj Close" not in text
    message = refusal(text, name="IBM.csv")
    assert message == (
        "IBM.csv: its prices are adjusted for dividends (yfinance's history() with "
        "auto_adjust=True, the default: a Dividends column, a dividend on 2024-05-09, and no "
        "Adj Close column); nothing was imported. The lake stores prices as traded: export it "
        "with history(auto_adjust=False).to_csv() (then Close is unadjusted for dividends and "
        "Adj Close is ignored)"
    )
    # auto_adjust=False: Close is unadjusted for dividends, Adj Close ignored.
    bars, landed, note = check(samples.yfinance_export(traded, {}, dividend), name="IBM.csv")
    assert landed.equals(bars) and note == ""
    # A dividend on its first day adjusts none of its bars.
    first = {samples.NVDA_DAYS[0]: 1.67}
    text = samples.yfinance_export(traded, {}, first, auto_adjust=True)
    assert check(text, name="IBM.csv")[2] == ""


def test_a_yfinance_auto_adjusted_history_without_dividends_is_accepted():
    traded = samples.traded(samples.NVDA_DAYS, {}, start=180.0)
    bars, landed, note = check(
        samples.yfinance_export(traded, {}, auto_adjust=True), name="IBM.csv"
    )
    assert landed.equals(bars) and note == ""
    bars, landed, note = check(samples.yfinance_history(samples.SESSIONS), name="IBM.csv")
    assert landed.equals(bars) and note == ""
    # Split-adjusted still: undone by its Stock Splits column.
    text = samples.yfinance_export(nvda_traded(), NVDA, auto_adjust=True)
    assert "the split adjustment undone" in check(text)[2]


def test_several_splits_in_its_column_are_undone_together():
    splits = {dt.date(2024, 5, 15): 4.0, samples.NVDA_SPLIT: 10.0}
    traded = samples.traded(samples.NVDA_DAYS, splits, start=4600.0)
    _, landed, note = check(samples.yfinance_export(traded, splits))
    assert note == "the split adjustment undone (2 splits, 2024-05-15 .. 2024-06-10)"
    for got, want in zip(landed.itertuples(), traded):
        assert float(got.close) == pytest.approx(want["close"], rel=1e-6)


def test_an_unreadable_stock_splits_value_is_refused_naming_it():
    text = samples.yfinance_export(nvda_traded(), {})
    text = text.replace(",0.0\n", ",ten\n", 1)
    message = refusal(text)
    assert "column 'Stock Splits' has 'ten' on 2024-05-01, which is not a number" in message
