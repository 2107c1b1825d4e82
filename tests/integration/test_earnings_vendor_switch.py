"""A lake that switches provider takes each symbol's earnings from the new vendor once it
answers for that symbol (lake/earnings.one_vendor), keeping the imports: vendors date one
quarter differently (NVDA's 2024-01-28 is Alpha Vantage's 2024-01-31) and give different EPS
(announced or filed), so neither a quarter "under two dates" quarantine nor a trailing year
summed across two vendors may come of a switch."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd

from earnings_samples import land_earnings
from marketlake.config import Settings
from marketlake.ingest.earnings import ingest_earnings
from marketlake.ingest.report import IngestReport
from marketlake.lake import earnings
from marketlake.lake.state import IngestState
from marketlake.storage import LocalStore
from recorders import Observer

EASTERN = ZoneInfo("America/New_York")
D = dt.date
MONDAY = dt.datetime(2024, 6, 17, 18, 0, tzinfo=EASTERN)
# Alpha Vantage's month ends, and the 52/53-week ends NVDA files: the same four quarters.
AV = [
    ("2023-04-30", "2023-05-24", "1.09"),
    ("2023-07-31", "2023-08-23", "2.70"),
    ("2023-10-31", "2023-11-21", "4.02"),
    ("2024-01-31", "2024-02-21", "5.16"),
]
FILED = [
    ("2023-04-30", "2023-05-26", "0.82"),
    ("2023-07-30", "2023-08-28", "2.48"),
    ("2023-10-29", "2023-11-21", "3.71"),
    ("2024-01-28", "2024-02-21", "4.93"),
]
IMPORTED = (D(2019, 1, 27), D(2019, 2, 14), 0.92)  # an old quarter the user imported


class Vendor:
    """A provider that answers fixed quarters for every symbol."""

    restates_earnings = False

    def __init__(self, name: str, quarters: list[tuple[str, str, str]]) -> None:
        self.name = name
        self.quarters = quarters

    def fetch_earnings(self, symbol: str, until: dt.date) -> pd.DataFrame:
        columns = ["fiscal_date_ending", "reported_date", "reported_eps"]
        return pd.DataFrame(self.quarters, columns=columns, dtype=object)


def ask(store: LocalStore, state: IngestState, vendor: Vendor, when: dt.datetime) -> IngestReport:
    settings = Settings.from_env({}, home=store.root, tickers="NVDA")
    report = IngestReport(vendor.name, when, when.date(), when.date())
    ingest_earnings(
        settings, store, state, vendor, ["NVDA"], report, Observer(), lambda: when, None, None
    )
    return report


def record(store: LocalStore) -> list[tuple[str, str, str, float]]:
    frame = earnings.current(store, "NVDA")
    return [
        (s, f.isoformat(), r.isoformat(), e)
        for s, f, r, e in zip(frame["source"], frame["fiscal"], frame["reported"], frame["eps"])
    ]


def quarters(source: str, rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str, float]]:
    return [(source, f, r, float(e)) for f, r, e in rows]


def test_a_switch_of_vendor_replaces_the_symbols_earnings_and_keeps_its_imports(tmp_path):
    store = LocalStore(tmp_path / "lake")
    land_earnings(store.root, "NVDA", [IMPORTED])
    state = IngestState()
    state.entry("NVDA").watermark = "2024-06-14"
    old = ("import", "2019-01-27", "2019-02-14", 0.92)

    report = ask(store, state, Vendor("alphavantage", AV), MONDAY)
    assert report.earnings_landed == 4 and report.earnings_quarantined == 0
    assert record(store) == [old, *quarters("alphavantage", AV)]

    # A week on the lake asks Polygon: its dates are days from Alpha Vantage's, which is
    # not one quarter under two dates, and none of Alpha Vantage's stays beside them.
    week = MONDAY + dt.timedelta(days=7)
    report = ask(store, state, Vendor("polygon", FILED), week)
    assert report.earnings_landed == 4 and report.earnings_quarantined == 0
    assert record(store) == [old, *quarters("polygon", FILED)]
    built = earnings.build_frame(store, week.date())
    assert list(built["reported_eps"]) == [0.92, 0.82, 2.48, 3.71, 4.93]

    # And back: Alpha Vantage's quarters land again, even those whose copy is on record.
    report = ask(store, state, Vendor("alphavantage", AV), week + dt.timedelta(days=7))
    assert report.earnings_landed == 4 and report.earnings_quarantined == 0
    assert record(store) == [old, *quarters("alphavantage", AV)]


def test_a_quarter_the_new_vendor_gives_as_on_record_still_lands_as_its_own(tmp_path):
    # Both vendors give 2023-04-30 the same report: the new vendor's copy lands, so the
    # quarter is not lost when the old vendor's rows are superseded.
    store = LocalStore(tmp_path / "lake")
    state = IngestState()
    state.entry("NVDA").watermark = "2024-06-14"
    ask(store, state, Vendor("alphavantage", AV), MONDAY)
    same = [AV[0], *FILED[1:]]
    report = ask(store, state, Vendor("polygon", same), MONDAY + dt.timedelta(days=7))
    assert report.earnings_landed == 4
    assert record(store) == quarters("polygon", same)


def test_one_vendor_keeps_the_newest_vendors_rows_per_symbol():
    raw = pd.DataFrame(
        {
            "symbol": ["AAA", "AAA", "BBB", "AAA", "BBB"],
            "source": ["alphavantage", "import", "alphavantage", "polygon", "import"],
            "ingested_at": ["1", "2", "3", "4", "5"],
        }
    )
    kept = earnings.one_vendor(raw)
    # AAA: Polygon landed last, so Alpha Vantage's row goes; BBB has only Alpha Vantage.
    assert list(kept["ingested_at"]) == ["2", "3", "4", "5"]
