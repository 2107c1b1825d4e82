"""The market overview's first panels (relative performance, the split-adjusted close), how
legends are laid out so no entry is cut off, and the page at a phone's width."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from marketlake.dashboards import draw
from marketlake.dashboards.grafana import TimeRange, Variable, expand
from marketlake.dashboards.render import _chart_size, load_dashboards, panels_of, stylesheet

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "grafana" / "dashboards"


def market_panel(title: str) -> dict:
    (market,) = [d for d in load_dashboards(DASHBOARDS) if d["uid"] == "marketlake-market"]
    (panel,) = [p for p in panels_of(market) if p.get("title") == title]
    return panel


def test_relative_performance_rebases_each_symbol_to_100_at_the_start_of_the_range():
    """Hand-made closes: the range starts after the first rows (history before it must not
    be the base), and AAA's first session in range has no adjusted close (the next one is
    its base). Checked against pandas."""
    days = pd.bdate_range("2024-03-01", periods=8).date
    rows = []
    for i, day in enumerate(days):
        rows.append(("AAA", day, None if i == 2 else 50.0 + 3 * i))
        rows.append(("BBB", day, 400.0 - 7 * i))
        rows.append(("CCC", day, 10.0))  # not selected
    frame = pd.DataFrame(rows, columns=["symbol", "trade_date", "adj_close"])
    con = duckdb.connect()
    con.execute("CREATE TABLE price_history AS SELECT * FROM frame")
    target = market_panel("Relative performance")["targets"][0]
    symbols = Variable("symbol", ["AAA", "BBB"], is_list=True)
    sql = expand(target["rawSQL"], {"symbol": symbols}, TimeRange.days(days[2], days[-1]))
    sqlglot.parse(sql, read="athena", error_level=ErrorLevel.RAISE)  # Athena SQL, as sent
    got = con.execute(sqlglot.transpile(sql, read="athena", write="duckdb")[0]).df()

    shown = frame[
        frame["symbol"].isin(["AAA", "BBB"])
        & (frame["trade_date"] >= days[2])
        & frame["adj_close"].notna()
    ].sort_values(["trade_date", "symbol"])
    base = shown.groupby("symbol")["adj_close"].transform("first")
    expected = (100 * shown["adj_close"] / base).tolist()
    assert got["relative_close"].tolist() == pytest.approx(expected, rel=1e-12)
    firsts = got.groupby("symbol")["relative_close"].first().to_dict()
    assert firsts == {"AAA": pytest.approx(100.0), "BBB": pytest.approx(100.0)}
    # BBB's last over its first in range, in percent of it: 351/386.
    assert got[got["symbol"] == "BBB"]["relative_close"].iloc[-1] == pytest.approx(100 * 351 / 386)


def test_the_price_panel_asks_for_the_adjusted_close_only():
    sql = market_panel("Split-adjusted close with SMA 20 and SMA 50")["targets"][0]["rawSQL"]
    columns = [c.alias_or_name for c in sqlglot.parse_one(sql, read="athena").selects]
    assert columns == ["trade_date", "symbol", "adj_close", "sma_20", "sma_50"]


def test_per_symbol_panels_show_every_legend_entry_in_grafana():
    """A per-symbol time series keeps each entry a row of a table legend (Grafana scrolls it
    inside the panel) or a bottom list; never a list with hidden entries."""
    (market,) = [d for d in load_dashboards(DASHBOARDS) if d["uid"] == "marketlake-market"]
    for panel in panels_of(market):
        if panel["type"] != "timeseries":
            continue
        legend = panel["options"]["legend"]
        assert legend["showLegend"] is True, panel["title"]
        if panel["gridPos"]["w"] >= 12 and "symbol IN" in panel["targets"][0]["rawSQL"]:
            sql = panel["targets"][0]["rawSQL"]
            if "GROUP BY" not in sql:
                assert (legend["displayMode"], legend["placement"]) == ("table", "right")


def series(n: int) -> list[tuple]:
    return [("#7EB26D", None, f"SYM{i} SMA 20", 100.0 + i, "currencyUSD", 2) for i in range(n)]


def test_a_table_legend_lists_every_entry_and_a_list_legend_is_not_capped():
    table = draw.timeseries.legend_html(
        {"show": True, "table": True, "right": True, "width": 260}, series(30)
    )
    assert table.count('<tr class="legend-item">') == 30
    assert 'class="legend legend-right" style="flex-basis:260px"' in table
    listed = draw.timeseries.legend_html(
        {"show": True, "table": False, "right": False, "width": 0}, series(30)
    )
    assert listed.count('class="legend-item"') == 30
    # A bottom list's chart leaves room for all its rows (up to half the panel).
    names = [f"SYM{i} close" for i in range(30)]
    bottom = {"options": {"legend": {"displayMode": "list", "placement": "bottom"}}}
    _w, few_h, _c = _chart_size(bottom, names[:3], 1000, 400)
    _w, many_h, _c = _chart_size(bottom, names, 1000, 400)
    assert many_h < few_h and many_h >= (400 - 58) // 2
    right = {"options": {"legend": {"displayMode": "table", "placement": "right", "width": 260}}}
    w, h, body_class = _chart_size(right, names, 1000, 400)
    assert (w, h, body_class) == (1000 - 16 - 260 - 8, 400 - 58, "body legend-at-right")


def test_the_page_stacks_panels_at_a_phones_width():
    css = stylesheet()
    match = re.search(r"@media \(max-width:(\d+)px\)\{(.*)\}\s*$", css, re.S)
    assert match and int(match.group(1)) >= 400
    narrow = match.group(2)
    assert ".grid{display:flex;flex-direction:column" in narrow
    assert "grid-column:auto!important" in narrow and "width:100%" in narrow
    assert ".body.legend-at-right{flex-direction:column}" in narrow
    assert "white-space:normal" in narrow
