"""`marketlake import` of Yahoo's files that end before a split the lake records: bars are
refused in one line and nothing lands; Yahoo's split-adjusted dividends are restored as paid
from a history() file's own Stock Splits column, or refused. Plain files are taken as traded.

In-process through typer's CliRunner, the lake under tmp_path (--home)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import import_samples as samples
from import_cli import clear_settings, marketlake, ok, refused
from marketlake.lake import actions
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore

pytestmark = pytest.mark.e2e

NVDA = {samples.NVDA_SPLIT: 10.0}
DAYS_2023 = sessions_between(dt.date(2023, 11, 1), dt.date(2023, 12, 29))


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    clear_settings(monkeypatch, tmp_path)


def record_split(tmp_path: Path, factor: str = "10") -> None:
    (tmp_path / "splits.csv").write_text(f"date,split_factor\n2024-06-10,{factor}\n")
    ok(marketlake(tmp_path, "import", "--splits", "splits.csv", "--symbol", "NVDA"))


def no_bars(tmp_path: Path) -> bool:
    return not list((tmp_path / "lake").glob("*/daily_prices/**/*.csv"))


def landed_dividends(tmp_path: Path) -> dict[str, float]:
    frame = actions.current(LocalStore(tmp_path / "lake"), actions.DIVIDENDS, "NVDA")
    return {d.isoformat(): v for d, v in zip(frame["date"], frame["value"])}


def test_a_2023_yahoo_download_is_refused_once_a_2024_split_is_recorded(tmp_path):
    record_split(tmp_path)
    traded = samples.traded(DAYS_2023, {}, start=480.0)
    (tmp_path / "NVDA.csv").write_text(samples.yahoo_web(traded, NVDA))
    line = refused(marketlake(tmp_path, "import", "NVDA.csv"))
    assert line.startswith(
        "error: NVDA.csv: Yahoo's prices are adjusted for splits up to the day they were "
        "downloaded, and the lake records a 10:1 split on 2024-06-10 after this file's last "
        "bar (2023-12-29), so its prices may be a tenth of those traded; nothing was imported"
    )
    assert no_bars(tmp_path)
    # The same bars as a plain as-traded file: nothing says they are adjusted.
    (tmp_path / "NVDA.csv").write_text(samples.as_traded_csv(traded))
    out = ok(marketlake(tmp_path, "import", "NVDA.csv"))
    assert f"import: NVDA: {len(traded)} bar(s) landed" in out


def test_a_yahoo_download_across_the_recorded_split_keeps_today_s_refusal(tmp_path):
    record_split(tmp_path)
    traded = samples.traded(samples.NVDA_DAYS, NVDA, start=1150.0)
    (tmp_path / "NVDA.csv").write_text(samples.yahoo_web(traded, NVDA))
    line = refused(marketlake(tmp_path, "import", "NVDA.csv"))
    assert "its prices are split-adjusted (no jump at the 10:1 split of 2024-06-10)" in line
    assert no_bars(tmp_path)


def test_a_2023_yahoo_download_with_a_small_recorded_split_lands(tmp_path):
    record_split(tmp_path, "6:5")
    traded = samples.traded(DAYS_2023, {}, start=480.0)
    (tmp_path / "NVDA.csv").write_text(samples.yahoo_web(traded, {samples.NVDA_SPLIT: 1.2}))
    assert f"import: NVDA: {len(traded)} bar(s) landed" in ok(
        marketlake(tmp_path, "import", "NVDA.csv")
    )


def test_yahoo_s_dividends_download_before_a_recorded_split_is_refused(tmp_path):
    record_split(tmp_path)
    (tmp_path / "NVDA.csv").write_text("Date,Dividends\n2024-03-05,0.004\n2024-06-11,0.01\n")
    line = refused(marketlake(tmp_path, "import", "--dividends", "NVDA.csv"))
    assert "the lake records a 10:1 split on 2024-06-10 after its dividend of 2024-03-05" in line
    assert line.endswith("or the dividends as paid as date,amount")
    assert landed_dividends(tmp_path) == {}
    # After the split only: as paid.
    (tmp_path / "NVDA.csv").write_text("Date,Dividends\n2024-06-11,0.01\n")
    assert "import: NVDA: 1 dividends row(s) landed" in ok(
        marketlake(tmp_path, "import", "--dividends", "NVDA.csv")
    )
    assert landed_dividends(tmp_path) == {"2024-06-11": 0.01}


def test_a_history_file_s_dividends_before_its_own_split_land_as_paid(tmp_path):
    traded = samples.traded(samples.NVDA_DAYS, NVDA, start=1150.0)
    yahoo = {dt.date(2024, 5, 23): 0.004, dt.date(2024, 6, 11): 0.01}  # 0.04 paid, a tenth
    (tmp_path / "NVDA.csv").write_text(samples.yfinance_export(traded, NVDA, yahoo))
    assert "import: NVDA: 2 dividends row(s) landed" in ok(
        marketlake(tmp_path, "import", "--dividends", "NVDA.csv")
    )
    assert landed_dividends(tmp_path) == {"2024-05-23": 0.04, "2024-06-11": 0.01}
