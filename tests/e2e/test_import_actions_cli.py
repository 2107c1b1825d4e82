"""End to end: `marketlake import --splits FILE...` and `--dividends FILE...`."""

from __future__ import annotations

from cli_run import marketlake, ok, one_line_error
from marketlake.lake import actions
from marketlake.storage import LocalStore


def test_splits_and_dividends_import_from_csv_any_case_other_columns_ignored(tmp_path):
    (tmp_path / "nvda.csv").write_text("Date,Split_Factor,Note\n2024-06-10,10,ten for one\n")
    (tmp_path / "intc_splits.csv").write_text("DATE,split_factor\n2026-03-16,0.25\n")
    (tmp_path / "divs.csv").write_text(
        "date,amount,payment\n2024-05-10,0.04,2024-05-20\n2024-02-09,0.04,x\nnope,1,\n"
    )
    out = ok(marketlake(tmp_path, "import", "--splits", "nvda.csv", "intc_splits.csv"))
    assert "import: NVDA: 1 splits row(s) landed" in out
    assert "import: INTC: 1 splits row(s) landed" in out
    # One unusable row of three is over the 5% default: allowed here by the setting.
    env = {"MARKETLAKE_MAX_BAD_ROW_PCT": "50"}
    out = ok(marketlake(tmp_path, "import", "--dividends", "divs.csv", "--symbol", "nvda", env=env))
    assert "import: NVDA: 2 dividends row(s) landed; 1 row(s) quarantined" in out
    assert list((tmp_path / "lake").glob("quarantine/dividends/*/NVDA.*.csv"))
    store = LocalStore(tmp_path / "lake")
    splits = actions.current(store, actions.SPLITS)
    assert set(zip(splits["symbol"], splits["value"])) == {("NVDA", 10.0), ("INTC", 0.25)}


def test_a_file_without_the_columns_is_refused_in_one_line(tmp_path):
    (tmp_path / "nvda.csv").write_text("date,ratio\n2024-06-10,10\n")
    line = one_line_error(marketlake(tmp_path, "import", "--splits", "nvda.csv"))
    assert "nvda.csv" in line and "date,split_factor" in line


def test_a_file_with_too_many_unusable_rows_lands_nothing(tmp_path):
    (tmp_path / "nvda.csv").write_text("date,amount\n2024-05-10,0.04\nnope,1\n")
    line = one_line_error(marketlake(tmp_path, "import", "--dividends", "nvda.csv"))
    assert "MARKETLAKE_MAX_BAD_ROW_PCT" in line and "nothing was imported" in line
    assert not (tmp_path / "lake" / "raw" / "dividends").exists()
