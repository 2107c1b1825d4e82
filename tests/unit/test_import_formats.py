"""The CSV shapes `marketlake import` reads (ingest.csv_formats): every shape read, every
refusal one line naming the file and what to do."""

from __future__ import annotations

import pandas as pd
import pytest

import import_samples as samples
from marketlake.errors import MarketlakeError
from marketlake.ingest.csv_formats import read_actions_csv, read_bars_csv

DAYS = samples.SESSIONS[:5]


def bars(text: str, name: str = "IBM.csv", symbol: str | None = "IBM") -> pd.DataFrame:
    return read_bars_csv(text.encode(), name, symbol)


def refusal(text: str | bytes, name: str = "IBM.csv", symbol: str | None = "IBM", **kw) -> str:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(MarketlakeError) as caught:
        if kw:
            read_actions_csv(data, name, symbol=symbol, **kw)
        else:
            read_bars_csv(data, name, symbol)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{name}: ")
    return message


def expected(days, shift: float = 0.0, number=lambda v: f"{v:.2f}") -> list[list[str]]:
    rows = []
    for day in days:
        b = samples.bar(day, shift)
        rows.append([day.isoformat(), *(number(b[k]) for k in samples.BAR_FIELDS[:4])])
    return rows


def read(frame: pd.DataFrame) -> list[list[str]]:
    return frame[["trade_date", "open", "high", "low", "close"]].values.tolist()


# -- the shapes read -------------------------------------------------------------------------


def test_a_yfinance_history_reads_its_dates_as_the_exchange_s_and_ignores_its_actions():
    days = samples.SESSIONS  # across the switch to daylight saving time: -05:00, then -04:00
    text = samples.yfinance_history(days, dividends={days[3]: 1.66})
    assert "2024-02-01 00:00:00-05:00," in text and "2024-03-28 00:00:00-04:00," in text
    frame = bars(text)
    assert read(frame) == expected(days, number=samples.yf_number)
    assert list(frame["volume"]) == [str(samples.bar(d)["volume"]) for d in days]
    assert list(frame.columns) == ["trade_date", "open", "high", "low", "close", "volume"]


@pytest.mark.parametrize(
    "stamp", ["2024-02-01T00:00:00Z", "2024-02-01 00:00:00+00:00", "2024-02-01 00:00"]
)
def test_any_midnight_after_the_date_is_the_date(stamp):
    text = samples.plain(DAYS[:1]).replace("2024-02-01", stamp)
    assert list(bars(text)["trade_date"]) == ["2024-02-01"]


def test_a_time_of_day_is_no_daily_bar_and_is_refused_naming_it():
    text = "\n".join(
        line.replace(line[:10], f"{line[:10]} 09:30:00-05:00", 1) if line[:1] == "2" else line
        for line in samples.plain(DAYS).splitlines()
    )
    message = refusal(text)
    assert "'2024-02-01 09:30:00-05:00'" in message and "not a daily bar's" in message
    assert "YYYY-MM-DD" in message


def test_a_yfinance_download_of_one_ticker_is_read_and_its_ticker_row_checked():
    text = samples.yfinance_download(DAYS)
    assert text.startswith("Price,Close,High,Low,Open,Volume\nTicker,IBM,IBM,IBM,IBM,IBM\n")
    assert read(bars(text)) == expected(DAYS, number=samples.yf_number)
    message = refusal(text, "NVDA.csv", "NVDA")
    assert "its Ticker row says IBM but the file name says NVDA" in message
    assert "--symbol IBM" in message


def test_a_ticker_row_with_yahoo_s_class_spelling_agrees_with_the_dotted_one():
    text = samples.yfinance_download(DAYS, ("BRK-B",))
    assert len(bars(text, "brk.b.csv", "BRK.B")) == len(DAYS)


def test_a_yfinance_download_of_several_tickers_is_refused():
    message = refusal(samples.yfinance_download(DAYS, ("AAPL", "IBM")))
    assert "a yfinance download of 2 tickers (AAPL, IBM)" in message
    assert "one ticker per file" in message


def test_a_two_row_header_of_another_shape_is_refused_saying_how_to_export():
    text = samples.yfinance_download(DAYS).replace("Date,,,,,", "Date,x,,,,")
    message = refusal(text)
    assert "two-row (multi-index) header" in message and ".history(" in message


def test_a_pandas_index_is_ignored_when_it_numbers_the_rows():
    text = samples.pandas_range_index(DAYS)
    assert text.startswith(",Date,Open,High,Low,Close,Volume\n0,2024-02-01,")
    assert read(bars(text)) == expected(DAYS)


def test_an_unnamed_pandas_index_of_dates_is_the_date_column():
    text = samples.pandas_date_index(DAYS)
    assert text.startswith(",Open,High,Low,Close,Volume\n2024-02-01,")
    assert read(bars(text)) == expected(DAYS)


def test_an_unnamed_index_of_row_numbers_and_no_date_column_is_a_missing_date():
    text = ",Open,High,Low,Close,Volume\n" + "\n".join(
        f"{i},{line.split(',', 1)[1]}"
        for i, line in enumerate(samples.pandas_date_index(DAYS).splitlines()[1:])
    )
    assert "missing column(s) date or timestamp" in refusal(text)


def test_an_unnamed_first_column_that_holds_no_dates_is_named_in_the_refusal():
    text = samples.pandas_date_index(DAYS).replace("2024-02-0", "row 2024/02/0")
    message = refusal(text)
    assert "no date in the first column (it has no name)" in message


def test_thousands_separators_in_a_comma_separated_file():
    text = samples.thousands(DAYS)
    assert '"1,' in text and '"12,' in text
    frame = bars(text)
    assert read(frame) == expected(DAYS, shift=1200.0)
    assert list(frame["volume"]) == [str(samples.bar(d)["volume"] * 4) for d in DAYS]


def test_a_comma_that_could_be_either_is_refused_never_guessed():
    text = 'Date,Open,High,Low,Close,Volume\n2024-02-01,"1,305","1,310","1,300","1,306",100\n'
    message = refusal(text)
    assert "'1,305'" in message and "decimal point" in message


def test_a_semicolon_file_with_decimal_commas_and_a_byte_order_mark():
    text = samples.semicolons(DAYS)
    assert text.startswith("\ufeffDate;Open;High;Low;Close;Volume\r\n2024-02-01;15")
    assert "," in text and "." not in text
    assert read(bars(text)) == expected(DAYS)


def test_a_semicolon_file_with_decimal_points_is_read_as_such():
    text = samples.plain(DAYS).replace(",", ";")
    assert read(bars(text)) == expected(DAYS)


def test_a_semicolon_file_mixing_commas_and_dots_is_refused():
    text = "Date;Open;High;Low;Close;Volume\n2024-02-01;1.305,88;1.310,00;1.300,10;1.306,00;100\n"
    message = refusal(text)
    assert "'1.305,88'" in message and "thousands separator" in message


def test_a_tab_separated_file():
    assert read(bars(samples.tabs(DAYS))) == expected(DAYS)


def test_nasdaq_s_download_with_dollars_and_month_first_dates():
    text = samples.nasdaq(DAYS)
    assert text.startswith("Date,Close/Last,Volume,Open,High,Low\n02/07/2024,$")
    frame = bars(text, "HistoricalData_1733412345678.csv")
    assert read(frame) == expected(DAYS)  # oldest first, like every import


def test_month_first_dates_elsewhere_stay_unread():
    text = samples.plain(DAYS).replace("2024-02-01", "02/01/2024")
    assert "02/01/2024" in list(bars(text)["trade_date"])  # validation quarantines it


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        ("Close", "n/a", "no value in column 'Close' reads as a number (the first is 'n/a')"),
        ("Volume", "1.2M", "no value in column 'Volume' reads as a whole number"),
    ],
)
def test_a_column_none_of_whose_values_reads_is_refused_naming_it(column, value, needle):
    frame = pd.read_csv(pd.io.common.StringIO(samples.plain(DAYS)), dtype=str)
    frame[column] = value
    message = refusal(frame.to_csv(index=False))
    assert needle in message and "e.g." in message


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "the file is empty"),
        (b"Date,Open,High,Low,Close,Volume\n", "no rows under its header"),
        (b"Date,Open,High,Low,Close,Volume\n2024-02-01,1,2,0.5,1,\xff\n", "not UTF-8"),
        (b"Date,Open,Close,Close,High,Low,Volume\n2024-02-01,1,1,1,2,0.5,9\n", "two columns"),
    ],
)
def test_files_that_hold_no_bars_to_read_are_refused(data, needle):
    assert needle in refusal(data)


def test_the_old_plain_shape_still_reads_in_any_column_order():
    text = "volume,close,low,high,open,TimeStamp\n100,10.5,9,11,10,2024-06-14\n"
    assert read(bars(text)) == [["2024-06-14", "10", "11", "9", "10.5"]]


# -- splits and dividends --------------------------------------------------------------------


def actions(text: str, kind: str, name: str = "IBM.csv") -> list[list[str]]:
    return read_actions_csv(text.encode(), name, kind, "IBM").values.tolist()


def test_yahoo_s_dividend_download():
    assert actions(samples.YAHOO_DIVIDENDS, "dividends") == [
        ["2024-02-08", "1.66"],
        ["2024-05-09", "1.67"],
    ]


def test_yahoo_s_split_download_reads_ratios_as_split_factors():
    assert actions(samples.YAHOO_SPLITS, "splits") == [
        ["2021-07-20", "4.0"],
        ["2024-06-10", "10.0"],
    ]
    assert actions(samples.YAHOO_REVERSE_SPLIT, "splits") == [["2023-08-07", "0.25"]]
    # A ratio in our own column reads the same; a plain factor stays as it was.
    assert actions("date,split_factor\n2024-06-10,10:1\n2024-07-01,3\n", "splits") == [
        ["2024-06-10", "10.0"],
        ["2024-07-01", "3"],
    ]


def test_a_yfinance_history_serves_as_a_dividend_file_its_zero_rows_skipped():
    days = samples.SESSIONS
    text = samples.yfinance_history(days, dividends={days[5]: 1.66, days[30]: 1.67})
    assert actions(text, "dividends") == [[str(days[5]), "1.66"], [str(days[30]), "1.67"]]
    message = refusal(text, kind="splits")
    assert "every value in its column 'Stock Splits' is 0 (no splits on any day)" in message


def test_dividends_with_a_decimal_comma_in_a_semicolon_file():
    assert actions("Date;Dividends\n2024-02-08;1,66\n", "dividends") == [["2024-02-08", "1.66"]]


def test_an_action_file_without_its_columns_names_both_headers():
    message = refusal("Date,Ratio\n2024-06-10,10:1\n", kind="splits")
    assert "date,split_factor (or Yahoo's Date,Stock Splits)" in message
