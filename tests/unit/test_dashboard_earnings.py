"""The market overview's earnings panels on a lake with known bars, reports and a dividend:
the P/E (TTM) time series of the selected symbols, with a gap where the trailing EPS is a
loss (no line drawn through it), and the trailing P/E and payout ratio in the latest-bar
table; every value as daily_prices publishes it."""

from __future__ import annotations

import datetime as dt
import html
import itertools
import re
from pathlib import Path

import pandas as pd
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from earnings_samples import land_earnings
from marketlake.config import Settings
from marketlake.dashboards.grafana import TimeRange, Variable, expand
from marketlake.dashboards.render import load_dashboards, panels_of, render_dashboards
from marketlake.dashboards.runner import Runner
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.lake import actions, raw
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore
from marketlake.wap.pipeline import run_build

D = dt.date
DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
SESSIONS = sessions_between(D(2024, 1, 2), D(2024, 6, 28))
STAMP = "2024-07-01 21:00:00.000"
SELECTED = ["AAA", "BBB"]  # CCC reports too, but is not selected
QUARTERS = {
    "AAA": [  # four quarters known before the first bar: a P/E on every session
        (D(2022, 12, 31), D(2023, 1, 19), 0.9),
        (D(2023, 3, 31), D(2023, 4, 20), 1.0),
        (D(2023, 6, 30), D(2023, 7, 20), 1.1),
        (D(2023, 9, 30), D(2023, 10, 19), 1.2),
        (D(2023, 12, 31), D(2024, 1, 18), 1.3),
        (D(2024, 3, 31), D(2024, 4, 18), 1.5),
    ],
    "BBB": [  # a loss reported on 2024-02-14 until a profit on 2024-04-24: no P/E between
        (D(2022, 12, 31), D(2023, 1, 26), 0.5),
        (D(2023, 3, 31), D(2023, 4, 25), 0.5),
        (D(2023, 6, 30), D(2023, 7, 25), 0.5),
        (D(2023, 9, 30), D(2023, 10, 24), 0.5),
        (D(2023, 12, 31), D(2024, 2, 14), -2.0),
        (D(2024, 3, 31), D(2024, 4, 24), 2.5),
    ],
    "CCC": [
        (D(2023, 6, 30), D(2023, 7, 27), 2.0),
        (D(2023, 9, 30), D(2023, 10, 26), 2.0),
        (D(2023, 12, 31), D(2024, 1, 25), 2.0),
        (D(2024, 3, 31), D(2024, 4, 25), 2.0),
    ],
}
AAA_DIVIDEND = (D(2024, 3, 14), 0.4)


def close_of(symbol: str, day: dt.date) -> float:
    return {"AAA": 30.0, "BBB": 20.0, "CCC": 50.0}[symbol] + (day.toordinal() % 7) * 0.25


def trailing_eps(symbol: str, day: dt.date) -> float:
    """The four latest quarters known on session `day` (no split here: as reported)."""
    known = sorted(q for q in QUARTERS[symbol] if q[1] < day)[-4:]
    assert len(known) == 4
    return sum(eps for _, _, eps in known)


def expected_pe(symbol: str, day: dt.date) -> float | None:
    eps = trailing_eps(symbol, day)
    return close_of(symbol, day) / eps if eps > 0 else None


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("user") / "lake"
    store = LocalStore(home)
    for symbol, quarters in QUARTERS.items():
        closes = [close_of(symbol, day) for day in SESSIONS]
        bars = pd.DataFrame(
            {
                "trade_date": SESSIONS,
                "open": closes,
                "high": [c + 1.0 for c in closes],
                "low": [c - 1.0 for c in closes],
                "close": closes,
                "volume": 1_000_000,
            }
        )
        frame = raw.bars_to_frame(symbol, bars, "import", STAMP)
        store.put_bytes(raw.raw_key(D(2024, 7, 1), symbol), raw.frame_to_csv(frame))
        assert land_earnings(home, symbol, quarters) == len(quarters)
    dividend = pd.DataFrame({"date": [AAA_DIVIDEND[0]], "value": [AAA_DIVIDEND[1]]})
    assert actions.land_actions(
        store, actions.DIVIDENDS, "AAA", dividend, "import", D(2024, 7, 1), STAMP
    )
    with DuckDBEngine(home) as engine:
        assert run_build(Settings.from_env({}, home=home), store, engine).status == "published"
    return home


def market_panel(title: str) -> dict:
    (market,) = [d for d in load_dashboards(DASHBOARDS) if d["uid"] == "marketlake-market"]
    (panel,) = [p for p in panels_of(market) if p.get("title") == title]
    return panel


def panel_body(page: Path, title: str) -> str:
    found = re.findall(
        r'<section class="panel[^"]*"[^>]*data-title="([^"]*)"(.*?)</section>',
        page.read_text(encoding="utf-8"),
        re.S,
    )
    return {html.unescape(t): body for t, body in found}[title]


def test_the_pe_panel_runs_as_athena_sql_and_returns_daily_prices_pe(lake):
    panel = market_panel("P/E (TTM)")
    assert panel["type"] == "timeseries"
    assert panel["fieldConfig"]["defaults"]["custom"]["spanNulls"] is False  # gaps in Grafana
    (target,) = panel["targets"]
    symbols = {"symbol": Variable("symbol", SELECTED, is_list=True)}
    sql = expand(target["rawSQL"], symbols, TimeRange.days(SESSIONS[0], SESSIONS[-1]), target)
    assert len(sqlglot.parse(sql, read="trino", error_level=ErrorLevel.RAISE)) == 1
    with DuckDBEngine(lake, read_only=True) as engine:
        Runner(engine).check(sql, panel["title"])
        shown = engine.fetch_arrow(sql).to_pylist()
        published = engine.fetch_arrow(
            "SELECT trade_date, symbol, pe_ratio_ttm FROM daily_prices "
            "WHERE symbol IN ('AAA', 'BBB') ORDER BY trade_date, symbol"
        ).to_pylist()
    # Every session of the selected symbols, NULL included: a missing row would let
    # Grafana draw straight through the loss.
    assert shown == published
    assert len(shown) == 2 * len(SESSIONS)
    for row in shown:
        wanted = expected_pe(row["symbol"], row["trade_date"])
        if wanted is None:
            assert row["pe_ratio_ttm"] is None, row
        else:
            assert row["pe_ratio_ttm"] == pytest.approx(wanted, rel=1e-12), row
    gap = [r["trade_date"] for r in shown if r["symbol"] == "BBB" and r["pe_ratio_ttm"] is None]
    assert (gap[0], gap[-1]) == (D(2024, 2, 15), D(2024, 4, 24))


def test_the_rendered_pe_panel_leaves_a_gap_through_the_loss(lake, tmp_path):
    page = render_dashboards(
        lake, tmp_path, date_from=SESSIONS[0], date_to=SESSIONS[-1], symbols=SELECTED
    )
    body = panel_body(page, "P/E (TTM)")
    paths = dict(
        (title, d)
        for d, title in re.findall(r'<path class="series" d="([^"]*)"[^>]*><title>([^<]*)<', body)
    )
    assert sorted(paths) == SELECTED  # one line per selected symbol, CCC not among them

    def runs(symbol: str) -> list[int]:
        """The number of sessions of each unbroken stretch with a P/E."""
        known = [expected_pe(symbol, day) is not None for day in SESSIONS]
        return [len(list(stretch)) for has, stretch in itertools.groupby(known) if has]

    for symbol, d in paths.items():
        segments = [s for s in d.split("M") if s.strip()]
        assert [s.count(" L") + 1 for s in segments] == runs(symbol), symbol
    assert len(runs("BBB")) == 2 and runs("AAA") == [len(SESSIONS)]
    # The legend's last value, as Grafana's lastNotNull with the panel's one decimal.
    legend = re.findall(r'<tr class="legend-item"><td>.*?</svg>([^<]*)</td><td[^>]*>([^<]*)<', body)
    assert legend == [(s, f"{expected_pe(s, SESSIONS[-1]):.1f}") for s in SELECTED]


def test_the_latest_bar_table_shows_the_trailing_pe_and_payout_ratio(lake, tmp_path):
    """AAA: its dividend over its trailing EPS on the last session; BBB: no dividend."""
    page = render_dashboards(
        lake, tmp_path, date_from=SESSIONS[0], date_to=SESSIONS[-1], symbols=SELECTED
    )
    body = panel_body(page, "Latest bar per symbol")
    headers = [html.unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", body)]
    rows = {
        cells[0]: dict(zip(headers, cells))
        for cells in (
            [
                html.unescape(re.sub(r"<[^>]+>", "", c))
                for c in re.findall(r"<td[^>]*>(.*?)</td>", r)
            ]
            for r in re.findall(r"<tr>(.*?)</tr>", body)
            if "<td" in r
        )
    }
    assert sorted(rows) == SELECTED
    last = SESSIONS[-1]
    for symbol in SELECTED:
        pe = expected_pe(symbol, last)
        assert pe is not None
        assert rows[symbol]["pe_ratio_ttm"] == f"{pe:.1f}"
    payout = AAA_DIVIDEND[1] / trailing_eps("AAA", last)
    assert rows["AAA"]["payout_ratio_ttm"] == f"{payout * 100:.1f}%"
    assert rows["BBB"]["payout_ratio_ttm"] == "0.0%"
    with DuckDBEngine(lake, read_only=True) as engine:
        published = engine.fetch_arrow(
            "SELECT pe_ratio_ttm, payout_ratio_ttm FROM latest_prices WHERE symbol = 'AAA'"
        ).to_pylist()
    assert published[0]["payout_ratio_ttm"] == pytest.approx(payout, rel=1e-12)
