"""`marketlake import` never lands adjusted prices as traded (ingest.adjusted): Yahoo's
split-adjusted prices are restored as traded when the file's own Stock Splits column explains
them, refused in one line naming the split otherwise; yfinance's dividend-adjusted
history(auto_adjust=True) is refused. A refusal lands nothing.

In-process through typer's CliRunner, the lake under tmp_path (--home)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

import import_samples as samples
from import_cli import clear_settings, marketlake, ok, refused

pytestmark = pytest.mark.e2e

NVDA = {samples.NVDA_SPLIT: 10.0}
REVERSE = {samples.REVERSE_SPLIT: 0.25}
BEFORE = dt.date(2024, 6, 7)  # NVDA's last session before its split


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    clear_settings(monkeypatch, tmp_path)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def raw_bars(tmp_path: Path, symbol: str) -> dict[str, tuple[float, int]]:
    """trade_date -> (close, volume) of the symbol's raw bars."""
    rows = {}
    for path in (tmp_path / "lake/raw/daily_prices").glob(f"ingest_date=*/{symbol}.csv"):
        for row in csv.DictReader(io.StringIO(path.read_text())):
            rows[row["trade_date"]] = (float(row["close"]), int(row["volume"]))
    return rows


def no_bars(tmp_path: Path) -> bool:
    return not list((tmp_path / "lake").glob("*/daily_prices/**/*.csv"))


def yahoo_close(text: str, day: dt.date) -> tuple[float, int]:
    """(Close, Volume) of the file's row of `day`."""
    rows = csv.DictReader(io.StringIO(text))
    row = next(r for r in rows if r["Date"][:10] == day.isoformat())
    return float(row["Close"]), int(row["Volume"])


def nvda_traded() -> list[dict]:
    return samples.traded(samples.NVDA_DAYS, NVDA, start=1150.0)


def test_a_yfinance_history_across_a_split_lands_as_traded_and_builds_adjusted_once(tmp_path):
    traded = nvda_traded()
    text = samples.yfinance_export(traded, NVDA)
    write(tmp_path / "NVDA.csv", text)
    out = ok(marketlake(tmp_path, "import", "NVDA.csv"))
    assert out.splitlines()[0] == (
        f"import: NVDA: {len(traded)} bar(s) landed ({traded[0]['date']} .. "
        f"{traded[-1]['date']}); the split adjustment undone (the 10:1 split of 2024-06-10)"
    )
    got = raw_bars(tmp_path, "NVDA")
    adjusted_close, adjusted_volume = yahoo_close(text, BEFORE)
    close, volume = got[BEFORE.isoformat()]
    assert close == pytest.approx(adjusted_close * 10, rel=1e-12)
    assert volume == adjusted_volume // 10 and volume * 10 == adjusted_volume
    want = {b["date"].isoformat(): (b["close"], b["volume"]) for b in traded}
    assert {d: (round(c, 2), v) for d, (c, v) in got.items()} == want
    # The same file gives the split; the build adjusts the traded prices once.
    assert "import: NVDA: 1 splits row(s) landed" in ok(
        marketlake(tmp_path, "import", "--splits", "NVDA.csv")
    )
    ok(marketlake(tmp_path, "build"))
    sql = (
        "SELECT close, adj_close, adj_volume FROM daily_prices WHERE symbol = 'NVDA' "
        f"AND trade_date = DATE '{BEFORE}'"
    )
    (row,) = csv.DictReader(io.StringIO(ok(marketlake(tmp_path, "query", sql, "--format", "csv"))))
    assert float(row["close"]) == pytest.approx(want[BEFORE.isoformat()][0])
    assert float(row["adj_close"]) == pytest.approx(adjusted_close, rel=1e-6)
    assert int(float(row["adj_volume"])) == adjusted_volume


def test_the_file_without_its_splits_column_is_refused_once_the_split_is_recorded(tmp_path):
    write(tmp_path / "splits.csv", samples.YAHOO_SPLITS)
    ok(marketlake(tmp_path, "import", "--splits", "splits.csv", "--symbol", "NVDA"))
    write(tmp_path / "NVDA.csv", samples.yfinance_export(nvda_traded(), NVDA, splits_column=False))
    write(tmp_path / "AMD.csv", samples.as_traded_csv(samples.traded(samples.NVDA_DAYS, {}, 160)))
    line = refused(marketlake(tmp_path, "import", "AMD.csv", "NVDA.csv"))
    assert line == (
        "error: NVDA.csv: its prices are split-adjusted (no jump at the 10:1 split of "
        "2024-06-10); nothing was imported. The lake stores prices as traded and adjusts them "
        "itself: import unadjusted prices (e.g. from your broker or the vendor), or a yfinance "
        "history(auto_adjust=False).to_csv() export that runs to today"
    )
    assert no_bars(tmp_path)  # not AMD's either
    # Yahoo's web download of it: the same.
    write(tmp_path / "NVDA.csv", samples.yahoo_web(nvda_traded(), NVDA))
    assert "no jump at the 10:1 split of 2024-06-10" in refused(
        marketlake(tmp_path, "import", "NVDA.csv")
    )
    assert no_bars(tmp_path)


def test_as_traded_prices_across_a_recorded_split_land_unchanged(tmp_path):
    write(tmp_path / "splits.csv", "date,split_factor\n2024-06-10,10\n")
    ok(marketlake(tmp_path, "import", "--splits", "splits.csv", "--symbol", "NVDA"))
    traded = nvda_traded()
    write(tmp_path / "NVDA.csv", samples.as_traded_csv(traded))
    out = ok(marketlake(tmp_path, "import", "NVDA.csv"))
    assert out.splitlines()[0].endswith(f"({traded[0]['date']} .. {traded[-1]['date']})")
    want = {b["date"].isoformat(): (b["close"], b["volume"]) for b in traded}
    assert raw_bars(tmp_path, "NVDA") == want


def test_a_reverse_split_is_restored_as_traded(tmp_path):
    traded = samples.traded(samples.REVERSE_DAYS, REVERSE, start=5.0)
    text = samples.yfinance_export(traded, REVERSE)
    write(tmp_path / "INTC.csv", text)
    out = ok(marketlake(tmp_path, "import", "INTC.csv"))
    assert "; the split adjustment undone (the 1:4 split of 2023-08-07)\n" in out
    before = dt.date(2023, 8, 4)
    adjusted_close, adjusted_volume = yahoo_close(text, before)
    close, volume = raw_bars(tmp_path, "INTC")[before.isoformat()]
    assert close == pytest.approx(adjusted_close / 4, rel=1e-12)
    assert volume == adjusted_volume * 4


def test_yfinance_s_auto_adjusted_history_is_refused_with_a_dividend_only(tmp_path):
    traded = samples.traded(samples.NVDA_DAYS, {}, start=180.0)
    with_dividend = samples.yfinance_export(
        traded, {}, {dt.date(2024, 5, 9): 1.67}, auto_adjust=True
    )
    write(tmp_path / "IBM.csv", with_dividend)
    line = refused(marketlake(tmp_path, "import", "IBM.csv"))
    assert line.startswith("error: IBM.csv: its prices are adjusted for dividends")
    assert "a dividend on 2024-05-09" in line and "history(auto_adjust=False)" in line
    assert no_bars(tmp_path)
    write(tmp_path / "IBM.csv", samples.yfinance_export(traded, {}, auto_adjust=True))
    ok(marketlake(tmp_path, "import", "IBM.csv"))
    assert len(raw_bars(tmp_path, "IBM")) == len(traded)


def test_a_split_too_small_to_tell_refuses_nothing(tmp_path):
    write(tmp_path / "splits.csv", "date,split_factor\n2024-06-10,6:5\n")
    ok(marketlake(tmp_path, "import", "--splits", "splits.csv", "--symbol", "MU"))
    small = {samples.NVDA_SPLIT: 1.2}
    write(
        tmp_path / "MU.csv", samples.yahoo_web(samples.traded(samples.NVDA_DAYS, small, 90), small)
    )
    out = ok(marketlake(tmp_path, "import", "MU.csv"))
    assert f"import: MU: {len(samples.NVDA_DAYS)} bar(s) landed" in out
