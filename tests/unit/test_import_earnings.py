"""`import --earnings` (issue 24): quarterly earnings from CSV files into raw/earnings/.

Every file is read and checked before anything lands; any row that cannot land refuses the
whole import in one line naming the file, leaving no object, no landing record and no state;
a quarter without an EPS is left out and counted; --eps-as-of records the share basis of the
EPS; a report that differs from the one on record needs --replace (compared on one share
basis, through the splits the lake records).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from marketlake.config import Settings
from marketlake.errors import MarketlakeError
from marketlake.ingest.import_earnings import Imported, run_import_earnings
from marketlake.lake import actions, earnings
from marketlake.sessions import EASTERN
from marketlake.storage import LocalStore

# The last closed session is Friday 2024-06-14.
FRIDAY = dt.datetime(2024, 6, 14, 23, 0, tzinfo=EASTERN)
OURS = "fiscal_date_ending,reported_date,reported_eps\n"
AV = "fiscalDateEnding,reportedDate,reportedEPS,estimatedEPS,surprise,reportTime\n"


@pytest.fixture()
def home(tmp_path) -> Path:
    return tmp_path / "lake"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run(home: Path, files, now=FRIDAY, env: dict | None = None, **kwargs) -> list[Imported]:
    settings = Settings.from_env({"MARKETLAKE_HOME": str(home), **(env or {})})
    return run_import_earnings(settings, LocalStore(home), files, now=lambda: now, **kwargs)


def refusal(home: Path, files, **kwargs) -> str:
    """The one-line refusal of an import, after checking that nothing was written."""
    with pytest.raises(MarketlakeError) as caught:
        run(home, files, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert not home.exists() or not [p for p in home.rglob("*") if p.is_file()], message
    return message


def on_record(home: Path, symbol: str) -> list[tuple[str, str, float, str]]:
    frame = earnings.current(LocalStore(home), symbol)
    return [
        (f.isoformat(), r.isoformat(), e, b.isoformat())
        for f, r, e, b in zip(frame["fiscal"], frame["reported"], frame["eps"], frame["basis"])
    ]


# -- what lands --------------------------------------------------------------------------------


def test_alpha_vantage_header_names_land_as_reported_and_an_unreported_quarter_is_counted(
    home, tmp_path
):
    file = write(
        tmp_path / "IBM_earnings.csv",
        AV + "2024-03-31,2024-04-24,1.68,1.6,0.08,post-market\n"
        "2023-12-31,2024-01-24,3.87,3.78,0.09,post-market\n"
        "2024-06-30,2024-07-24,None,2.2,None,post-market\n",
    )
    assert run(home, [file]) == [Imported("IBM", 2, 0, 1)]
    assert on_record(home, "IBM") == [
        ("2023-12-31", "2024-01-24", 3.87, "2024-01-24"),
        ("2024-03-31", "2024-04-24", 1.68, "2024-04-24"),
    ]
    # Recorded as every landing is (a build checks the object against it), and the lake claimed.
    assert list((home / "state/raw_landed/earnings").glob("*.json"))
    assert '"market"' in (home / "state/ingest_state.json").read_text()
    # The same file again: the same reports, nothing new lands.
    assert run(home, [file]) == [Imported("IBM", 0, 2, 1)]


def test_our_header_in_any_case_with_a_symbol_column_that_agrees(home, tmp_path):
    file = write(
        tmp_path / "brk.b.csv",
        "Symbol,FISCAL_DATE_ENDING,Reported_Date,reported_EPS,note\n"
        "BRK-B,2024-03-31,2024-05-04,5.2,x\nbrk.b,2023-12-31,2024-02-24,-1.5,\n",
    )
    assert run(home, [file]) == [Imported("BRK.B", 2, 0, 0)]
    assert [eps for *_, eps, _ in on_record(home, "BRK.B")] == [-1.5, 5.2]


def test_the_symbol_comes_from_symbol_or_the_file_name_with_the_other_imports_rules(home, tmp_path):
    file = write(tmp_path / "earnings.csv", OURS + "2024-03-31,2024-04-24,1.68\n")
    message = refusal(home, [file])
    assert (
        message.startswith("earnings.csv: the file name is not a ticker") and "--symbol" in message
    )
    assert run(home, [file], symbol="ibm") == [Imported("IBM", 1, 0, 0)]


def test_eps_as_of_records_the_share_basis_of_the_file(home, tmp_path):
    file = write(tmp_path / "NVDA.csv", OURS + "2024-03-31,2024-05-22,0.6\n")
    assert run(home, [file], eps_as_of=dt.date(2024, 6, 13)) == [Imported("NVDA", 1, 0, 0)]
    assert on_record(home, "NVDA") == [("2024-03-31", "2024-05-22", 0.6, "2024-06-13")]


def test_a_vendors_restatement_after_a_split_is_the_same_report_not_a_change(home, tmp_path):
    store = LocalStore(home)
    as_reported = write(tmp_path / "NVDA.csv", OURS + "2024-03-31,2024-05-22,6.12\n")
    assert run(home, [as_reported]) == [Imported("NVDA", 1, 0, 0)]
    split = actions.judge_actions(
        actions.SPLITS, pd.DataFrame({"date": ["2024-06-10"], "value": ["10"]})
    )[0]
    actions.land_actions(
        store, actions.SPLITS, "NVDA", split, "import", dt.date(2024, 6, 14), "2024-06-14 23:30"
    )
    # Downloaded after the 10-for-1 split: the vendor divided the EPS by 10 (and rounds).
    restated = write(tmp_path / "NVDA_earnings.csv", OURS + "2024-03-31,2024-05-22,0.612\n")
    # The same report: the exact as-reported copy on record stays (no rounded restatement
    # replaces it, and nothing is restated).
    assert run(home, [restated], eps_as_of=dt.date(2024, 6, 14)) == [Imported("NVDA", 0, 1, 0)]
    assert on_record(home, "NVDA") == [("2024-03-31", "2024-05-22", 6.12, "2024-05-22")]
    # A vendor rounding the quotient to the cent is the same report too (6.12 / 10 = 0.612);
    # a number off by more than its rounding is a change, refused.
    rounded = write(tmp_path / "nvda-history.csv", OURS + "2024-03-31,2024-05-22,0.61\n")
    assert run(home, [rounded], eps_as_of=dt.date(2024, 6, 14)) == [Imported("NVDA", 0, 1, 0)]
    other = write(tmp_path / "nvda-data.csv", OURS + "2024-03-31,2024-05-22,0.65\n")
    with pytest.raises(MarketlakeError):
        run(home, [other], eps_as_of=dt.date(2024, 6, 14))
    # Taken as reported (no --eps-as-of), the same number is a different EPS than on record.
    with pytest.raises(MarketlakeError) as caught:
        run(home, [restated])
    message = str(caught.value)
    assert "on record as reported 2024-05-22, EPS 6.12, this file says" in message
    assert "EPS 0.612" in message
    assert "pass --eps-as-of with the day it was downloaded" in message
    assert on_record(home, "NVDA") == [("2024-03-31", "2024-05-22", 6.12, "2024-05-22")]


def test_a_changed_report_needs_replace(home, tmp_path):
    first = write(tmp_path / "AMD.csv", OURS + "2024-03-31,2024-04-30,0.62\n")
    run(home, [first])
    corrected = write(tmp_path / "amd_earnings.csv", OURS + "2024-03-31,2024-04-30,0.63\n")
    with pytest.raises(MarketlakeError) as caught:
        run(home, [corrected])
    message = str(caught.value)
    assert message.startswith("amd_earnings.csv: AMD's quarter ending 2024-03-31 is on record")
    assert "EPS 0.62" in message and "says reported 2024-04-30, EPS 0.63" in message
    assert "nothing was imported" in message and "--replace" in message
    assert [eps for *_, eps, _ in on_record(home, "AMD")] == [0.62]
    assert run(home, [corrected], replace=True) == [Imported("AMD", 1, 0, 0)]
    assert [eps for *_, eps, _ in on_record(home, "AMD")] == [0.63]
    moved = write(tmp_path / "amd_moved.csv", OURS + "2024-03-31,2024-05-01,0.63\n")
    with pytest.raises(MarketlakeError, match="says reported 2024-05-01"):
        run(home, [moved], symbol="AMD")


def test_an_integer_eps_over_a_recorded_one_with_decimals_needs_replace(home, tmp_path):
    """Before the review's fix `1` passed for a recorded 1.45 ("equal to its last decimal")
    and landed without --replace."""
    run(home, [write(tmp_path / "IBM.csv", OURS + "2024-03-31,2024-04-24,1.45\n")])
    whole = write(tmp_path / "ibm_earnings.csv", OURS + "2024-03-31,2024-04-24,1\n")
    with pytest.raises(MarketlakeError) as caught:
        run(home, [whole])
    message = str(caught.value)
    assert message.startswith("ibm_earnings.csv: IBM's quarter ending 2024-03-31 is on record")
    assert "EPS 1.45, this file says reported 2024-04-24, EPS 1;" in message
    assert "--replace" in message and "--eps-as-of" not in message  # no split to hint at
    assert on_record(home, "IBM") == [("2024-03-31", "2024-04-24", 1.45, "2024-04-24")]
    assert run(home, [whole], replace=True) == [Imported("IBM", 1, 0, 0)]
    assert on_record(home, "IBM") == [("2024-03-31", "2024-04-24", 1.0, "2024-04-24")]
    # And the other way: 2.4 over a recorded 2 (written "2"), and back.
    run(home, [write(tmp_path / "AMD.csv", OURS + "2024-03-31,2024-04-30,2.0\n")])
    more = write(tmp_path / "amd-2.csv", OURS + "2024-03-31,2024-04-30,2.4\n")
    with pytest.raises(MarketlakeError) as caught:
        run(home, [more], symbol="AMD")
    assert "EPS 2, this file says reported 2024-04-30, EPS 2.4;" in str(caught.value)
    assert run(home, [more], symbol="AMD", replace=True) == [Imported("AMD", 1, 0, 0)]
    assert run(home, [more], symbol="AMD") == [Imported("AMD", 0, 1, 0)]


def test_a_basis_that_changes_the_number_is_a_correction_needing_replace(home, tmp_path):
    store = LocalStore(home)
    run(home, [write(tmp_path / "NVDA.csv", OURS + "2024-03-31,2024-05-22,2.5\n")])
    split = actions.judge_actions(
        actions.SPLITS, pd.DataFrame({"date": ["2024-06-10"], "value": ["2"]})
    )[0]
    actions.land_actions(
        store, actions.SPLITS, "NVDA", split, "import", dt.date(2024, 6, 14), "2024-06-14 23:30"
    )
    # The same 2.5, now said to be on the basis of the day after the 2:1 split: 5.0 per share
    # of the report day, not the 2.5 on record.
    after = dt.date(2024, 6, 11)
    same_number = write(tmp_path / "NVDA_earnings.csv", OURS + "2024-03-31,2024-05-22,2.5\n")
    with pytest.raises(MarketlakeError) as caught:
        run(home, [same_number], eps_as_of=after)
    message = str(caught.value)
    assert message.startswith(
        "NVDA_earnings.csv: NVDA's quarter ending 2024-03-31 is on record as reported "
        "2024-05-22, EPS 2.5 (1.25 on the share basis of 2024-06-11), this file says reported "
        "2024-05-22, EPS 2.5;"
    )
    assert "--replace" in message
    assert on_record(home, "NVDA") == [("2024-03-31", "2024-05-22", 2.5, "2024-05-22")]
    assert run(home, [same_number], eps_as_of=after, replace=True) == [Imported("NVDA", 1, 0, 0)]
    assert on_record(home, "NVDA") == [("2024-03-31", "2024-05-22", 2.5, "2024-06-11")]
    # Now the record is on that basis: the same file again is the same report.
    assert run(home, [same_number], eps_as_of=after) == [Imported("NVDA", 0, 1, 0)]


def test_one_quarter_under_two_dates_is_refused_naming_the_file_and_both_dates(home, tmp_path):
    later = dt.datetime(2024, 8, 2, 23, 0, tzinfo=EASTERN)
    run(home, [write(tmp_path / "AAPL.csv", OURS + "2024-06-30,2024-08-01,1.40\n")], now=later)
    before = sorted((p, p.read_bytes()) for p in home.rglob("*") if p.is_file())
    good = write(tmp_path / "MSFT.csv", OURS + "2024-06-30,2024-07-30,2.95\n")
    other = write(
        tmp_path / "aapl_earnings.csv",
        OURS + "2024-03-30,2024-05-02,1.53\n2024-06-29,2024-08-01,1.40\n",
    )
    with pytest.raises(MarketlakeError) as caught:
        run(home, [good, other], now=later)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "aapl_earnings.csv: AAPL's quarter 2024-06-29 is 1 day(s) from quarter 2024-06-30"
    )
    assert "nothing was imported" in message
    # Nothing landed: not the other file, not the other quarter, no landing record.
    assert sorted((p, p.read_bytes()) for p in home.rglob("*") if p.is_file()) == before


def test_a_file_holding_one_quarter_under_two_dates_is_refused(home, tmp_path):
    later = dt.datetime(2024, 8, 2, 23, 0, tzinfo=EASTERN)
    file = write(
        tmp_path / "AAPL.csv",
        OURS + "2024-03-30,2024-05-02,1.53\n2024-06-29,2024-08-01,1.40\n"
        "2024-06-30,2024-08-01,1.40\n",
    )
    message = refusal(home, [file], now=later)
    assert message.startswith(
        "AAPL.csv: AAPL's quarter 2024-06-29 is 1 day(s) from quarter 2024-06-30"
    )
    assert "nothing was imported" in message


# -- refusals: one line naming the file, nothing written ------------------------------------


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            "2024-03-31,2024-04-24,1.68\n2024-06-30,2024-06-01,2.1\n",
            "1 of its 2 rows cannot land (the quarter ending '2024-06-30': reported_date "
            "2024-06-01 is before its quarter's end 2024-06-30)",
        ),
        (
            "2024-03-31,2024-04-24,1.68\n2024-03-31,2024-04-25,1.7\n",
            "the quarter ending 2024-03-31 (fiscal_date_ending) is given more than once",
        ),
        ("2024-03-31,2024-04-24,1.68\n2023-12-31,2024-01-24,nan\n", "'nan' is not a finite number"),
        ("2024-03-31,2024-04-24,1.68\n2023-12-31,2024-01-24,inf\n", "'inf' is not a finite number"),
        (
            "2024-03-31,2024-04-24,1.68\n2023-12-31,2024-01-24,n/a\n",
            "'n/a' is not a finite number",
        ),
        (
            "2024-03-31,2024-04-24,1.68\n2023-12-31,2024-01-24,about 3\n",
            "'about 3' is not a finite number",
        ),
        (
            "2024-03-31,2024-04-24,1.68\n2023-31-12,2024-01-24,3.1\n",
            "fiscal_date_ending '2023-31-12' is not a date",
        ),
        (
            "2024-03-31,2024-06-17,1.68\n",
            "the quarter ending 2024-03-31 is reported on 2024-06-17, after the last closed NYSE "
            "session (2024-06-14); nothing was imported. Remove the row, and import it after "
            "the close of 2024-06-17",
        ),
        (
            "Q1,April,1.68\nQ2,July,2\n",
            "none of its 2 rows is usable (the first, the quarter ending 'Q1': fiscal_date_ending",
        ),
        (
            "2024-03-31,2024-06-15,1.68\n",
            "reported on 2024-06-15, after the last closed NYSE session (2024-06-14); nothing "
            "was imported. Remove the row, and import it after the close of 2024-06-17",
        ),
        (",,\n,,None\n", "none of its 2 quarters has a reported_eps"),
    ],
)
def test_a_bad_row_refuses_the_whole_import_naming_the_file(home, tmp_path, rows, expected):
    good = write(tmp_path / "AAPL.csv", OURS + "2024-03-31,2024-05-02,1.53\n")
    bad = write(tmp_path / "IBM.csv", OURS + rows)
    message = refusal(home, [good, bad])
    assert message.startswith("IBM.csv: ") and expected in message
    assert "nothing was imported" in message


def test_no_bad_row_share_lets_a_bad_row_through(home, tmp_path):
    """Unlike --splits / --dividends, MARKETLAKE_MAX_BAD_ROW_PCT quarantines no quarter."""
    rows = "".join(f"{y}-03-31,{y}-04-24,1.{y % 100:02d}\n" for y in range(2001, 2024))
    bad = write(tmp_path / "IBM.csv", OURS + rows + "2024-03-31,2024-04-24,x\n")
    message = refusal(home, [bad], env={"MARKETLAKE_MAX_BAD_ROW_PCT": "50"})
    assert message.startswith("IBM.csv: 1 of its 24 rows cannot land")
    assert not (home / "quarantine").exists()


def test_files_without_the_columns_or_rows_are_refused(home, tmp_path):
    missing = write(tmp_path / "IBM.csv", "date,eps\n2024-03-31,1.68\n")
    message = refusal(home, [missing])
    assert message.startswith("IBM.csv: missing column(s) fiscal_date_ending, reported_date")
    assert "fiscalDateEnding,reportedDate,reportedEPS" in message
    empty = write(tmp_path / "AMD.csv", OURS)
    assert refusal(home, [empty]) == (
        "AMD.csv: no rows under its header; nothing was imported. Add a row per quarter: "
        "fiscal_date_ending,reported_date,reported_eps"
    )


def test_a_symbol_column_naming_another_symbol_is_refused(home, tmp_path):
    file = write(tmp_path / "NVDA.csv", "symbol," + OURS + "AMD,2024-03-31,2024-04-30,0.62\n")
    message = refusal(home, [file])
    assert message.startswith("NVDA.csv: its symbol column says AMD but the file name says NVDA")


def test_two_files_of_one_symbol_are_refused(home, tmp_path):
    one = write(tmp_path / "IBM.csv", OURS + "2024-03-31,2024-04-24,1.68\n")
    two = write(tmp_path / "ibm_earnings.csv", OURS + "2023-12-31,2024-01-24,3.87\n")
    message = refusal(home, [one, two])
    assert message.startswith("IBM.csv and ibm_earnings.csv both hold IBM; nothing was imported")


def test_eps_as_of_after_the_last_session_or_before_a_report_is_refused(home, tmp_path):
    file = write(tmp_path / "IBM.csv", OURS + "2024-03-31,2024-04-24,1.68\n")
    message = refusal(home, [file], eps_as_of=dt.date(2024, 6, 15))
    assert message.startswith("--eps-as-of 2024-06-15 is after the last closed NYSE session")
    message = refusal(home, [file], eps_as_of=dt.date(2024, 4, 23))
    assert message.startswith(
        "IBM.csv: the quarter ending 2024-03-31 was reported on 2024-04-24, after --eps-as-of "
        "2024-04-23"
    )


def test_a_refusal_after_an_earlier_import_changes_nothing_on_record(home, tmp_path):
    run(home, [write(tmp_path / "IBM.csv", OURS + "2024-03-31,2024-04-24,1.68\n")])
    before = sorted((p, p.read_bytes()) for p in home.rglob("*") if p.is_file())
    good = write(tmp_path / "AMD.csv", OURS + "2024-03-31,2024-04-30,0.62\n")
    changed = write(tmp_path / "ibm_earnings.csv", OURS + "2024-03-31,2024-04-24,1.86\n")
    with pytest.raises(MarketlakeError, match="--replace"):
        run(home, [good, changed])
    assert sorted((p, p.read_bytes()) for p in home.rglob("*") if p.is_file()) == before
