"""A dashboard's template variables with their values, as Grafana would select them, and the
default of the `symbol` variable at market scale.

The symbol default, unless --symbol names some:
1. the watchlist (the configured tickers, MARKETLAKE_TICKERS) symbols that are in the lake:
   what Terraform makes the provisioned dashboards' default on AWS (terraform/grafana);
2. else All, when the dashboard's default is All and the lake holds at most MAX_ALL_SYMBOLS;
3. else the TOP_BY_VOLUME symbols with the most volume on the lake's last session.
The page says which rule chose them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from marketlake.dashboards import draw
from marketlake.dashboards.files import DATASOURCE_TYPE
from marketlake.dashboards.grafana import ALL_VALUE, TimeRange, Variable
from marketlake.dashboards.runner import Runner, expand_at
from marketlake.errors import MarketlakeError

SYMBOL_VARIABLE = "symbol"
# All is never a default beyond this many symbols: each time series panel draws a line per
# selected symbol (unreadable past a few dozen), and each panel's SQL carries every one in its
# IN list. A whole-market lake holds ~10,000: 10,000 lines and an ~80 KB query per panel.
MAX_ALL_SYMBOLS = 50
# With no watchlist symbol in the lake: a handful a chart can show, the most traded first.
TOP_BY_VOLUME = 10
# Every symbol of the last session, most traded first (ties by symbol): the first ones that
# are options of the variable are chosen. No LIMIT: the variable's query may leave some out.
MOST_TRADED = (
    "SELECT symbol, trade_date FROM daily_prices "
    "WHERE trade_date = (SELECT max(trade_date) FROM daily_prices) "
    "ORDER BY volume DESC, symbol"
)


@dataclasses.dataclass(frozen=True)
class Choice:
    """A variable's selected values; `rule` says on the page why these (empty: the dashboard's
    own default, for variables other than symbol)."""

    values: list[str]
    everything: bool = False
    rule: str = ""


def _options(table) -> list[str]:
    """A variable query's values: its __value column if there is one, else the first."""
    names = table.column_names
    column = table.column("__value" if "__value" in names else names[0]).to_pylist()
    seen: dict[str, None] = {}
    for value in column:
        if value is not None:
            seen.setdefault(draw.format_cell(value), None)
    return list(seen)


def _sorted(options: list[str], how: int) -> list[str]:
    if how in (1, 2):
        return sorted(options, reverse=how == 2)
    if how in (3, 4):

        def number(text: str) -> float:
            try:
                return float(text)
            except ValueError:
                return float("inf")

        return sorted(options, key=number, reverse=how == 4)
    if how in (5, 6):
        return sorted(options, key=str.lower, reverse=how == 6)
    return options


def _current(spec: dict) -> list[str]:
    current = (spec.get("current") or {}).get("value")
    return current if isinstance(current, list) else [current] if current else []


def _given(spec: dict, options: list[str], wanted: list[str], where: str) -> Choice:
    name = spec["name"]
    by_key = {o.upper(): o for o in options}
    unknown = [w for w in wanted if w.upper() not in by_key]
    if unknown:
        raise MarketlakeError(
            f"{where}: unknown {name} {', '.join(unknown)}; this lake has "
            f"{', '.join(options) or 'none'}"
        )
    if len(wanted) > 1 and not spec.get("multi"):
        raise MarketlakeError(f"{where}: the {name} variable takes one value")
    return Choice([by_key[w.upper()] for w in wanted], rule="--symbol")


def _dashboard_default(spec: dict, options: list[str]) -> Choice:
    current = _current(spec)
    if (ALL_VALUE in current or not current) and spec.get("includeAll"):
        return Choice(options, everything=True)
    kept = [c for c in current if c in options]
    return Choice(kept or options[:1])


def default_symbols(
    runner: Runner, spec: dict, options: list[str], watchlist: Sequence[str], where: str
) -> Choice:
    """The symbol variable's default (the module's rules 1 to 3), in the options' order."""
    listed = {w.strip().upper() for w in watchlist if w.strip()}
    present = [o for o in options if o.upper() in listed]
    if present:
        return Choice(
            present,
            rule=f"the watchlist (MARKETLAKE_TICKERS): {len(present)} of its {len(listed)} "
            "symbols are in the lake",
        )
    current = _current(spec)
    wants_all = (ALL_VALUE in current or not current) and spec.get("includeAll")
    if wants_all and len(options) <= MAX_ALL_SYMBOLS:
        return Choice(
            options,
            everything=True,
            rule=f"the dashboard's default, All: the lake has {len(options)} symbols "
            f"(All is a default only up to {MAX_ALL_SYMBOLS})",
        )
    rows = runner.fetch(MOST_TRADED, where).to_pylist()
    by_key = {o.upper(): o for o in options}
    traded = [by_key[k] for k in (str(r["symbol"]).upper() for r in rows) if k in by_key]
    top = set(traded[:TOP_BY_VOLUME])
    chosen = [o for o in options if o in top] or options[:1]
    day = rows[0]["trade_date"] if rows else "the last session"
    why = (
        "no watchlist symbol is in the lake"
        if listed
        else "no watchlist was given (MARKETLAKE_TICKERS=ALL follows the whole market)"
    )
    return Choice(chosen, rule=f"{why}: the {len(chosen)} with the most volume on {day}")


def resolve_variables(
    runner: Runner,
    dashboard: dict,
    time_range: TimeRange,
    symbols: list[str] | None,
    watchlist: Sequence[str] = (),
) -> tuple[dict[str, Variable], list[tuple[str, str]]]:
    """The dashboard's variables with their values, and (label, shown value) for the page."""
    title = dashboard.get("title", dashboard.get("_file"))
    variables: dict[str, Variable] = {}
    shown = []
    for spec in (dashboard.get("templating") or {}).get("list") or []:
        name, kind = spec["name"], spec.get("type")
        where = f"dashboard '{title}', variable '{name}'"
        if kind == "datasource":
            value = (spec.get("current") or {}).get("value") or spec.get("query", "")
            variables[name] = Variable(name, [str(value)])
            continue
        if kind in ("constant", "textbox"):
            variables[name] = Variable(name, [str(spec.get("query", ""))])
            continue
        if kind == "custom":
            options = [o.strip() for o in str(spec.get("query", "")).split(",") if o.strip()]
        elif kind == "query":
            query = spec.get("query")
            query = query if isinstance(query, dict) else {"rawSQL": str(query or "")}
            source = spec.get("datasource")
            if isinstance(source, dict) and source.get("type") not in (None, DATASOURCE_TYPE):
                raise MarketlakeError(f"{where}: its data source is not {DATASOURCE_TYPE}")
            if not query.get("rawSQL"):
                raise MarketlakeError(f"{where}: the variable query has no rawSQL")
            sql = expand_at(query["rawSQL"], variables, time_range, query, where)
            options = _sorted(_options(runner.fetch(sql, where)), int(spec.get("sort") or 0))
        else:
            raise MarketlakeError(f"{where}: variables of type {kind} are not supported locally")
        if not options:
            raise MarketlakeError(
                f"{where}: its query returned no values (is daily_prices empty?); "
                "run `marketlake run` first"
            )
        if name == SYMBOL_VARIABLE and symbols:
            choice = _given(spec, options, symbols, where)
        elif name == SYMBOL_VARIABLE:
            choice = default_symbols(runner, spec, options, watchlist, where)
        else:
            choice = _dashboard_default(spec, options)
        variables[name] = Variable(
            name,
            choice.values,
            is_list=bool(spec.get("multi") or spec.get("includeAll")),
            all_selected=choice.everything,
            custom_all=spec.get("allValue") or None,
        )
        label = spec.get("label") or name
        shown.append((label, ("All: " if choice.everything else "") + ", ".join(choice.values)))
        if choice.rule:
            shown.append((f"{label} chosen by", choice.rule))
    return variables, shown
