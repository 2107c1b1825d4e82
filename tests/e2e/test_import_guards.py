"""End to end: `marketlake import` holds a file to the provider's rules, and a file with too
many impossible bars lands nothing.

- a weekend or holiday bar, or one of a session to come, is quarantined with its reason;
- a file whose dates cannot be read at all is refused, naming the format it expects;
- a file with more than MARKETLAKE_MAX_BAD_ROW_PCT impossible bars lands nothing: the whole
  file goes to quarantine and the command exits 1 naming the count, the share and the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from cli_run import marketlake, ok, one_line_error
from marketlake.sessions import sessions_between

pytestmark = pytest.mark.e2e

SESSIONS = sessions_between(dt.date(2024, 5, 1), dt.date(2024, 6, 28))  # 41 sessions
HEADER = ["date", "open", "high", "low", "close", "volume"]


def row(day: dt.date | str, **changes) -> list[str]:
    text = day if isinstance(day, str) else day.isoformat()
    values = {
        "open": "50.00",
        "high": "52.00",
        "low": "49.00",
        "close": "51.00",
        "volume": "1000000",
    }
    values.update(changes)
    return [text, values["open"], values["high"], values["low"], values["close"], values["volume"]]


def write(path: Path, rows: list[list[str]]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    path.write_text(out.getvalue())
    return path


def raw_dates(cwd: Path, symbol: str) -> set[str]:
    found = set()
    for path in (cwd / "lake" / "raw" / "daily_prices").glob(f"ingest_date=*/{symbol}.csv"):
        found |= {r["trade_date"] for r in csv.DictReader(io.StringIO(path.read_text()))}
    return found


def quarantined(cwd: Path) -> dict[str, str]:
    """trade_date -> reason, over every quarantined-bar file of the lake."""
    reasons = {}
    for path in (cwd / "lake" / "quarantine").rglob("*.csv"):
        for record in csv.DictReader(io.StringIO(path.read_text())):
            if record.get("reason"):
                reasons[record["trade_date"]] = record["reason"]
    return reasons


@pytest.mark.parametrize(
    ("day", "needle"),
    [
        ("2024-06-01", "not an NYSE session"),  # a Saturday
        ("2024-06-19", "not an NYSE session"),  # Juneteenth, a holiday
        ((dt.date.today() + dt.timedelta(days=30)).isoformat(), "future"),
    ],
)
def test_a_bar_the_provider_could_not_have_sent_is_quarantined_with_its_reason(
    tmp_path, day, needle
):
    path = write(tmp_path / "nvda.csv", [row(d) for d in SESSIONS] + [row(day)])
    output = ok(marketlake(tmp_path, "import", path.name))
    assert f"{len(SESSIONS)} bar(s) landed" in output
    assert "1 bar(s) quarantined" in output and needle in output
    assert day not in raw_dates(tmp_path, "NVDA")
    assert needle in quarantined(tmp_path)[day]
    # Nothing that would block the next build reached raw.
    build = ok(marketlake(tmp_path, "build"))
    assert "0 of 41 new rows quarantined" in build


@pytest.mark.parametrize("text", ["03/15/2024", "15.03.2024", "March 15, 2024"])
def test_a_file_whose_dates_cannot_be_read_is_refused_naming_the_format(tmp_path, text):
    path = write(tmp_path / "nvda.csv", [row(text), row(text.replace("15", "18"))])
    message = one_line_error(marketlake(tmp_path, "import", path.name))
    assert "nvda.csv" in message and "YYYY-MM-DD" in message and text in message
    assert not (tmp_path / "lake" / "raw").exists()


def test_a_file_over_the_bad_row_gate_lands_nothing_and_goes_whole_to_quarantine(tmp_path):
    good = [row(d) for d in SESSIONS[:32]]
    bad = [row(d, high="10.00") for d in SESSIONS[32:40]]  # 8 of 40: 20%
    path = write(tmp_path / "nvda.csv", good + bad)
    message = one_line_error(marketlake(tmp_path, "import", path.name))
    assert "8 of 40" in message and "20%" in message and "MARKETLAKE_MAX_BAD_ROW_PCT" in message
    assert raw_dates(tmp_path, "NVDA") == set()
    payloads = [p for p in (tmp_path / "lake" / "quarantine").rglob("*") if p.is_file()]
    whole = [p for p in payloads if p.read_bytes() == path.read_bytes()]
    assert len(whole) == 1
    assert str(whole[0].relative_to(tmp_path / "lake")) in message
    # The reasons are kept beside it, one per impossible bar.
    assert len(quarantined(tmp_path)) == 8


def test_a_higher_gate_lets_the_same_file_land_its_good_bars(tmp_path):
    good = [row(d) for d in SESSIONS[:32]]
    bad = [row(d, high="10.00") for d in SESSIONS[32:40]]
    path = write(tmp_path / "nvda.csv", good + bad)
    output = ok(marketlake(tmp_path, "import", path.name, env={"MARKETLAKE_MAX_BAD_ROW_PCT": "25"}))
    assert "32 bar(s) landed" in output and "8 bar(s) quarantined" in output
    assert raw_dates(tmp_path, "NVDA") == {d.isoformat() for d in SESSIONS[:32]}


def test_a_file_over_the_gate_lands_nothing_of_the_other_files_either(tmp_path):
    good = write(tmp_path / "amd.csv", [row(d) for d in SESSIONS])
    bad = write(
        tmp_path / "nvda.csv",
        [row(d) for d in SESSIONS[:30]] + [row(d, volume="-1") for d in SESSIONS[30:]],
    )
    message = one_line_error(marketlake(tmp_path, "import", good.name, bad.name))
    assert "nvda.csv" in message
    assert raw_dates(tmp_path, "AMD") == set() and raw_dates(tmp_path, "NVDA") == set()


# Regression: validation read volumes with the regex \d, which also matches Arabic-Indic
# digits, so '١٢٣٤٥' landed as 12345 while the Alpha Vantage parser refused it.
@pytest.mark.parametrize("volume", ["١٢٣٤٥", "１２３４５"])
def test_a_volume_in_non_ascii_digits_is_quarantined_as_not_a_number(tmp_path, volume):
    odd = SESSIONS[-1]
    path = write(tmp_path / "nvda.csv", [row(d) for d in SESSIONS[:-1]] + [row(odd, volume=volume)])
    output = ok(marketlake(tmp_path, "import", path.name))
    assert "1 bar(s) quarantined: volume is not a number" in output
    assert odd.isoformat() not in raw_dates(tmp_path, "NVDA")
    assert quarantined(tmp_path)[odd.isoformat()] == "volume is not a number"
