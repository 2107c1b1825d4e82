"""`marketlake dashboards`: the Grafana dashboards (grafana/dashboards/*.json), run on the local
lake and drawn into one self-contained HTML page.

Each panel's rawSQL goes through what Grafana and the Athena plugin do to it (grafana.py),
then through the same Athena-to-DuckDB path as `marketlake query`, and is drawn in the
dashboard's grid layout (the draw package, one module per panel type), styled by page.css
(a file of this package, inlined in the page). A panel that cannot run raises a
MarketlakeError naming the dashboard, the panel and what to do: a broken panel fails here,
not in Grafana.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from marketlake.dashboards import draw
from marketlake.dashboards.files import (
    FORMATS,
    check_target,
    default_dashboards_dir,
    load_dashboards,
    panels_of,
    targets_of,
)
from marketlake.dashboards.grafana import TimeRange, Variable, span_days
from marketlake.dashboards.runner import Runner, expand_at, relations
from marketlake.dashboards.variables import resolve_variables
from marketlake.errors import MarketlakeError

# Re-exported: the names tests and callers import from here.
__all__ = [
    "Runner",
    "check_target",
    "load_dashboards",
    "panels_of",
    "relations",
    "render_dashboards",
    "resolve_variables",
    "targets_of",
]

PAGE_WIDTH = 1500  # nominal pixels of the 24 grid columns, for the SVG viewBoxes
ROW_HEIGHT = 30  # Grafana's grid: 30 px rows, 8 px gaps
GAP = 8
STYLESHEET = "page.css"  # the page's style, a file of this package

# What "now" is for a dashboard's default time range: the newest moment it has data for.
# The pipeline's runs happen after the newest bar (and, with --as-of, years later).
ANCHORS = {
    "marketlake-pipeline": [
        ("pipeline_runs", "started_at"),
        ("ingest_runs", "started_at"),
        ("ingest_quarantine", "quarantined_at"),  # an import logs no run, only this
    ],
}
DEFAULT_ANCHOR = [("daily_prices", "trade_date")]


# -- time range and variables -------------------------------------------------------------


def _newest(runner: Runner, sources: list) -> dt.date | None:
    found = []
    for relation, column in sources:
        if runner.engine.has_relation(relation):
            value = runner.engine.fetch_arrow(f"SELECT max({column}) AS t FROM {relation}")
            moment = value.column(0).to_pylist()[0]
            if moment is not None:
                found.append(moment.date() if isinstance(moment, dt.datetime) else moment)
    return max(found) if found else None


def time_range_for(
    runner: Runner, dashboard: dict, date_from: dt.date | None, date_to: dt.date | None
) -> TimeRange:
    if date_from is not None and date_to is not None:
        return TimeRange.days(date_from, date_to)
    end = date_to
    if end is None:
        end = _newest(runner, ANCHORS.get(dashboard.get("uid", ""), DEFAULT_ANCHOR))
        end = end or _newest(runner, DEFAULT_ANCHOR)
    if end is None:
        raise MarketlakeError("daily_prices has no rows yet; run `marketlake run` first")
    start = date_from or end - dt.timedelta(days=span_days(dashboard))
    return TimeRange.days(start, end)


# -- the page -----------------------------------------------------------------------------


def _panel_size(grid: dict) -> tuple[int, int]:
    width = int(grid["w"] / 24 * PAGE_WIDTH - GAP)
    height = grid["h"] * ROW_HEIGHT + (grid["h"] - 1) * GAP
    return width, height


def _legend_rows(names: list[str], width: int) -> int:
    """Rows a bottom list legend wraps into: all of them, so no entry is cut off."""
    per_row = max(1, width // max(60, 24 + 7 * max((len(n) for n in names), default=4) + 60))
    return -(-len(names) // per_row)


def _chart_size(panel: dict, names: list[str], width: int, height: int) -> tuple[int, int, str]:
    """The chart's viewBox size inside a panel of width x height, beside or above its legend,
    and the body's class for where the legend goes."""
    options = draw.legend_options(panel)
    inner_w, inner_h = width - 16, height - 58
    if not options["show"]:
        return inner_w, inner_h, "body"
    if options["right"]:
        return max(120, inner_w - options["width"] - 8), inner_h, "body legend-at-right"
    rows = 1 + len(names) if options["table"] else _legend_rows(names, width)
    # The legend takes what it needs up to half the panel; past that it scrolls in its area.
    legend = min(inner_h // 2, rows * 20 + 8)
    return inner_w, inner_h - legend, "body"


def render_panel(
    runner: Runner,
    dashboard: dict,
    panel: dict,
    variables: dict[str, Variable],
    time_range: TimeRange,
) -> tuple[str, list[tuple[str, str]]]:
    """The panel's HTML and its (refId, expanded SQL) list."""
    title = dashboard.get("title", dashboard.get("_file"))
    where = f"dashboard '{title}', panel '{panel.get('title', panel.get('id'))}'"
    kind = panel.get("type")
    grid = panel["gridPos"]
    style = (
        f"grid-column:{grid['x'] + 1} / span {grid['w']};"
        f"grid-row:{grid['y'] + 1} / span {grid['h']}"
    )
    if kind == "row":
        return (
            f'<h2 class="row-title" style="{style}">{draw.esc(panel.get("title", ""))}</h2>',
            [],
        )
    head = (
        f"<header><h3>{draw.esc(panel.get('title', ''))}</h3>"
        f'<p class="desc" title="{draw.esc(panel.get("description", ""))}">'
        f"{draw.esc(panel.get('description', ''))}</p></header>"
    )
    attrs = (
        f'class="panel panel-{draw.esc(kind)}" data-panel-type="{draw.esc(kind)}" '
        f'data-title="{draw.esc(panel.get("title", ""))}" style="{style}"'
    )
    if kind == "text":
        content = (panel.get("options") or {}).get("content", "")
        return (
            f'<section {attrs}>{head}<div class="body text">{draw.esc(content)}</div></section>',
            [],
        )
    if kind not in FORMATS:
        raise MarketlakeError(f"{where}: panels of type {kind} are not drawn locally")
    targets = targets_of(panel)
    if not targets:
        raise MarketlakeError(f"{where}: the panel has no query")
    queries, tables = [], []
    for target in targets:
        check_target(panel, target, where)
        sql = expand_at(target["rawSQL"], variables, time_range, target, where)
        queries.append((target["refId"], sql))
        tables.append(runner.fetch(sql, where))
    width, height = _panel_size(grid)
    if kind == "timeseries":
        series, is_date = [], False
        for table in tables:
            if table.num_rows:
                found, is_date = draw.time_series(panel, table, where)
                series.extend(found)
        body_class = "body"
        if not series:
            body = '<div class="no-data">No data</div>'
        else:
            chart_w, chart_h, body_class = _chart_size(
                panel, [s.name for s in series], width, height
            )
            body = draw.line_chart(
                panel, series, is_date, chart_w, chart_h, time_range.epoch_seconds()
            )
        return (
            f'<section {attrs}>{head}<div class="{body_class}">{body}</div></section>',
            queries,
        )
    else:
        shown = [t for t in tables if t.num_rows]
        body = (
            "".join(draw.html_table(panel, t) for t in shown)
            if shown
            else '<div class="no-data">No data</div>'
        )
    return f'<section {attrs}>{head}<div class="body">{body}</div></section>', queries


SYNTHETIC_BANNER = "Synthetic data: generated by marketlake's synthetic market, not real prices"


def synthetic_symbols(store, shown: set[str]) -> list[str]:
    """The shown symbols whose bars came from the synthetic market, by the ingest state's
    per-symbol source; a lake marked synthetic makes every shown symbol so."""
    from marketlake.lake.state import load_state

    state = load_state(store)
    if state.lake_kind == "synthetic":
        return sorted(shown)
    return sorted(
        s for s in shown if (entry := state.symbols.get(s)) and entry.source == "synthetic"
    )


def stylesheet() -> str:
    """The page's CSS: page.css beside this module, in a source checkout and in the wheel
    alike (hatch packages src/marketlake whole, so the wheel carries it)."""
    try:
        sheet = resources.files("marketlake.dashboards").joinpath(STYLESHEET)
        return sheet.read_text(encoding="utf-8")
    except OSError as exc:
        raise MarketlakeError(
            f"the dashboards' stylesheet {STYLESHEET} is missing from the installed marketlake "
            f"package ({exc}); reinstall marketlake"
        ) from None


def render_dashboards(
    home: Path,
    out_dir: Path | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    symbols: list[str] | None = None,
    dashboards_dir: Path | None = None,
    watchlist: Sequence[str] = (),
) -> Path:
    """Run every panel of grafana/dashboards/*.json on the lake at `home` and write
    OUT_DIR/index.html (default: home/dashboards). Returns the page's path.

    Time range: --from/--to, else each dashboard's default span (now-90d) up to its newest
    data: the newest trade_date in daily_prices (the pipeline dashboard: the newest run).
    Symbols: the given ones, else the `watchlist` symbols in the lake (the configured
    tickers), else All up to variables.MAX_ALL_SYMBOLS, else the most traded on the last
    session (variables.py); the page says which rule chose them.
    """
    from marketlake.engines.duckdb import DuckDBEngine
    from marketlake.storage import LocalStore, digest_cache_path
    from marketlake.wap.pipeline import follow_registry_read_only

    home = Path(home)
    dashboards = load_dashboards(dashboards_dir or default_dashboards_dir())
    if date_from and date_to and date_from > date_to:
        raise MarketlakeError(f"--from {date_from} is after --to {date_to}")
    symbols = [s.strip() for s in symbols or [] if s.strip()] or None
    sections = []
    shown_symbols: set[str] = set()
    store = LocalStore(home, digest_cache_path(home, os.environ))
    with DuckDBEngine(home, read_only=True) as engine:
        follow_registry_read_only(store, engine)
        runner = Runner(engine)
        for dashboard in dashboards:
            time_range = time_range_for(runner, dashboard, date_from, date_to)
            variables, shown = resolve_variables(runner, dashboard, time_range, symbols, watchlist)
            if "symbol" in variables:
                shown_symbols.update(variables["symbol"].values)
            panels: list[str] = []
            queries: list[tuple[str, str, str]] = []  # (panel title, refId, SQL run)
            for panel in panels_of(dashboard):
                html_panel, ran = render_panel(runner, dashboard, panel, variables, time_range)
                panels.append(html_panel)
                queries.extend((panel.get("title", ""), ref, sql) for ref, sql in ran)
            sections.append(_section(dashboard, time_range, shown, panels, queries))
    out = Path(out_dir) if out_dir is not None else home / "dashboards"
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    synthetic = synthetic_symbols(store, shown_symbols)
    page.write_text(_page(home, dashboards, sections, synthetic), encoding="utf-8")
    return page


def _anchor(dashboard: dict) -> str:
    return "d-" + "".join(c if c.isalnum() else "-" for c in str(dashboard.get("uid", "")))


def _section(dashboard, time_range: TimeRange, shown, panels, queries) -> str:
    refresh = dashboard.get("refresh") or "off"
    chips = [("Time range (UTC)", f"{time_range.start:%Y-%m-%d} to {time_range.end:%Y-%m-%d}")]
    chips += [*shown, ("Refresh in Grafana", refresh)]
    chip_html = "".join(
        f'<span class="chip"><b>{draw.esc(k)}</b>{draw.esc(v)}</span>' for k, v in chips
    )
    query_html = "".join(
        f"<h4>{draw.esc(title)} ({draw.esc(ref)})</h4><pre>{draw.esc(sql.strip())}</pre>"
        for title, ref, sql in queries
    )
    return (
        f'<section class="dashboard" id="{_anchor(dashboard)}">'
        f'<div class="dash-head"><h2>{draw.esc(dashboard.get("title", ""))}</h2>'
        f'<div class="chips">{chip_html}</div>'
        f'<p class="dash-desc">{draw.esc(dashboard.get("description", ""))}</p></div>'
        f'<div class="grid">{"".join(panels)}</div>'
        f'<details class="queries"><summary>The SQL each panel ran here, after Grafana\'s '
        f"variables and the Athena plugin's macros ({len(queries)})</summary>"
        f"{query_html}</details></section>"
    )


def _page(home: Path, dashboards: list[dict], sections: list[str], synthetic: list[str]) -> str:
    nav = "".join(f'<a href="#{_anchor(d)}">{draw.esc(d.get("title", ""))}</a>' for d in dashboards)
    made = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>marketlake dashboards</title>"
        f"<style>{stylesheet()}</style></head><body>"
        f'<div class="top"><h1>marketlake dashboards</h1><nav>{nav}</nav>'
        f'<span class="meta">Grafana dashboards rendered from the local lake '
        f"{draw.esc(Path(home).resolve())} at {made}</span></div>"
        + (
            f'<p class="synthetic" role="alert">{draw.esc(SYNTHETIC_BANNER)} '
            f"({draw.esc(', '.join(synthetic))})</p>"
            if synthetic
            else ""
        )
        + f"{''.join(sections)}</body></html>\n"
    )
