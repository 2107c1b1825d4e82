"""The symbol `marketlake import` takes from a file's name (importer.symbol_from_name): only
a name that is a ticker, perhaps followed by words that say what the file holds. Any other
name is refused, never guessed; and --symbol's value (importer.one_symbol)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketlake.errors import MarketlakeError
from marketlake.ingest.importer import one_symbol, symbol_from_name


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("GOOG.csv", "GOOG"),
        ("nvda.csv", "NVDA"),
        ("brk.b.csv", "BRK.B"),
        ("BF-B.CSV", "BF-B"),
        ("NVDA_daily.csv", "NVDA"),
        ("nvda-history.csv", "NVDA"),
        ("AMD daily prices.csv", "AMD"),
        ("brk.b_eod.csv", "BRK.B"),
        ("intc_splits.csv", "INTC"),
        ("ko-dividends.csv", "KO"),
        ("ALL.csv", "ALL"),  # Allstate, never the whole market
        ("ibm", "IBM"),
    ],
)
def test_a_file_named_after_its_ticker_gives_the_symbol(name, symbol):
    assert symbol_from_name(Path(name)) == symbol


@pytest.mark.parametrize(
    "name",
    [
        "daily_IBM.csv",  # Alpha Vantage's download name: not DAILY
        "HistoricalData_1733412345678.csv",  # Nasdaq's
        "history.csv",
        "daily.csv",
        "data.csv",
        "prices-ab.csv",
        "nvda_2019.csv",
        "nvda_fix.csv",
        "GOOGLE.csv",
        "^GSPC.csv",
        "BTC-USD.csv",
        "export (1).csv",
    ],
)
def test_any_other_file_name_is_refused_asking_for_the_symbol(name):
    with pytest.raises(MarketlakeError) as caught:
        symbol_from_name(Path(name))
    message = str(caught.value)
    assert message.startswith(f"{name}: the file name is not a ticker") and "--symbol" in message


def test_symbol_option_is_one_symbol():
    assert one_symbol(" nvda ") == "NVDA" and one_symbol("all") == "ALL"
    for text in ("NVDA,AMD", "", "n v"):
        with pytest.raises(MarketlakeError):
            one_symbol(text)
