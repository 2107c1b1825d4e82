"""The Grafana dashboards: what every target needs for the Athena plugin, the plugin's macro
and variable semantics, and every panel's SQL run on a lake built by the local pipeline."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

import cli_run
from cli_run import ok
from marketlake.config import DEFAULT_TICKERS
from marketlake.dashboards import draw
from marketlake.dashboards.grafana import (
    MacroError,
    TimeRange,
    Variable,
    expand,
    expand_macros,
    expand_variables,
    format_value,
)
from marketlake.dashboards.render import (
    Runner,
    check_target,
    load_dashboards,
    panels_of,
    relations,
    render_dashboards,
    targets_of,
)
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.errors import MarketlakeError
from marketlake.lake import raw
from marketlake.providers.synthetic import SPLITS, SyntheticProvider
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "grafana" / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"
VIEWS = {p.stem for p in (ROOT / "sql" / "views").glob("*.sql")}
AS_OF = "2024-06-28"
# NVDA bars landed after the first run: three sessions and Independence Day, which the
# trade_date_is_session row check quarantines.
EXTRA_DAYS = [dt.date(2024, 7, 1), dt.date(2024, 7, 2), dt.date(2024, 7, 3), dt.date(2024, 7, 4)]
NEWEST = dt.date(2024, 7, 3)
NEWEST_CLOSE = 126.0  # NVDA's close that day, below
NVDA_SPLIT = dt.date(2024, 6, 10)  # the synthetic market's 10:1 split of NVDA
# What `marketlake run --tickers NVDA,AMD` passes the renderer: its symbols' default.
WATCHLIST = ("NVDA", "AMD")
# The breadth row reads the whole lake: its panels ignore the symbol selection.
BREADTH_VIEWS = {"market_breadth", "breadth_above_sma50", "top_movers"}
ROWS = {"Market overview": ["Market breadth"], "Pipeline health": []}

OHLCV = ["open", "high", "low", "close", "volume"]
# The issue's panels, each with the view it reads and the columns it draws.
PANELS = {
    "Market overview": {
        "Relative performance": ("price_history", ["trade_date", "symbol", "relative_close"]),
        "Split-adjusted close with SMA 20 and SMA 50": (
            "price_history",
            ["trade_date", "symbol", "adj_close", "sma_20", "sma_50"],
        ),
        "Average price, last 90 days": ("avg_price_90d", ["trade_date", "symbol", "avg_price"]),
        "Daily return": ("price_history", ["trade_date", "symbol", "daily_return"]),
        "Volatility compared: Parkinson vs Garman-Klass vs Yang-Zhang vs close-to-close": (
            "volatility_comparison",
            [
                "trade_date",
                "parkinson_20d",
                "garman_klass_20d",
                "yang_zhang_20d",
                "close_to_close_30d",
            ],
        ),
        "RSI 14": ("price_history", ["trade_date", "symbol", "rsi_14"]),
        "Volume with volume surge ratio": (
            "price_history",
            ["trade_date", "symbol", "volume", "volume_surge_ratio"],
        ),
        "P/E (TTM)": ("price_history", ["trade_date", "symbol", "pe_ratio_ttm"]),
        "Latest bar per symbol": (
            "latest_prices",
            [
                *("symbol", "trade_date", *OHLCV, "price_change_pct", "daily_return"),
                *("candle_type", "is_market_up", "rsi_14", "sma_20", "sma_50"),
                *("volume_surge_ratio", "pe_ratio_ttm", "payout_ratio_ttm", "dividend_yield_ttm"),
            ],
        ),
        "Splits and dividends": (
            "corporate_actions",
            ["symbol", "ex_date", "kind", "split_factor", "dividend", "previous_close", "close"],
        ),
        "Advancing and declining symbols": (
            "market_breadth",
            ["trade_date", "advancing", "declining", "unchanged"],
        ),
        "Symbols above their 50-day average": (
            "breadth_above_sma50",
            ["trade_date", "share_above"],
        ),
        "Top movers, last session": (
            "top_movers",
            ["side", "rank", "symbol", "price_change_pct", "close", "volume", "trade_date"],
        ),
    },
    "Pipeline health": {
        "Build runs per day, by status": ("pipeline_health", ["run_day", "status", "runs"]),
        "Data-quality results per check": (
            "dq_history",
            [
                "check_name",
                "severity",
                "last_status",
                "last_failing_rows",
                "runs_checked",
                "runs_failed",
                "last_checked_at",
            ],
        ),
        "Quarantined rows": (
            "quarantine_log",
            [
                "quarantined_at",
                "stage",
                "symbol",
                "trade_date",
                "reason",
                *OHLCV,
                "source",
                "run_id",
            ],
        ),
        "Freshness per symbol": (
            "symbol_freshness",
            ["symbol", "last_trade_date", "last_session", "sessions_behind"],
        ),
        "API quota used": (
            "ingest_health",
            ["started_at", "quota_used", "requests_used", "daily_limit"],
        ),
    },
}
ALL_PANELS = [
    (dashboard["title"], panel)
    for dashboard in load_dashboards(DASHBOARDS)
    for panel in panels_of(dashboard)
    if panel["type"] != "row"
]


def panel_id(item) -> str:
    return f"{item[0]}/{item[1]['title']}"


# -- a lake built by the local pipeline ---------------------------------------------------


def marketlake(cwd: Path, *args: str, env: dict | None = None) -> str:
    return ok(cli_run.marketlake(cwd, *args, env=env))


def build_lake(cwd: Path) -> Path:
    """`marketlake run` for NVDA and AMD, then a second build over four more NVDA bars, one
    on a holiday: published and quarantined rows, two build runs, one ingest run."""
    marketlake(cwd, "run", "--as-of", AS_OF, "--tickers", "NVDA,AMD")
    now = dt.datetime.now(dt.timezone.utc)
    bars = pd.DataFrame(
        {
            "trade_date": EXTRA_DAYS,
            "open": [120.0, 124.0, 123.0, 126.0],
            "high": [125.0, 126.0, 127.0, 128.0],
            "low": [119.0, 122.0, 121.0, 125.0],
            "close": [124.0, 123.0, 126.0, 127.0],
            "volume": [1_000_000, 1_100_000, 900_000, 500_000],
        }
    )
    frame = raw.bars_to_frame("NVDA", bars, "synthetic", raw.format_timestamp(now))
    LocalStore(cwd / "lake").put_bytes(raw.raw_key(now.date(), "NVDA"), raw.frame_to_csv(frame))
    marketlake(cwd, "build", env={"MARKETLAKE_MAX_BAD_ROW_PCT": "50"})
    return cwd / "lake"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    return build_lake(tmp_path_factory.mktemp("user"))


@pytest.fixture(scope="module")
def engine(lake):
    with DuckDBEngine(lake, read_only=True) as opened:
        yield opened


def variables_for(symbols: list[str]) -> dict[str, Variable]:
    return {
        "datasource": Variable("datasource", ["marketlake-athena"]),
        "symbol": Variable("symbol", symbols, is_list=True),
    }


# -- the dashboard JSON -------------------------------------------------------------------


def test_both_dashboards_hold_exactly_the_issue_panels():
    found = {d["title"]: [p["title"] for p in panels_of(d)] for d in load_dashboards(DASHBOARDS)}
    assert {title: sorted(panels) for title, panels in found.items()} == {
        title: sorted([*panels, *ROWS[title]]) for title, panels in PANELS.items()
    }


def test_the_breadth_row_heads_its_three_panels():
    """A Grafana row, open (its panels follow it at the top level), below every other
    panel; its three panels are the ones reading the breadth views, and none overlap."""
    dashboard = next(d for d in load_dashboards(DASHBOARDS) if d["uid"] == "marketlake-market")
    ordered = panels_of(dashboard)
    (row,) = [p for p in ordered if p["type"] == "row"]
    assert row["title"] == "Market breadth" and row["collapsed"] is False
    assert row["gridPos"]["w"] == 24 and row["gridPos"]["h"] == 1
    below = ordered[ordered.index(row) + 1 :]
    assert {relations(targets_of(p)[0]["rawSQL"])[0] for p in below} == BREADTH_VIEWS
    assert [p["type"] for p in below] == ["timeseries", "timeseries", "table"]
    assert all(p["gridPos"]["y"] > row["gridPos"]["y"] for p in below)
    cells = [
        (x, y)
        for p in ordered
        for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
        for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])
    ]
    assert len(cells) == len(set(cells)), "panels overlap"
    assert len({p["id"] for p in ordered}) == len(ordered)
    units = {p["title"]: p["fieldConfig"]["defaults"].get("unit") for p in below}
    assert units["Symbols above their 50-day average"] == "percentunit"  # the view's 0..1
    for panel in below:
        view = relations(targets_of(panel)[0]["rawSQL"])[0]
        assert f"View: {view}." in panel["description"] and "Unit" in panel["description"]


@pytest.mark.parametrize("dashboard", load_dashboards(DASHBOARDS), ids=lambda d: d["uid"])
def test_dashboard_settings(dashboard):
    assert dashboard["schemaVersion"] >= 36 and dashboard["id"] is None
    assert dashboard["uid"].startswith("marketlake-") and dashboard["description"]
    hours = {"h": 1, "d": 24}
    refresh = re.fullmatch(r"(\d+)([hd])", dashboard["refresh"])
    assert refresh and int(refresh.group(1)) * hours[refresh.group(2)] >= 1
    for interval in dashboard["timepicker"]["refresh_intervals"]:
        match = re.fullmatch(r"(\d+)([hd])", interval)
        assert match, f"refresh choice {interval} is faster than hourly"
    assert dashboard["time"] == {"from": "now-90d", "to": "now"}
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    source = variables["datasource"]
    assert source["type"] == "datasource" and source["query"] == "grafana-athena-datasource"
    symbol = variables["symbol"]
    assert symbol["type"] == "query" and symbol["multi"] and symbol["includeAll"]
    # The default is the watchlist (on AWS Terraform writes var.tickers here), never All.
    assert symbol["current"]["value"] == list(DEFAULT_TICKERS)
    assert symbol["current"]["text"] == list(DEFAULT_TICKERS)
    assert symbol["datasource"] == {"type": "grafana-athena-datasource", "uid": "${datasource}"}
    query = symbol["query"]
    assert query["rawSQL"] and query["format"] == 1 and query["refId"]
    assert set(query["connectionArgs"]) >= {"region", "catalog", "database"}


@pytest.mark.parametrize("item", ALL_PANELS, ids=panel_id)
def test_every_target_has_what_the_athena_plugin_needs(item):
    title, panel = item
    assert panel["title"] and panel["description"], "every panel has a title and description"
    assert panel["datasource"] == {"type": "grafana-athena-datasource", "uid": "${datasource}"}
    targets = targets_of(panel)
    assert len(targets) == 1
    for target in targets:
        for field in ("rawSQL", "format", "connectionArgs", "refId"):
            assert field in target, f"{title}/{panel['title']}: no {field}"
        assert target["format"] == {"timeseries": 0, "table": 1}[panel["type"]]
        args = target["connectionArgs"]
        assert all(args.get(k) for k in ("region", "catalog", "database"))
        check_target(panel, target, title)  # what the renderer enforces, too
    if panel["type"] == "timeseries":
        assert panel["fieldConfig"]["defaults"].get("unit"), "time series panels set a unit"


@pytest.mark.parametrize("item", ALL_PANELS, ids=panel_id)
def test_every_panel_reads_its_small_view_and_filters_as_the_rules_say(item):
    title, panel = item
    view, columns = PANELS[title][panel["title"]]
    sql = targets_of(panel)[0]["rawSQL"]
    assert relations(expand(sql, variables_for(["NVDA"]), TimeRange.days(NEWEST, NEWEST))) == [view]
    assert view in VIEWS, "panels read the views of sql/views, not raw tables"
    if view in BREADTH_VIEWS:
        assert "${symbol" not in sql and "$symbol" not in sql  # the whole lake
    elif "symbol" in columns or view in ("volatility_comparison",):
        assert "symbol IN (${symbol:sqlstring})" in sql
    if panel["type"] == "timeseries":
        assert "$__dateFilter(" in sql or "$__timeFilter(" in sql


def test_rsi_panel_has_30_and_70_thresholds():
    panel = next(p for t, p in ALL_PANELS if p["title"] == "RSI 14")
    defaults = panel["fieldConfig"]["defaults"]
    steps = [s["value"] for s in defaults["thresholds"]["steps"]]
    assert steps == [None, 30, 70]
    assert defaults["custom"]["thresholdsStyle"]["mode"] != "off"
    assert (defaults["min"], defaults["max"]) == (0, 100)


def test_provisioning_files():
    yaml = pytest.importorskip("yaml")
    sources = yaml.safe_load((PROVISIONING / "datasources" / "athena.yaml").read_text())
    assert sources["apiVersion"] == 1
    (source,) = sources["datasources"]
    assert source["type"] == "grafana-athena-datasource"
    assert set(source["jsonData"]) >= {
        "authType",
        "defaultRegion",
        "catalog",
        "database",
        "workgroup",
        "outputLocation",
    }
    for dashboard in load_dashboards(DASHBOARDS):
        variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
        assert variable["current"]["value"] == source["uid"]
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "marketlake.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


# -- macros and variables, as the plugin expands them -------------------------------------

RANGE = TimeRange.days(dt.date(2024, 3, 30), dt.date(2024, 6, 28))


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "$__timeFilter(started_at)",
            "started_at BETWEEN TIMESTAMP '2024-03-30 00:00:00' "
            "AND TIMESTAMP '2024-06-28 23:59:59'",
        ),
        (
            "$__timeFilter(ts, 'yyyy-MM-dd HH:mm:ss')",
            "TIMESTAMP ts BETWEEN TIMESTAMP '2024-03-30 00:00:00' AND "
            "TIMESTAMP '2024-06-28 23:59:59'",
        ),
        ("$__dateFilter(trade_date)", "trade_date BETWEEN date '2024-03-30' AND date '2024-06-28'"),
        ("$__timeFrom()", "TIMESTAMP '2024-03-30 00:00:00'"),
        ("$__timeTo()", "TIMESTAMP '2024-06-28 23:59:59'"),
        ("$__unixEpochFilter(epoch)", "epoch BETWEEN 1711756800 AND 1719619199"),
        ("$__timeGroup(ts, '1d')", "FROM_UNIXTIME(FLOOR(TO_UNIXTIME(ts)/86400)*86400)"),
        ("$__timeGroup(ts, '1m')", "FROM_UNIXTIME(FLOOR(TO_UNIXTIME(ts)/60)*60)"),
        ("$__unixEpochGroup(epoch, '5m')", "FROM_UNIXTIME(FLOOR(epoch/300)*300)"),
        ("$__parseTime(ts)", "TIMESTAMP ts"),
        ("$__parseTime(ts, 'yyyy-MM-dd')", "parse_datetime(ts,'yyyy-MM-dd')"),
        ("${__from}", "1711756800000"),
    ],
)
def test_time_macros_against_known_dates(sql, expected):
    assert expand(sql, {}, RANGE) == expected


def test_the_plugins_own_test_vectors():
    # grafana/athena-datasource pkg/athena/macros_test.go
    hour = TimeRange(dt.datetime(2021, 6, 23, 0, 0, 0), dt.datetime(2021, 6, 23, 1, 0, 0))
    assert expand_macros("$__timeFilter(starttime)", hour) == (
        "starttime BETWEEN TIMESTAMP '2021-06-23 00:00:00' AND TIMESTAMP '2021-06-23 01:00:00'"
    )
    assert expand_macros("$__unixEpochFilter(time)", hour) == (
        "time BETWEEN 1624406400 AND 1624410000"
    )
    assert expand_macros("$__timeFrom()", hour) == "TIMESTAMP '2021-06-23 00:00:00'"
    assert expand_macros(
        "$__timeGroup(starttime, '1m', 'yyyy-MM-dd''T''HH:mm:ss''Z')", hour
    ).startswith("FROM_UNIXTIME(FLOOR(TO_UNIXTIME(parse_datetime(starttime,'yyyy-MM-dd''T''")


def test_the_date_filter_selects_exactly_the_sessions_of_the_range(engine):
    first, last = dt.date(2024, 4, 2), dt.date(2024, 6, 27)  # sessions next to sessions
    sql = expand(
        "SELECT count(*) AS n FROM price_history WHERE $__dateFilter(trade_date) "
        "AND symbol IN (${symbol:sqlstring})",
        variables_for(["AMD"]),
        TimeRange.days(first, last),
    )
    (count,) = engine.fetch_arrow(sql).column("n").to_pylist()
    assert count == len(sessions_between(first, last))


@pytest.mark.parametrize(
    ("values", "fmt", "expected"),
    [
        (["NVDA", "AMD"], "sqlstring", "'NVDA','AMD'"),
        (["O'REILLY"], "sqlstring", "'O''REILLY'"),
        ("O'REILLY", "sqlstring", "'O''REILLY'"),
        (['A"B'], "sqlstring", "'A\\\"B'"),  # Grafana's SQL_ESCAPE_MAP: " -> \"
        (["NVDA", "O'REILLY"], None, "'NVDA','O''REILLY'"),  # the plugin's own, for lists
        ("NVDA", None, "NVDA"),  # ... and a single value goes in as is
        (["NVDA", "O'REILLY"], "singlequote", "'NVDA','O\\'REILLY'"),
        (["NVDA", "AMD"], "csv", "NVDA,AMD"),
        (["NVDA", "AMD"], "pipe", "NVDA|AMD"),
        (["NVDA", "AMD"], "json", '["NVDA", "AMD"]'),
    ],
)
def test_variable_formats(values, fmt, expected):
    assert format_value(values, fmt) == expected


def test_all_expands_to_every_option_and_custom_all_value_wins():
    every = Variable("symbol", ["AMD", "NVDA"], is_list=True, all_selected=True)
    assert expand_variables("IN (${symbol:sqlstring})", {"symbol": every}, RANGE) == (
        "IN ('AMD','NVDA')"
    )
    custom = Variable("symbol", ["AMD"], is_list=True, all_selected=True, custom_all="symbol")
    assert expand_variables("IN ($symbol)", {"symbol": custom}, RANGE) == "IN (symbol)"
    assert expand_variables("[[symbol:csv]]", {"symbol": every}, RANGE) == "AMD,NVDA"


def test_a_quote_in_a_symbol_cannot_change_the_query(engine):
    sql = expand(
        "SELECT symbol FROM latest_prices WHERE symbol IN (${symbol:sqlstring}) ORDER BY symbol",
        variables_for(["NVDA", "X') OR ('1' = '1"]),
        RANGE,
    )
    sqlglot.parse(sql, read="trino", error_level=ErrorLevel.RAISE)
    assert engine.fetch_arrow(sql).column("symbol").to_pylist() == ["NVDA"]


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("WHERE $__timeFilterz(trade_date)", "$__timeFilterz"),
        ("WHERE $__bogus(x)", "$__bogus"),
        ("WHERE $__interval", "$__interval"),
        ("WHERE symbol IN (${symbols:sqlstring})", "${symbols:sqlstring}"),
        ("WHERE symbol = $sym", "$sym"),
        ("WHERE symbol = [[sym]]", "[[sym]]"),
        ("WHERE symbol IN (${symbol:sqlstrng})", "sqlstrng"),
        ("WHERE $__dateFilter()", "$__dateFilter"),
        ("WHERE $__dateFilter(a, b)", "$__dateFilter"),
        ("WHERE $__timeGroup(ts, 'often')", "often"),
    ],
)
def test_unknown_or_misused_macros_and_variables_fail_loudly(sql, named):
    with pytest.raises(MacroError) as caught:
        expand(sql, variables_for(["NVDA"]), RANGE)
    assert named in str(caught.value)


# -- every panel on the lake --------------------------------------------------------------


@pytest.mark.parametrize("item", ALL_PANELS, ids=panel_id)
def test_every_panel_parses_as_trino_and_runs_on_the_lake(item, engine):
    title, panel = item
    columns = PANELS[title][panel["title"]][1]
    target = targets_of(panel)[0]
    # Runs happen now; bars are from 2024: a range over both.
    time_range = TimeRange.days(dt.date(2024, 1, 1), dt.date.today() + dt.timedelta(days=1))
    sql = expand(target["rawSQL"], variables_for(["NVDA", "AMD"]), time_range, target)
    assert "$" not in sql
    statements = sqlglot.parse(sql, read="trino", error_level=ErrorLevel.RAISE)
    assert len([s for s in statements if s]) == 1
    Runner(engine).check(sql, panel["title"])
    table = engine.fetch_arrow(sql)
    assert table.column_names == columns
    assert table.num_rows > 0
    if panel["type"] == "timeseries":
        series, _ = draw.time_series(panel, table, panel["title"])
        assert any(y is not None for s in series for y in s.ys)


def test_format_0_splits_long_frames_by_symbol_and_wide_frames_by_column():
    day = [dt.date(2024, 7, 1), dt.date(2024, 7, 1), dt.date(2024, 7, 2)]
    long = pa.table({"d": day, "symbol": ["AMD", "NVDA", "NVDA"], "close": [1.0, 2.0, 3.0]})
    series, is_date = draw.time_series({}, long, "p")
    assert is_date and [(s.field, s.labels["symbol"]) for s in series] == [
        ("close", "AMD"),
        ("close", "NVDA"),
    ]
    assert series[0].ys == [1.0, None]  # no AMD row on the 2nd: NULL, as FillModeNull
    wide = pa.table({"d": day[1:], "a": [1, 2], "b": [0.5, None]})
    assert [s.field for s in draw.time_series({}, wide, "p")[0]] == ["a", "b"]
    backwards = pa.table({"d": day[::-1], "symbol": ["A", "B", "C"], "v": [1, 2, 3]})
    with pytest.raises(MarketlakeError, match="ORDER BY d"):
        draw.time_series({}, backwards, "p")
    with pytest.raises(MarketlakeError, match="DATE or TIMESTAMP"):
        draw.time_series({}, pa.table({"symbol": ["A"], "v": [1]}), "p")


# -- the rendered page --------------------------------------------------------------------


def panels_in(page: str) -> dict[str, str]:
    found = re.findall(r'<section class="panel[^"]*"[^>]*data-title="([^"]*)"(.*?)</section>', page)
    return {html.unescape(title): body for title, body in found}


def test_render_draws_every_panel_into_a_self_contained_page(lake, tmp_path):
    page_path = render_dashboards(lake, out_dir=tmp_path / "out", watchlist=WATCHLIST)
    assert page_path == tmp_path / "out" / "index.html"
    page = page_path.read_text(encoding="utf-8")
    panels = panels_in(page)
    for _dashboard, panel in ALL_PANELS:
        body = panels[panel["title"]]
        if panel["type"] == "timeseries":
            assert "<svg" in body and body.count('class="series"') >= 1, panel["title"]
        else:
            assert body.count("<tr>") >= 2, panel["title"]  # header and a row at least
        assert "No data" not in body
    # Field config as Grafana applies it: overrides, line styles, thresholds.
    runs = panels["Build runs per day, by status"]
    assert f'stroke="{draw.NAMED_COLORS["green"]}"' in runs  # the published series
    assert panels["Split-adjusted close with SMA 20 and SMA 50"].count("stroke-dasharray") >= 4
    assert panels["RSI 14"].count('class="threshold"') == 2  # 30 and 70
    assert ">up<" in panels["Latest bar per symbol"] or ">down<" in panels["Latest bar per symbol"]
    # Nothing to fetch: no script, stylesheet link, image, frame, font or URL.
    lowered = page.lower()
    for banned in ("http://", "https://", "<script", "<link", "<img", "<iframe", "url(", "@import"):
        assert banned not in lowered, banned
    for reference in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page):
        assert reference.startswith("#"), reference
    # The defaults: the watchlist's symbols, 90 days up to the newest bar.
    assert f"{NEWEST - dt.timedelta(days=90)} to {NEWEST}" in page
    assert "<b>Symbol</b>AMD, NVDA<" in page and "All:" not in page
    assert "<b>Symbol chosen by</b>the watchlist (MARKETLAKE_TICKERS): 2 of its 2" in page
    assert '<h2 class="row-title"' in page and ">Market breadth</h2>" in page


def test_render_with_a_range_and_a_symbol(lake, tmp_path):
    page = render_dashboards(
        lake,
        out_dir=tmp_path,
        date_from=dt.date(2024, 5, 1),
        date_to=dt.date(2024, 5, 31),
        symbols=["nvda"],
    ).read_text(encoding="utf-8")
    assert "2024-05-01 to 2024-05-31" in page
    assert "All:" not in page and "<b>Symbol</b>NVDA<" in page
    latest = panels_in(page)["Latest bar per symbol"]
    assert ">NVDA<" in latest and ">AMD<" not in latest
    assert "symbol IN (&#x27;NVDA&#x27;)" in page  # the SQL that ran, shown on the page


def table_rows(body: str) -> list[list[str]]:
    """The text of each body row's cells in a rendered table panel."""
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell))
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body)
        if "<td" in row
    ]


def usd(value: float) -> str:
    return f"${value:,.2f}"


def test_the_splits_and_dividends_panel_lists_the_actions_of_the_range(lake, tmp_path):
    """The synthetic market's own splits and dividends (what the ingest landed) going ex in
    the default range, each with the traded closes around it, newest first."""
    assert SPLITS["NVDA"] == ((NVDA_SPLIT, 10.0),)
    page = render_dashboards(lake, out_dir=tmp_path, watchlist=WATCHLIST).read_text(
        encoding="utf-8"
    )
    first, as_of = NEWEST - dt.timedelta(days=90), dt.date.fromisoformat(AS_OF)
    market = SyntheticProvider()
    expected = []
    for symbol in ("AMD", "NVDA"):
        bars = market.fetch_daily(symbol, None, as_of)
        days, closes = list(bars["trade_date"]), list(bars["close"])
        for kind in ("split", "dividend"):
            events = market.fetch_actions(kind + "s", symbol, as_of)
            for day, value in zip(events["date"], events["value"]):
                if day >= first:
                    at = days.index(day)
                    amount = usd(value) if kind == "dividend" else ""
                    factor = f"{value:.2f}" if kind == "split" else ""
                    row = [symbol, day.isoformat(), kind, factor, amount]
                    expected.append([*row, usd(closes[at - 1]), usd(closes[at])])
    expected.sort(key=lambda row: (-dt.date.fromisoformat(row[1]).toordinal(), row[0], row[2]))
    assert {row[2] for row in expected} == {"split", "dividend"}
    assert ["NVDA", "2024-06-10", "split", "10.00", ""] in [row[:5] for row in expected]
    body = panels_in(page)["Splits and dividends"]
    assert table_rows(body) == expected
    assert f'style="color:{draw.NAMED_COLORS["orange"]}">split<' in body


def test_the_close_panel_draws_only_the_split_adjusted_close(lake, tmp_path, engine):
    rows = engine.fetch_arrow(
        "SELECT trade_date, close, adj_close FROM price_history WHERE symbol = 'NVDA' "
        "AND trade_date BETWEEN DATE '2024-06-03' AND DATE '2024-06-14' ORDER BY trade_date"
    ).to_pylist()
    assert len(rows) == 10
    for row in rows:
        factor = 10.0 if row["trade_date"] < NVDA_SPLIT else 1.0
        assert row["adj_close"] == pytest.approx(row["close"] / factor, rel=1e-12)
    page = render_dashboards(lake, out_dir=tmp_path, watchlist=WATCHLIST).read_text(
        encoding="utf-8"
    )
    body = panels_in(page)["Split-adjusted close with SMA 20 and SMA 50"]
    assert body.count('class="series"') == 6  # adjusted close and two SMAs, per symbol
    titles = re.findall(r"<title>([^<]*)</title>", body)
    assert sorted(titles) == [
        "AMD",
        "AMD SMA 20",
        "AMD SMA 50",
        "NVDA",
        "NVDA SMA 20",
        "NVDA SMA 50",
    ]


def test_the_latest_bar_shows_the_trailing_dividend_yield(lake, tmp_path):
    """NVDA: its dividends of the 365 days up to its newest bar, all before its 10:1 split,
    at the new share scale, over that bar's close; AMD pays none."""
    market = SyntheticProvider()
    dividends = market.fetch_actions("dividends", "NVDA", dt.date.fromisoformat(AS_OF))
    window = [
        a for d, a in zip(dividends["date"], dividends["value"]) if d > NEWEST.replace(year=2023)
    ]
    assert len(window) == 4
    nvda_yield = sum(window) / 10.0 / NEWEST_CLOSE
    page = render_dashboards(lake, out_dir=tmp_path, watchlist=WATCHLIST).read_text(
        encoding="utf-8"
    )
    body = panels_in(page)["Latest bar per symbol"]
    assert ">dividend_yield_ttm</th>" in body
    rows = {row[0]: row for row in table_rows(body)}
    assert rows["NVDA"][-1] == f"{nvda_yield * 100:.2f}%"
    assert rows["AMD"][-1] == "0.00%"


def test_render_defaults_to_lake_dashboards(lake):
    page = render_dashboards(lake)
    assert page == lake / "dashboards" / "index.html" and page.is_file()


def test_an_unknown_symbol_names_the_ones_there_are(lake, tmp_path):
    with pytest.raises(MarketlakeError, match=r"unknown symbol ZZZZ; this lake has AMD, NVDA"):
        render_dashboards(lake, out_dir=tmp_path, symbols=["ZZZZ"])


def test_a_range_that_ends_before_it_starts_is_refused(lake, tmp_path):
    with pytest.raises(MarketlakeError, match="after"):
        render_dashboards(
            lake, out_dir=tmp_path, date_from=dt.date(2024, 6, 1), date_to=dt.date(2024, 5, 1)
        )


def edited_dashboards(tmp_path: Path, edit) -> Path:
    """A copy of the dashboards with `edit(dashboard)` applied to the market overview."""
    folder = tmp_path / "dashboards"
    folder.mkdir()
    for path in DASHBOARDS.glob("*.json"):
        dashboard = json.loads(path.read_text())
        if dashboard["uid"] == "marketlake-market":
            edit(dashboard)
        (folder / path.name).write_text(json.dumps(dashboard))
    return folder


def rsi_target(dashboard: dict) -> dict:
    return next(p for p in dashboard["panels"] if p["title"] == "RSI 14")["targets"][0]


def test_a_broken_panel_fails_naming_the_panel_and_the_macro(lake, tmp_path):
    def edit(dashboard):
        target = rsi_target(dashboard)
        target["rawSQL"] = target["rawSQL"].replace("$__dateFilter", "$__dateFilterr")

    with pytest.raises(MarketlakeError) as caught:
        render_dashboards(lake, tmp_path / "out", dashboards_dir=edited_dashboards(tmp_path, edit))
    message = str(caught.value)
    assert "'Market overview'" in message and "'RSI 14'" in message
    assert "$__dateFilterr" in message and "\n" not in message


def test_a_target_without_connection_args_fails(lake, tmp_path):
    def edit(dashboard):
        del rsi_target(dashboard)["connectionArgs"]["catalog"]

    with pytest.raises(MarketlakeError, match=r"'RSI 14'.*connectionArgs\.catalog"):
        render_dashboards(lake, tmp_path / "out", dashboards_dir=edited_dashboards(tmp_path, edit))


def test_sql_that_does_not_run_names_the_panel(lake, tmp_path):
    def edit(dashboard):
        target = rsi_target(dashboard)
        target["rawSQL"] = target["rawSQL"].replace("rsi_14", "rsi_15")

    with pytest.raises(MarketlakeError, match=r"'RSI 14'.*rsi_15"):
        render_dashboards(lake, tmp_path / "out", dashboards_dir=edited_dashboards(tmp_path, edit))


def test_a_view_the_lake_lacks_asks_for_a_forced_build(lake, tmp_path):
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)  # the views read the copy's own files
    with DuckDBEngine(copy) as engine:
        engine.execute_native("DROP VIEW price_history")
    with pytest.raises(MarketlakeError) as caught:
        render_dashboards(copy, tmp_path / "out")
    message = str(caught.value)
    assert "price_history" in message and "`marketlake build --force`" in message


def test_no_lake_says_how_to_build_one(tmp_path):
    with pytest.raises(MarketlakeError, match="marketlake run"):
        render_dashboards(tmp_path / "nothing-here")


def test_the_page_says_when_its_data_is_synthetic(lake, tmp_path):
    from marketlake.dashboards.render import SYNTHETIC_BANNER
    from marketlake.lake.state import load_state, save_state

    page = render_dashboards(lake, out_dir=tmp_path / "synthetic", watchlist=WATCHLIST)
    text = html.unescape(page.read_text(encoding="utf-8"))
    assert f"{SYNTHETIC_BANNER} (AMD, NVDA)" in text
    # The same lake with its state written as a real provider's: no banner.
    real = tmp_path / "real"
    shutil.copytree(lake, real)
    store = LocalStore(real)
    state = load_state(store)
    assert state.symbols["NVDA"].source == "synthetic"
    state.lake_kind = "market"
    for entry in state.symbols.values():
        entry.source = "alphavantage"
    save_state(store, state)
    page = render_dashboards(real, out_dir=tmp_path / "real-page", watchlist=WATCHLIST)
    text = html.unescape(page.read_text(encoding="utf-8"))
    assert "Synthetic data" not in text and 'class="synthetic"' not in text
    # One synthetic symbol among real ones is named.
    state = load_state(store)
    state.symbols["AMD"].source = "synthetic"
    save_state(store, state)
    page = render_dashboards(real, out_dir=tmp_path / "mixed", watchlist=WATCHLIST)
    assert f"{SYNTHETIC_BANNER} (AMD)" in html.unescape(page.read_text(encoding="utf-8"))
