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


def test_a_future_split_is_refused_naming_the_file_and_the_date(tmp_path):
    (tmp_path / "nvda.csv").write_text("date,split_factor\n2024-06-10,10\n2099-06-10,10\n")
    line = one_line_error(marketlake(tmp_path, "import", "--splits", "nvda.csv"))
    assert "nvda.csv" in line and "2099-06-10" in line and "last closed NYSE session" in line
    assert not (tmp_path / "lake" / "raw").exists()


def test_a_date_twice_in_a_file_is_refused(tmp_path):
    (tmp_path / "amd.csv").write_text("date,amount\n2024-05-10,0.24\n2024-05-10,0.5\n")
    line = one_line_error(marketlake(tmp_path, "import", "--dividends", "amd.csv"))
    assert "amd.csv: 2024-05-10 is given more than once" in line


def test_a_changed_factor_needs_replace(tmp_path):
    (tmp_path / "nvda.csv").write_text("date,split_factor\n2024-06-10,10\n")
    ok(marketlake(tmp_path, "import", "--splits", "nvda.csv"))
    (tmp_path / "nvda_splits.csv").write_text("date,split_factor\n2024-06-10,4\n")
    line = one_line_error(marketlake(tmp_path, "import", "--splits", "nvda_splits.csv"))
    assert "NVDA 2024-06-10 has split_factor 10 on record" in line and "--replace" in line
    out = ok(marketlake(tmp_path, "import", "--splits", "nvda_splits.csv", "--replace"))
    assert "import: NVDA: 1 splits row(s) landed" in out
    splits = actions.current(LocalStore(tmp_path / "lake"), actions.SPLITS)
    assert list(splits["value"]) == [4.0]
    line = one_line_error(marketlake(tmp_path, "import", "nvda.csv", "--replace"))
    assert "--replace" in line and "--splits, --dividends or --earnings" in line


def test_replace_is_explained_in_the_help(tmp_path):
    out = ok(marketlake(tmp_path, "import", "--help", env={"COLUMNS": "200"}))
    assert "--replace" in out and "on record" in out


def test_a_symbol_column_naming_another_symbol_is_refused(tmp_path):
    (tmp_path / "NVDA.csv").write_text("symbol,date,split_factor\nAMD,2024-06-10,10\n")
    line = one_line_error(marketlake(tmp_path, "import", "--splits", "NVDA.csv"))
    assert "NVDA.csv: its symbol column says AMD but the file name says NVDA" in line
    (tmp_path / "bars.csv").write_text(
        "date,symbol,open,high,low,close,volume\n2024-06-14,AMD,10,11,9,10.5,100\n"
    )
    line = one_line_error(marketlake(tmp_path, "import", "bars.csv", "--symbol", "NVDA"))
    assert "bars.csv: its symbol column says AMD but --symbol says NVDA" in line


def test_an_absurd_dividend_is_a_warning_in_the_build_and_in_status(tmp_path):
    days = ["2024-06-10", "2024-06-11", "2024-06-12", "2024-06-13", "2024-06-14"]
    rows = "".join(f"{d},57,59,56,58,1000\n" for d in days)
    (tmp_path / "ko.csv").write_text("date,open,high,low,close,volume\n" + rows)
    (tmp_path / "ko_divs.csv").write_text("date,amount\n2024-06-12,1000000000\n")
    ok(marketlake(tmp_path, "import", "ko.csv"))
    ok(marketlake(tmp_path, "import", "--dividends", "ko_divs.csv", "--symbol", "KO"))
    built = marketlake(tmp_path, "build")
    assert built.returncode == 0, built.stderr
    assert "dividend_above_half_close" in built.stdout + built.stderr
    out = ok(marketlake(tmp_path, "status", env={"COLUMNS": "200"}))
    (line,) = [x for x in out.splitlines() if "dividend_above_half_close" in x]
    assert "warning" in line and "fail" in line
