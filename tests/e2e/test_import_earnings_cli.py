"""End to end: `marketlake import --earnings FILE... [--symbol SYM] [--eps-as-of DATE]` on a
local lake: what it prints, what it lands (and that a build reads it), and its one-line
refusals that leave the lake as it was.

In-process through typer's CliRunner, the lake under tmp_path (--home)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from import_cli import clear_settings, marketlake, ok, refused
from marketlake.lake import earnings
from marketlake.lock import lake_lock
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore

pytestmark = pytest.mark.e2e

AV = "fiscalDateEnding,reportedDate,reportedEPS,estimatedEPS,surprise,surprisePercentage\n"
IBM = (
    AV + "2024-03-31,2024-04-24,1.68,1.6,0.08,5\n"
    "2023-12-31,2024-01-24,3.87,3.78,0.09,2.4\n"
    "2023-09-30,2023-10-25,2.2,2.13,0.07,3.3\n"
    "2023-06-30,2023-07-19,2.18,2.01,0.17,8.5\n"
    "2024-06-30,2099-07-24,None,2.2,None,None\n"
)


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    clear_settings(monkeypatch, tmp_path)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def written(tmp_path: Path) -> dict[str, bytes]:
    """Every file the lake holds but its lock, with its bytes."""
    lake = tmp_path / "lake"
    return {str(p): p.read_bytes() for p in lake.rglob("*") if p.is_file() and p.name != ".lock"}


def recorded(tmp_path: Path, symbol: str) -> list[tuple[str, float, str]]:
    """(fiscal_date_ending, reported_eps, eps_basis_date) of the symbol's current reports."""
    frame = earnings.current(LocalStore(tmp_path / "lake"), symbol)
    return [
        (f.isoformat(), e, b.isoformat())
        for f, e, b in zip(frame["fiscal"], frame["eps"], frame["basis"])
    ]


def test_earnings_land_and_the_build_reads_them(tmp_path):
    days = sessions_between(dt.date(2024, 4, 22), dt.date(2024, 4, 30))
    bars = "".join(f"{d},180,182,179,181,1000\n" for d in days)
    write(tmp_path / "IBM.csv", "date,open,high,low,close,volume\n" + bars)
    ok(marketlake(tmp_path, "import", "IBM.csv"))
    write(tmp_path / "ibm_earnings.csv", IBM)
    out = ok(marketlake(tmp_path, "import", "--earnings", "ibm_earnings.csv"))
    assert out.splitlines() == [
        "import: IBM: 4 earnings report(s) landed; 1 quarter(s) without an EPS left out (not "
        "reported yet)",
        "next: marketlake build",
    ]
    assert recorded(tmp_path, "IBM")[-1] == ("2024-03-31", 1.68, "2024-04-24")
    # The build checks the landed object against its record and registers it.
    ok(marketlake(tmp_path, "build"))
    out = ok(marketlake(tmp_path, "import", "--earnings", "ibm_earnings.csv"))
    assert out.startswith("import: IBM: 0 earnings report(s) landed; 4 already on record")


def test_symbol_and_eps_as_of_record_the_files_share_basis(tmp_path):
    write(tmp_path / "av.csv", IBM)
    args = ("import", "--earnings", "av.csv", "--symbol", "ibm", "--eps-as-of", "2024-06-03")
    out = ok(marketlake(tmp_path, *args))
    assert out.startswith("import: IBM: 4 earnings report(s) landed")
    assert {basis for *_, basis in recorded(tmp_path, "IBM")} == {"2024-06-03"}


def test_a_bad_file_refuses_the_import_in_one_line_and_lands_nothing(tmp_path):
    write(
        tmp_path / "AMD.csv",
        "fiscal_date_ending,reported_date,reported_eps\n2024-03-31,2024-04-30,0.62\n",
    )
    write(tmp_path / "IBM.csv", IBM.replace("3.87", "inf"))
    line = refused(marketlake(tmp_path, "import", "--earnings", "AMD.csv", "IBM.csv"))
    assert line.startswith("error: IBM.csv: 1 of its 4 rows cannot land")
    assert "'inf' is not a finite number" in line and "nothing was imported" in line
    assert written(tmp_path) == {}


def test_a_changed_report_needs_replace_and_nothing_changes_without_it(tmp_path):
    write(tmp_path / "IBM.csv", IBM)
    ok(marketlake(tmp_path, "import", "--earnings", "IBM.csv"))
    before = written(tmp_path)
    write(tmp_path / "ibm_earnings.csv", IBM.replace("1.68", "1.86"))
    line = refused(marketlake(tmp_path, "import", "--earnings", "ibm_earnings.csv"))
    assert "IBM's quarter ending 2024-03-31 is on record as reported 2024-04-24, EPS 1.68" in line
    assert "--replace" in line
    assert written(tmp_path) == before
    out = ok(marketlake(tmp_path, "import", "--earnings", "ibm_earnings.csv", "--replace"))
    assert out.startswith("import: IBM: 1 earnings report(s) landed; 3 already on record")
    assert recorded(tmp_path, "IBM")[-1] == ("2024-03-31", 1.86, "2024-04-24")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--earnings", "--splits"), "error: --splits and --earnings: import one kind at a time"),
        (
            ("--dividends", "--eps-as-of", "2024-06-03"),
            "error: --eps-as-of gives the share basis of the EPS in --earnings files; add "
            "--earnings",
        ),
        (("--earnings", "--eps-as-of", "June 3"), "error: --eps-as-of 'June 3': not a day like"),
        (
            ("--earnings", "--eps-as-of", "2099-01-02"),
            "error: --eps-as-of 2099-01-02 is after the last closed NYSE session",
        ),
        (("--replace",), "error: --replace corrects splits, dividends or earnings on record"),
    ],
)
def test_flags_that_do_not_go_together_are_refused(tmp_path, args, expected):
    write(tmp_path / "IBM.csv", IBM)
    line = refused(marketlake(tmp_path, "import", "IBM.csv", *args))
    assert line.startswith(expected)
    assert written(tmp_path) == {}


def test_an_import_while_another_command_holds_the_lake_is_refused(tmp_path):
    write(tmp_path / "IBM.csv", IBM)
    with lake_lock(tmp_path / "lake"):
        line = refused(marketlake(tmp_path, "import", "--earnings", "IBM.csv"))
    assert "another marketlake command" in line
    assert written(tmp_path) == {}


def test_the_help_names_the_earnings_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = ok(marketlake(tmp_path, "import", "--help"))
    assert "--earnings" in out and "--eps-as-of" in out and "fiscal_date_ending" in out


def test_a_re_import_is_the_remedy_for_a_damaged_earnings_object(tmp_path):
    days = sessions_between(dt.date(2024, 4, 22), dt.date(2024, 4, 30))
    bars = "".join(f"{d},180,182,179,181,1000\n" for d in days)
    write(tmp_path / "IBM.csv", "date,open,high,low,close,volume\n" + bars)
    write(tmp_path / "ibm_earnings.csv", IBM)
    ok(marketlake(tmp_path, "import", "IBM.csv"))
    ok(marketlake(tmp_path, "import", "--earnings", "ibm_earnings.csv"))
    (damaged,) = (tmp_path / "lake/raw/earnings").rglob("IBM.csv")
    damaged.write_bytes(damaged.read_bytes()[:-20])
    line = refused(marketlake(tmp_path, "build"))
    assert "raw/earnings/" in line and "import --earnings" in line
    out = ok(marketlake(tmp_path, "import", "--earnings", "ibm_earnings.csv"))
    assert out.startswith("import: IBM: 4 earnings report(s) landed")  # landed again
    assert list((tmp_path / "lake/quarantine/damaged/raw/earnings").rglob("IBM.csv"))
    ok(marketlake(tmp_path, "build"))
