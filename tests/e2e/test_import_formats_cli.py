"""`marketlake import` of the files people have (issue 23): yfinance's, pandas', Nasdaq's and
Yahoo's exports, thousands separators, `;` and tab separators, a folder of files. Every
refusal is one line naming the file, and lands nothing.

In-process through typer's CliRunner, the lake under tmp_path (--home)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

import import_samples as samples
from import_cli import clear_settings, marketlake, ok, refused
from marketlake.cli import app
from marketlake.lake import actions
from marketlake.storage import LocalStore

pytestmark = pytest.mark.e2e

SESSIONS = samples.SESSIONS
SPAN = f"({SESSIONS[0]} .. {SESSIONS[-1]})"


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    clear_settings(monkeypatch, tmp_path)


def written(tmp_path: Path) -> list[Path]:
    """Every file the lake holds but its lock."""
    lake = tmp_path / "lake"
    return [p for p in lake.rglob("*") if p.is_file() and p.name != ".lock"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


def raw_bars(tmp_path: Path, symbol: str) -> list[tuple[str, float, int]]:
    """(trade_date, close, volume) of the symbol's raw bars."""
    rows = []
    for path in (tmp_path / "lake/raw/daily_prices").glob(f"ingest_date=*/{symbol}.csv"):
        for row in csv.DictReader(io.StringIO(path.read_text())):
            rows.append((row["trade_date"], float(row["close"]), int(row["volume"])))
    return sorted(rows)


def expected(days, shift: float = 0.0, volume: int = 1) -> list[tuple[str, float, int]]:
    return [
        (d.isoformat(), round(samples.bar(d, shift)["close"], 2), samples.bar(d)["volume"] * volume)
        for d in days
    ]


def closes_match(got, want) -> bool:
    return [(d, round(c, 2), v) for d, c, v in got] == want


# -- formats ----------------------------------------------------------------------------------


def test_a_yfinance_history_lands_from_the_calendar_s_start_and_serves_for_dividends(tmp_path):
    days = samples.BEFORE_CALENDAR + SESSIONS  # history(period="max") reaches back before 2000
    # auto_adjust=False: with auto_adjust=True (the default) its prices would be adjusted for
    # the dividend, and refused (tests/e2e/test_import_adjusted_cli.py).
    text = samples.yfinance_history(days, dividends={SESSIONS[3]: 1.66}, auto_adjust=False)
    write(tmp_path / "IBM.csv", text)
    out = ok(marketlake(tmp_path, "import", "IBM.csv"))
    assert out.splitlines()[0] == (
        f"import: IBM: {len(SESSIONS)} bar(s) landed {SPAN}; 5 bar(s) before 2000-01-03 left "
        "out (the NYSE calendar starts there)"
    )
    got = raw_bars(tmp_path, "IBM")
    closes = [float(samples.yf_number(samples.bar(d)["close"])) for d in SESSIONS]
    assert [c for _, c, _ in got] == closes  # yfinance's float32 digits, as written
    assert closes_match(got, expected(SESSIONS))
    assert not list((tmp_path / "lake").glob("quarantine/**/*.csv"))

    out = ok(marketlake(tmp_path, "import", "--dividends", "IBM.csv"))
    assert "import: IBM: 1 dividends row(s) landed" in out
    on_record = actions.current(LocalStore(tmp_path / "lake"), actions.DIVIDENDS)
    assert list(zip(on_record["date"], on_record["value"])) == [(SESSIONS[3], 1.66)]
    line = refused(marketlake(tmp_path, "import", "--splits", "IBM.csv"))
    assert "IBM.csv: every value in its column 'Stock Splits' is 0 (no splits on any day)" in line


def test_a_yfinance_download_lands_and_its_ticker_row_must_agree(tmp_path):
    write(tmp_path / "IBM.csv", samples.yfinance_download(SESSIONS))
    write(tmp_path / "NVDA.csv", samples.yfinance_download(SESSIONS))
    line = refused(marketlake(tmp_path, "import", "IBM.csv", "NVDA.csv"))
    assert "NVDA.csv: its Ticker row says IBM but the file name says NVDA" in line
    assert written(tmp_path) == []
    assert f"import: IBM: {len(SESSIONS)} bar(s) landed {SPAN}" in ok(
        marketlake(tmp_path, "import", "IBM.csv")
    )
    assert closes_match(raw_bars(tmp_path, "IBM"), expected(SESSIONS))
    write(tmp_path / "both.csv", samples.yfinance_download(SESSIONS, ("AAPL", "IBM")))
    line = refused(marketlake(tmp_path, "import", "both.csv", "--symbol", "AAPL"))
    assert "both.csv: a yfinance download of 2 tickers (AAPL, IBM)" in line


def test_pandas_exports_with_their_index_land(tmp_path):
    write(tmp_path / "AMD.csv", samples.pandas_range_index(SESSIONS))
    write(tmp_path / "INTC.csv", samples.pandas_date_index(SESSIONS))
    out = ok(marketlake(tmp_path, "import", "AMD.csv", "INTC.csv"))
    for symbol in ("AMD", "INTC"):
        assert f"import: {symbol}: {len(SESSIONS)} bar(s) landed {SPAN}" in out
        assert closes_match(raw_bars(tmp_path, symbol), expected(SESSIONS))


def test_thousands_separators_semicolons_with_decimal_commas_and_tabs_land(tmp_path):
    write(tmp_path / "BKNG.csv", samples.thousands(SESSIONS))
    write(tmp_path / "ASML.csv", samples.semicolons(SESSIONS))
    write(tmp_path / "MU.csv", samples.tabs(SESSIONS))
    out = ok(marketlake(tmp_path, "import", "BKNG.csv", "ASML.csv", "MU.csv"))
    assert out.count(f"{len(SESSIONS)} bar(s) landed {SPAN}") == 3
    assert closes_match(raw_bars(tmp_path, "BKNG"), expected(SESSIONS, 1200.0, volume=4))
    assert closes_match(raw_bars(tmp_path, "ASML"), expected(SESSIONS))
    assert closes_match(raw_bars(tmp_path, "MU"), expected(SESSIONS))


def test_nasdaq_s_download_needs_the_symbol_then_lands(tmp_path):
    name = "HistoricalData_1733412345678.csv"
    write(tmp_path / name, samples.nasdaq(SESSIONS))
    line = refused(marketlake(tmp_path, "import", name))
    assert f"{name}: the file name is not a ticker" in line and "pass --symbol" in line
    assert written(tmp_path) == []
    out = ok(marketlake(tmp_path, "import", name, "--symbol", "AAPL"))
    assert f"import: AAPL: {len(SESSIONS)} bar(s) landed {SPAN}" in out
    assert closes_match(raw_bars(tmp_path, "AAPL"), expected(SESSIONS))


def test_yahoo_s_split_and_dividend_downloads_land(tmp_path):
    write(tmp_path / "NVDA.csv", samples.YAHOO_SPLITS)
    write(tmp_path / "intc-splits.csv", samples.YAHOO_REVERSE_SPLIT)
    write(tmp_path / "IBM.csv", samples.YAHOO_DIVIDENDS)
    out = ok(marketlake(tmp_path, "import", "--splits", "NVDA.csv", "intc-splits.csv"))
    assert "import: NVDA: 2 splits row(s) landed" in out
    assert "import: INTC: 1 splits row(s) landed" in out
    assert "import: IBM: 2 dividends row(s) landed" in ok(
        marketlake(tmp_path, "import", "--dividends", "IBM.csv")
    )
    store = LocalStore(tmp_path / "lake")
    splits = actions.current(store, actions.SPLITS)
    assert sorted(zip(splits["symbol"], splits["value"])) == [
        ("INTC", 0.25),
        ("NVDA", 4.0),
        ("NVDA", 10.0),
    ]
    dividends = actions.current(store, actions.DIVIDENDS)
    assert sorted(dividends["value"]) == [1.66, 1.67]


# -- file names and folders -------------------------------------------------------------------


def test_alpha_vantage_s_download_name_is_refused_never_filed_as_daily(tmp_path):
    av = "timestamp,open,high,low,close,volume\n" + samples.plain(SESSIONS).split("\n", 1)[1]
    write(tmp_path / "daily_IBM.csv", av)
    line = refused(marketlake(tmp_path, "import", "daily_IBM.csv"))
    assert line == (
        "error: daily_IBM.csv: the file name is not a ticker (NVDA.csv, brk.b.csv, "
        "NVDA_daily.csv), so the symbol is unknown; pass --symbol, or rename the file to its "
        "ticker"
    )
    assert written(tmp_path) == []
    ok(marketlake(tmp_path, "import", "daily_IBM.csv", "--symbol", "IBM"))
    assert closes_match(raw_bars(tmp_path, "IBM"), expected(SESSIONS))
    assert raw_bars(tmp_path, "DAILY") == []


def test_a_folder_imports_every_csv_in_it_each_symbol_from_its_name(tmp_path):
    folder = tmp_path / "history"
    write(folder / "IBM.csv", samples.yfinance_history(SESSIONS))
    write(folder / "AMD_daily.csv", samples.plain(SESSIONS))
    write(folder / "._IBM.csv", "\x00\x05\x16\x07 AppleDouble")  # macOS's, on a shared drive
    write(folder / "notes.txt", "not a csv")
    (folder / "older").mkdir()
    out = ok(marketlake(tmp_path, "import", "history/"))
    assert out.splitlines() == [
        f"import: AMD: {len(SESSIONS)} bar(s) landed {SPAN}",
        f"import: IBM: {len(SESSIONS)} bar(s) landed {SPAN}",
        "next: marketlake build",
    ]


def test_a_folder_with_one_bad_file_lands_nothing(tmp_path):
    folder = tmp_path / "history"
    write(folder / "AMD.csv", samples.plain(SESSIONS))
    write(folder / "IBM.csv", samples.yfinance_history(SESSIONS))
    write(folder / "NVDA.csv", samples.plain(SESSIONS, header="Date,Open,High,Low,Close,Vol"))
    line = refused(marketlake(tmp_path, "import", str(folder)))
    assert "NVDA.csv: missing column(s) volume" in line
    assert written(tmp_path) == []
    # A file name that is no ticker, too: nothing of the others lands.
    (folder / "NVDA.csv").unlink()
    write(folder / "HistoricalData_1733412345678.csv", samples.nasdaq(SESSIONS))
    line = refused(marketlake(tmp_path, "import", str(folder)))
    assert "HistoricalData_1733412345678.csv: the file name is not a ticker" in line
    assert written(tmp_path) == []


@pytest.mark.parametrize(
    ("files", "args", "needle"),
    [
        ({}, ["history"], "history: no .csv file in this folder; nothing was imported"),
        (
            {"AMD.csv": "", "IBM.csv": ""},
            ["history", "--symbol", "AMD"],
            "--symbol names one symbol and 2 files are given",
        ),
        (
            {"NVDA.csv": "", "nvda-history.csv": ""},
            ["history"],
            "NVDA.csv and nvda-history.csv both hold NVDA; nothing was imported",
        ),
    ],
)
def test_folders_that_cannot_be_imported_are_refused(tmp_path, files, args, needle):
    (tmp_path / "history").mkdir()
    for name in files:
        write(tmp_path / "history" / name, samples.plain(SESSIONS))
    assert needle in refused(marketlake(tmp_path, "import", *args))
    assert written(tmp_path) == []


# -- a file where every row fails -------------------------------------------------------------


def rows_changed(text: str, change) -> str:
    """The CSV text with `change` applied to every row under the header."""
    header, *rows = list(csv.reader(io.StringIO(text)))
    return "\n".join(",".join(row) for row in [header, *map(change, rows)]) + "\n"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            lambda text: text.replace("2024-02-", "2024-02-x"),
            "no date in column 'Date' reads as YYYY-MM-DD (the first is '2024-02-x01')",
        ),
        (
            lambda text: rows_changed(text, lambda row: [*row[:2], "n/a", *row[3:]]),
            "no value in column 'High' reads as a number (the first is 'n/a'); write high as a "
            "number, e.g. 123.45",
        ),
        (
            lambda text: rows_changed(text, lambda row: [*row[:2], row[3], row[2], *row[4:]]),
            "high is below open, close or low. Nothing was imported: check that each column "
            "holds what its name says",
        ),
        (
            lambda text: text.replace("2024-02-01", "2024-02-03").replace("-02-02", "-02-04"),
            "trade_date is not an NYSE session (a weekend or a holiday). Nothing was imported: "
            "the lake keeps US equities on the NYSE calendar",
        ),
    ],
)
def test_a_file_where_every_row_fails_is_refused_about_the_file_not_the_gate(
    tmp_path, change, needle
):
    write(tmp_path / "NVDA.csv", change(samples.plain(SESSIONS[:2])))
    line = refused(marketlake(tmp_path, "import", "NVDA.csv"))
    assert line.startswith("error: NVDA.csv: ") and needle in line
    assert "MARKETLAKE_MAX_BAD_ROW_PCT" not in line
    assert written(tmp_path) == []


def test_the_none_usable_refusal_names_the_first_bar_and_its_values(tmp_path):
    text = "date,open,high,low,close,volume\n2024-02-01,10,9,8,9.5,100\n2024-02-02,10,9,8,9.5,1\n"
    write(tmp_path / "NVDA.csv", text)
    line = refused(marketlake(tmp_path, "import", "NVDA.csv"))
    assert line.startswith(
        "error: NVDA.csv: none of its 2 bars can land; the first, 2024-02-01 (open '10', high "
        "'9', low '8', close '9.5', volume '100'): high is below open, close or low."
    )


def test_an_action_file_where_every_row_fails_is_refused_about_the_file(tmp_path):
    write(tmp_path / "NVDA.csv", "Date,Stock Splits\n2024-06-10,ten\n2021-07-20,four\n")
    line = refused(marketlake(tmp_path, "import", "--splits", "NVDA.csv"))
    assert line.startswith("error: NVDA.csv: none of its 2 rows is usable (the first: ")
    assert "'ten'" in line and "10:1" in line and "MARKETLAKE_MAX_BAD_ROW_PCT" not in line
    assert written(tmp_path) == []


def test_the_help_says_which_file_names_give_the_symbol_and_that_folders_work(tmp_path):
    out = ok(CliRunner().invoke(app, ["import", "--help"], env={"COLUMNS": "200"}))
    text = " ".join(out.split())
    for part in ("daily_IBM.csv", "NVDA_daily.csv", "brk.b.csv", "folder", "yfinance", "NYSE"):
        assert part in text, part
