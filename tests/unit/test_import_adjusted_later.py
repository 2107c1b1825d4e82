"""Yahoo's adjustment the file cannot show (ingest.adjusted): a Yahoo-shaped bars file that
ends before a split the lake records is refused (its prices may be adjusted for it); Yahoo's
dividend amounts, split-adjusted too, are restored as paid from a history() file's own Stock
Splits column or refused. A plain file says nothing of adjustment and is taken as traded."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import import_samples as samples
from marketlake.errors import MarketlakeError
from marketlake.ingest.adjusted import Split, as_traded, dividends_as_paid
from marketlake.ingest.csv_formats import read_actions_csv, read_bars_csv
from marketlake.sessions import sessions_between

NVDA = {samples.NVDA_SPLIT: 10.0}
RECORDED = [Split(samples.NVDA_SPLIT, 10.0)]
DAYS_2023 = sessions_between(dt.date(2023, 11, 1), dt.date(2023, 12, 29))


def traded_2023() -> list[dict]:
    return samples.traded(DAYS_2023, {}, start=480.0)


def landed(text: str, recorded=RECORDED, name: str = "NVDA.csv"):
    bars = read_bars_csv(text.encode(), name, name.split(".")[0])
    out, note = as_traded(text.encode(), name, bars, recorded)
    assert out.equals(bars) and note == ""
    return out


def refusal(call, name: str = "NVDA.csv") -> str:
    with pytest.raises(MarketlakeError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{name}: ")
    return message


def bars_refusal(text: str, recorded=RECORDED) -> str:
    bars = read_bars_csv(text.encode(), "NVDA.csv", "NVDA")
    return refusal(lambda: as_traded(text.encode(), "NVDA.csv", bars, recorded))


def dividends(text: str, recorded=RECORDED, name: str = "NVDA.csv"):
    rows = read_actions_csv(text.encode(), name, "dividends", name.split(".")[0])
    return dividends_as_paid(text.encode(), name, rows, recorded)


def test_a_yahoo_web_download_ending_before_a_recorded_split_is_refused():
    text = samples.yahoo_web(traded_2023(), NVDA)  # downloaded after the split: a tenth
    assert bars_refusal(text) == (
        "NVDA.csv: Yahoo's prices are adjusted for splits up to the day they were downloaded, "
        "and the lake records a 10:1 split on 2024-06-10 after this file's last bar "
        "(2023-12-29), so its prices may be a tenth of those traded; nothing was imported. "
        "Import unadjusted prices (e.g. from your broker or the vendor), or a yfinance "
        "history(auto_adjust=False).to_csv() export that runs to today"
    )


def test_the_other_yahoo_shapes_ending_before_a_recorded_split_are_refused():
    later = "after this file's last bar (2023-12-29)"
    history = samples.yfinance_export(traded_2023(), NVDA)  # Dividends and Stock Splits
    assert later in bars_refusal(history)
    assert later in bars_refusal(samples.yfinance_download(DAYS_2023, ("NVDA",)))
    two = [Split(dt.date(2024, 1, 10), 0.25), *RECORDED]  # 1:4, then 10:1: a product of 2.5
    message = bars_refusal(samples.yahoo_web(traded_2023(), NVDA), two)
    assert "a 1:4 split on 2024-01-10 (and 1 later)" in message
    assert "may be 2/5 of those traded" in message


def test_a_plain_as_traded_file_ending_before_a_recorded_split_is_accepted():
    landed(samples.as_traded_csv(traded_2023()))


def test_a_yahoo_file_ending_before_a_split_too_small_to_tell_is_accepted():
    landed(samples.yahoo_web(traded_2023(), NVDA), [Split(samples.NVDA_SPLIT, 1.2)])


def test_a_yahoo_file_whose_span_holds_the_split_keeps_today_s_checks():
    traded = samples.traded(samples.NVDA_DAYS, NVDA, start=1150.0)
    message = bars_refusal(samples.yahoo_web(traded, NVDA))
    assert "its prices are split-adjusted (no jump at the 10:1 split of 2024-06-10)" in message
    text = samples.yfinance_export(traded, NVDA).encode()
    bars = read_bars_csv(text, "NVDA.csv", "NVDA")
    _, note = as_traded(text, "NVDA.csv", bars, RECORDED)
    assert note == "the split adjustment undone (the 10:1 split of 2024-06-10)"


# -- dividends ---------------------------------------------------------------------------------


def test_a_yahoo_dividends_download_with_a_dividend_before_a_recorded_split_is_refused():
    text = "Date,Dividends\n2024-03-05,0.004\n2024-06-11,0.01\n"
    assert refusal(lambda: dividends(text)) == (
        "NVDA.csv: Yahoo's dividends are adjusted for splits up to the day they were "
        "downloaded, and the lake records a 10:1 split on 2024-06-10 after its dividend of "
        "2024-03-05, so that amount may be a tenth of the one paid; nothing was imported. "
        "Import the vendor's unadjusted dividends, or the dividends as paid as date,amount"
    )


def test_a_yahoo_dividends_download_after_the_split_only_is_accepted():
    text = "Date,Dividends\n2024-06-11,0.01\n2024-09-12,0.01\n"
    rows = dividends(text)
    assert list(rows["value"]) == ["0.01", "0.01"]
    # A dividend before a 6:5 split: too small to tell from a normal day's move, accepted.
    text = "Date,Dividends\n2024-03-05,0.004\n"
    assert list(dividends(text, [Split(samples.NVDA_SPLIT, 1.2)])["value"]) == ["0.004"]


def test_dividends_as_paid_date_amount_before_a_recorded_split_are_accepted():
    rows = dividends("date,amount\n2024-03-05,0.04\n")
    assert list(rows["value"]) == ["0.04"]


def yahoo_history_dividends() -> str:
    """A history() export across NVDA's 10:1 split, its dividends as Yahoo gives them: the
    0.04 paid on 2024-05-23 as 0.004, the 0.01 of 2024-06-11 (after the split) as paid."""
    traded = samples.traded(samples.NVDA_DAYS, NVDA, start=1150.0)
    paid = {dt.date(2024, 5, 23): 0.004, dt.date(2024, 6, 11): 0.01}
    return samples.yfinance_export(traded, NVDA, paid)


def test_a_history_file_s_dividends_before_its_own_split_are_restored_as_paid():
    for recorded in ([], RECORDED):
        rows = dividends(yahoo_history_dividends(), recorded)
        got = dict(zip(rows["date"], rows["value"]))
        assert Decimal(got["2024-05-23"]) == Decimal("0.04")
        assert Decimal(got["2024-06-11"]) == Decimal("0.01")


def test_a_history_file_ending_before_a_recorded_split_it_cannot_show_is_refused():
    later = [*RECORDED, Split(dt.date(2024, 9, 3), 2.0)]
    message = refusal(lambda: dividends(yahoo_history_dividends(), later))
    assert "the lake records a 2:1 split on 2024-09-03 after this file's last row " in message
    assert "(2024-06-28) that its Stock Splits column does not show" in message
    assert "so its amounts may be half of those paid; nothing was imported" in message


def test_a_history_file_whose_stock_splits_column_lacks_a_recorded_split_is_refused():
    text = yahoo_history_dividends().replace(",10.0\n", ",0.0\n")  # the split not shown
    assert ",10.0" not in text
    message = refusal(lambda: dividends(text))
    assert "records a 10:1 split on 2024-06-10 within its dates that its Stock Splits" in message
