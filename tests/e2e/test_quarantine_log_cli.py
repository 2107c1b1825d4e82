"""End to end: every bar kept out of the lake reaches the quarantine_log view and the
pipeline-health dashboard's Quarantined rows panel, whichever stage kept it out: an ingest
(a provider's answer), an import (a CSV file) or a build's row check."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from cli_run import marketlake, ok
from marketlake.config import Settings
from marketlake.dashboards.render import render_dashboards
from marketlake.ingest.runner import run_ingest
from marketlake.lake import raw
from marketlake.providers.base import ProviderDefaults
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore

pytestmark = pytest.mark.e2e

AS_OF = dt.datetime(2024, 7, 3, 18, 0, tzinfo=ZoneInfo("America/New_York"))
INDEPENDENCE_DAY = dt.date(2024, 7, 4)  # the build's trade_date_is_session check holds it


class BadAnswers(ProviderDefaults):
    """The synthetic market as a real provider might send it, with AMD's bar of 2024-06-20
    carrying a volume no one can read and that of 2024-06-21 a high below its low."""

    name = "alphavantage"  # market data, as an import is: both may share the lake

    def fetch_daily(self, symbol, since, until):
        bars = SyntheticProvider().fetch_daily(symbol, since, until)
        if symbol == "AMD":
            bars = bars.astype({"volume": object, "high": object})
            bars.loc[bars["trade_date"] == dt.date(2024, 6, 20), "volume"] = "12x"
            bars.loc[bars["trade_date"] == dt.date(2024, 6, 21), "high"] = 0.5
        return bars


def nvda_csv(path: Path) -> Path:
    """NVDA's spring sessions, and one bar whose high is below its low (1 bad bar in 65:
    under the bad-batch gate, so the file lands and the bar goes to quarantine)."""
    rows = [
        [d.isoformat(), "50.00", "52.00", "49.00", "51.00", "1000000"]
        for d in sessions_between(dt.date(2024, 3, 1), dt.date(2024, 5, 31))
    ]
    rows.append(["2024-06-03", "50.00", "10.00", "49.00", "51.00", "1000000"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([["Date", "Open", "High", "Low", "Close", "Volume"], *rows])
    path.write_text(out.getvalue())
    return path


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("quarantines")
    store = LocalStore(cwd / "lake")
    settings = Settings.from_env({}, home=store.root, tickers="AMD")
    run_ingest(settings, store, BadAnswers(), AS_OF, now=lambda: AS_OF)
    ok(marketlake(cwd, "import", nvda_csv(cwd / "nvda.csv").name))
    # A bar of a holiday in raw, as a provider might send it: the build's row check keeps it.
    bars = pd.DataFrame(
        {
            "trade_date": [INDEPENDENCE_DAY],
            "open": [120.0],
            "high": [125.0],
            "low": [119.0],
            "close": [124.0],
            "volume": [1_000_000],
        }
    )
    now = dt.datetime.now(dt.timezone.utc)
    frame = raw.bars_to_frame("AMD", bars, "synthetic", raw.format_timestamp(now))
    store.put_bytes(raw.raw_key(now.date(), "AMD"), raw.frame_to_csv(frame))
    ok(marketlake(cwd, "build", env={"MARKETLAKE_MAX_BAD_ROW_PCT": "50"}))
    return cwd


def quarantine_log(cwd: Path) -> list[dict]:
    sql = "SELECT * FROM quarantine_log ORDER BY stage, symbol, trade_date"
    return list(csv.DictReader(io.StringIO(ok(marketlake(cwd, "query", sql, "--format", "csv")))))


def test_an_imported_impossible_bar_is_in_the_log_as_import(lake):
    (row,) = [r for r in quarantine_log(lake) if r["stage"] == "import"]
    assert (row["symbol"], row["trade_date"], row["source"]) == ("NVDA", "2024-06-03", "import")
    assert row["reason"] == "high is below open, close or low"
    values = (row["open"], row["high"], row["low"], row["volume"])
    assert values == ("50.00", "10.00", "49.00", "1000000")  # as the file had them
    assert row["quarantined_at"] and row["run_id"] == "" and row["check_name"] == ""
    assert (lake / "lake" / row["quarantine_key"]).is_file()  # the bars as kept, with reasons


def test_bars_a_provider_sent_are_in_the_log_as_ingest_as_received(lake):
    rows = {r["trade_date"]: r for r in quarantine_log(lake) if r["stage"] == "ingest"}
    assert set(rows) == {"2024-06-20", "2024-06-21"}
    assert {(r["symbol"], r["source"]) for r in rows.values()} == {("AMD", "alphavantage")}
    assert rows["2024-06-20"]["volume"] == "12x"  # unparseable, kept as received
    assert "volume" in rows["2024-06-20"]["reason"]
    assert rows["2024-06-21"]["reason"] == "high is below open, close or low"
    assert rows["2024-06-21"]["high"] == "0.5"
    # The ingest's clock: when it quarantined them (the run's --as-of moment, in UTC).
    assert {r["quarantined_at"] for r in rows.values()} == {"2024-07-03 22:00:00"}
    (key,) = {r["quarantine_key"] for r in rows.values()}
    assert key.startswith("quarantine/daily_prices/ingest_date=2024-07-03/AMD.")


def test_a_build_quarantine_is_still_in_the_log_as_build(lake):
    builds = [r for r in quarantine_log(lake) if r["stage"] == "build"]
    assert builds and {(r["symbol"], r["trade_date"]) for r in builds} == {
        ("AMD", INDEPENDENCE_DAY.isoformat())
    }
    (row,) = [r for r in builds if r["check_name"] == "trade_date_is_session"]
    assert row["reason"].startswith("trade_date_is_session") and row["run_id"]
    assert row["quarantined_at"] and row["close"] == "124.0"


def panel_rows(page: str, title: str) -> list[list[str]]:
    (body,) = re.findall(
        rf'<section class="panel[^"]*"[^>]*data-title="{re.escape(title)}"(.*?)</section>', page
    )
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
        for r in re.findall(r"<tr>(.*?)</tr>", body)
        if "<td" in r
    ]


def test_the_quarantined_rows_panel_shows_every_stage(lake, tmp_path):
    page = render_dashboards(
        lake / "lake",
        out_dir=tmp_path,
        date_from=dt.date(2024, 1, 1),
        date_to=dt.date.today() + dt.timedelta(days=1),
        symbols=["NVDA", "AMD"],
    ).read_text(encoding="utf-8")
    rows = panel_rows(page, "Quarantined rows")
    # quarantined_at, stage, symbol, trade_date, reason, open, high, low, close, volume, ...
    stages = sorted((r[1], r[2], r[3]) for r in rows)
    assert stages == [
        ("build", "AMD", INDEPENDENCE_DAY.isoformat()),
        ("import", "NVDA", "2024-06-03"),
        ("ingest", "AMD", "2024-06-20"),
        ("ingest", "AMD", "2024-06-21"),
    ]
    imported = next(r for r in rows if r[1] == "import")
    assert imported[5:10] == ["$50.00", "$10.00", "$49.00", "$51.00", "1,000,000"]
    assert next(r for r in rows if r[3] == "2024-06-20")[9] == "12x"
