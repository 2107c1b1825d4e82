"""The symbol variable's default at market scale: the watchlist symbols in the lake, else the
10 most traded on the last session, never All past MAX_ALL_SYMBOLS; the page says which rule
chose them, and the CLI passes the configured tickers as the watchlist."""

from __future__ import annotations

import copy
import datetime as dt
import html
import re
from pathlib import Path

import pandas as pd
import pytest

import cli_run
from marketlake.config import Settings
from marketlake.dashboards.grafana import TimeRange
from marketlake.dashboards.render import load_dashboards, render_dashboards, resolve_variables
from marketlake.dashboards.runner import Runner
from marketlake.dashboards.variables import MAX_ALL_SYMBOLS, TOP_BY_VOLUME
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.lake import raw
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore
from marketlake.wap.pipeline import run_build

DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
SESSIONS = sessions_between(dt.date(2024, 6, 24), dt.date(2024, 6, 28))[:3]
LAST = SESSIONS[-1]
SYMBOLS = [f"S{i:02d}" for i in range(60)]  # more than MAX_ALL_SYMBOLS
STAMP = "2024-07-01 21:00:00.000"


def volumes(symbol: str) -> list[int]:
    """Shares per session. On the last session S59 trades most, then down to S51; S48, S49
    and S50 tie next (the 10th place goes to S48, first by symbol). Earlier sessions rank
    the other way round, and S00, the most traded of all, has no bar on the last session."""
    i = int(symbol[1:])
    last = 1_000 * (i if i not in (49, 50) else 48)
    if symbol == "S00":
        return [10**9, 10**9]
    return [100_000 - i, 100_000 - i, last]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    home = tmp_path_factory.mktemp("user") / "lake"
    store = LocalStore(home)
    for symbol in SYMBOLS:
        shares = volumes(symbol)
        bars = pd.DataFrame(
            {
                "trade_date": SESSIONS[: len(shares)],
                "open": 10.0,
                "high": 11.0,
                "low": 9.0,
                "close": [10.0, 10.5, 10.25][: len(shares)],
                "volume": shares,
            }
        )
        frame = raw.bars_to_frame(symbol, bars, "import", STAMP)
        store.put_bytes(raw.raw_key(dt.date(2024, 7, 1), symbol), raw.frame_to_csv(frame))
    with DuckDBEngine(home) as engine:
        assert run_build(Settings.from_env({}, home=home), store, engine).status == "published"
    return home


def most_traded() -> list[str]:
    """The expected fallback, from the volumes written above."""
    on_last = [(s, volumes(s)[-1]) for s in SYMBOLS if len(volumes(s)) == len(SESSIONS)]
    ranked = sorted(on_last, key=lambda sv: (-sv[1], sv[0]))[:TOP_BY_VOLUME]
    return sorted(s for s, _ in ranked)


def market(edit=None) -> dict:
    dashboard = next(d for d in load_dashboards(DASHBOARDS) if d["uid"] == "marketlake-market")
    dashboard = copy.deepcopy(dashboard)
    if edit:
        edit(next(v for v in dashboard["templating"]["list"] if v["name"] == "symbol"))
    return dashboard


def choose(lake, watchlist=(), dashboard=None, symbols=None):
    """(selected symbols, All?, the page's chips) of the market dashboard's symbol variable."""
    with DuckDBEngine(lake, read_only=True) as engine:
        variables, shown = resolve_variables(
            Runner(engine),
            dashboard or market(),
            TimeRange.days(SESSIONS[0], LAST),
            symbols,
            watchlist,
        )
    symbol = variables["symbol"]
    return symbol.values, symbol.all_selected, dict(shown)


def test_the_watchlist_symbols_in_the_lake_are_the_default(lake):
    values, everything, shown = choose(lake, watchlist=("s07", "S03", "ZZZZ"))
    assert values == ["S03", "S07"] and not everything
    assert shown["Symbol"] == "S03, S07"
    assert shown["Symbol chosen by"] == (
        "the watchlist (MARKETLAKE_TICKERS): 2 of its 3 symbols are in the lake"
    )


def test_with_no_watchlist_symbol_in_the_lake_the_most_traded_of_the_last_session(lake):
    expected = most_traded()
    assert "S48" in expected and "S49" not in expected and "S00" not in expected
    for watchlist in (("ZZZZ", "YYYY"), ()):
        values, everything, shown = choose(lake, watchlist=watchlist)
        assert values == expected and not everything
        rule = shown["Symbol chosen by"]
        assert rule.endswith(f": the {TOP_BY_VOLUME} with the most volume on {LAST}")
        assert rule.startswith("no watchlist symbol is in" if watchlist else "no watchlist was")


def test_given_symbols_win_over_the_watchlist(lake):
    values, _, shown = choose(lake, watchlist=("S03",), symbols=["s09"])
    assert values == ["S09"] and shown["Symbol chosen by"] == "--symbol"


def test_all_is_a_default_only_up_to_max_all_symbols(lake):
    def all_by_default(variable):
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}

    def at_most(count):
        def edit(variable):
            all_by_default(variable)
            variable["query"]["rawSQL"] = (
                f"SELECT symbol FROM latest_prices WHERE symbol < 'S{count:02d}' ORDER BY symbol"
            )

        return edit

    # The lake's 60 symbols: All would be 60 lines; the most traded instead.
    values, everything, _ = choose(lake, dashboard=market(all_by_default))
    assert not everything and values == most_traded()
    # At most MAX_ALL_SYMBOLS options: All, as the dashboard says.
    values, everything, shown = choose(lake, dashboard=market(at_most(MAX_ALL_SYMBOLS)))
    assert everything and len(values) == MAX_ALL_SYMBOLS
    assert shown["Symbol"].startswith("All: S00, S01") and "All" in shown["Symbol chosen by"]
    # One more: not All; the most traded among the options (S51 and up are not options).
    values, everything, _ = choose(lake, dashboard=market(at_most(MAX_ALL_SYMBOLS + 1)))
    assert not everything and values == [f"S{i}" for i in range(41, 51)]
    # ... and the watchlist still comes first.
    values, everything, _ = choose(lake, ("S05",), market(at_most(MAX_ALL_SYMBOLS)))
    assert values == ["S05"] and not everything


def chips(page: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in re.findall(r'<span class="chip"><b>(.*?)</b>(.*?)</span>', page):
        found.setdefault(html.unescape(key), []).append(html.unescape(value))
    return found


def test_the_page_says_which_rule_chose_the_symbols_and_runs_only_those(lake, tmp_path):
    page = render_dashboards(lake, tmp_path, watchlist=("ZZZZ",)).read_text(encoding="utf-8")
    shown = chips(page)
    expected = ", ".join(most_traded())
    assert shown["Symbol"] == [expected, expected]  # both dashboards
    assert all("the 10 with the most volume" in rule for rule in shown["Symbol chosen by"])
    in_lists = re.findall(r"symbol IN \((.*?)\)", html.unescape(page))
    assert in_lists and all(len(found.split(",")) == TOP_BY_VOLUME for found in in_lists)


def test_the_cli_passes_the_configured_tickers_as_the_watchlist(lake):
    env = {"MARKETLAKE_HOME": str(lake), "MARKETLAKE_TICKERS": "S09,S05,NOPE"}
    done = cli_run.marketlake(lake.parent, "dashboards", "--out", "page", env=env)
    assert done.returncode == 0, done.stderr
    shown = chips((lake.parent / "page" / "index.html").read_text(encoding="utf-8"))
    assert shown["Symbol"] == ["S05, S09", "S05, S09"]
    assert shown["Symbol chosen by"][0].endswith("2 of its 3 symbols are in the lake")
