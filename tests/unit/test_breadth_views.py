"""The market breadth views (sql/views/market_breadth.sql, top_movers.sql,
breadth_above_sma50.sql) on a small hand-made lake built by the real pipeline, against an
independent computation in exact fractions from the traded closes and the split factors.

The lake holds what the views must get right: first bars, an unchanged day, a split day
unchanged once adjusted, a symbol flat through a 3:1 split (whose adjusted closes differ from
the flat price in the last bits, so float noise must not make it move or sit above its
average), a gap in a symbol's history, a symbol stale on the last session, symbols without 50
sessions, and ties among the last session's movers, at the top and at the cut of 10.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from fractions import Fraction

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from marketlake import sqlfiles
from marketlake.config import Settings
from marketlake.engines.dialect import transpile
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.lake import actions, raw
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore
from marketlake.wap.pipeline import run_build

VIEWS = ("market_breadth", "top_movers", "breadth_above_sma50")
SESSIONS = sessions_between(dt.date(2024, 1, 2), dt.date(2024, 4, 30))[:60]
LAST = SESSIONS[-1]
INGEST = dt.date(2024, 5, 1)
STAMP = "2024-05-01 21:00:00.000"
SPLITS = {"BRAV": (SESSIONS[52], 3), "CHAR": (SESSIONS[40], 3)}
# The last session's moves in percent of the movers, which trade only the last five sessions:
# a tie at the top of the gainers, three-way ties at the cut of 10 on both sides.
GAINERS = {"M01": 15, "M02": 15, "M03": 13, "M04": 12, "M05": 11, "M06": 10, "M07": 9}
GAINERS |= {"M08": 8, "M09": 7, "M12": 5, "M10": 5, "M11": 5}
LOSERS = {f"M{13 + i:02d}": -p for i, p in enumerate([15, 14, 13, 12, 11, 10, 9, 8, 7, 5, 5, 5])}


def walk(seed: int, n: int) -> list[Fraction]:
    """A random walk of prices in whole cents (moves under 3%, never a mover's 5%)."""
    rng = np.random.default_rng(seed)
    cents = [4000]
    for step in rng.uniform(-0.029, 0.029, n - 1):
        cents.append(round(cents[-1] * (1 + step)))
    return [Fraction(c, 100) for c in cents]


def market() -> dict[str, dict[dt.date, Fraction]]:
    """Each symbol's split-ADJUSTED closes by session (traded = adjusted * later factors)."""
    days = SESSIONS
    closes: dict[str, dict[dt.date, Fraction]] = {}
    closes["ALFA"] = dict(zip(days[5:], walk(1, 55)))  # first bar on the 6th session
    # Falling 20 cents a session, so always below its average: adjusted, never above it; as
    # traded, three times above it before its split (a view comparing close would count it).
    brav = [Fraction(6000 - 20 * i, 100) for i in range(60)]
    brav[52] = brav[51]  # unchanged on its split day, once adjusted
    closes["BRAV"] = dict(zip(days, brav))
    closes["CHAR"] = {d: Fraction(3333, 100) for d in days}  # flat through its split
    closes["DELT"] = dict(zip(days[20:], walk(4, 40)))  # never 50 sessions
    closes["ECHO"] = dict(zip(days[:58], walk(5, 58)))  # stale: no bar on the last session
    golf = dict(zip(days, walk(6, 60)))
    del golf[days[40]]  # a gap: the 42nd session compares with the 40th
    closes["GOLF"] = golf
    hotl = walk(7, 60)
    hotl[45] = hotl[44]  # unchanged, no split
    closes["HOTL"] = dict(zip(days, hotl))
    for symbol, pct in {**GAINERS, **LOSERS, "UNCH": 0}.items():
        last = Fraction(100) * (1 + Fraction(pct, 100))
        closes[symbol] = {d: Fraction(100) for d in days[55:59]} | {LAST: last}
    closes["NEWB"] = {LAST: Fraction(50)}  # its first bar is the last session
    return closes


def later_factor(symbol: str, day: dt.date) -> int:
    ex, factor = SPLITS.get(symbol, (None, 1))
    return factor if ex is not None and day < ex else 1


def cents(value: Fraction) -> str:
    assert (value * 100).denominator == 1, value
    return f"{float(value):.2f}"


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    home = tmp_path_factory.mktemp("lake")
    store = LocalStore(home)
    for n, (symbol, closes) in enumerate(sorted(market().items())):
        days = sorted(closes)
        traded = [closes[d] * later_factor(symbol, d) for d in days]
        bars = pd.DataFrame(
            {
                "trade_date": days,
                "open": [float(c) for c in traded],
                "high": [float(c) + 1.0 for c in traded],
                "low": [float(c) / 2 for c in traded],
                "close": [float(cents(c)) for c in traded],
                "volume": [1_000 * (n + 1) + i for i in range(len(days))],
            }
        )
        frame = raw.bars_to_frame(symbol, bars, "import", STAMP)
        store.put_bytes(raw.raw_key(INGEST, symbol), raw.frame_to_csv(frame))
    for symbol, (ex, factor) in SPLITS.items():
        rows = pd.DataFrame({"date": [ex.isoformat()], "value": [str(factor)]})
        valid = actions.judge_actions(actions.SPLITS, rows)[0]
        assert actions.land_actions(store, actions.SPLITS, symbol, valid, "import", INGEST, STAMP)
    with DuckDBEngine(home) as engine:
        result = run_build(Settings.from_env({}, home=home), store, engine)
    assert result.status == "published" and result.rows_quarantined == 0
    return home


def view(home, name: str, order: str) -> list[dict]:
    with DuckDBEngine(home, read_only=True) as engine:
        return engine.fetch_arrow(f"SELECT * FROM {name} ORDER BY {order}").to_pylist()


# -- the independent computation ---------------------------------------------------------------


def moves() -> dict[dt.date, dict[str, Fraction]]:
    """Per session, each symbol's exact move against its previous bar (its first: none)."""
    found: dict[dt.date, dict[str, Fraction]] = defaultdict(dict)
    for symbol, closes in market().items():
        days = sorted(closes)
        for before, day in zip(days, days[1:]):
            found[day][symbol] = closes[day] / closes[before] - 1
    return found


def expected_breadth() -> list[dict]:
    rows = []
    for day, by_symbol in sorted(moves().items()):
        signs = [(m > 0) - (m < 0) for m in by_symbol.values()]
        rows.append(
            {
                "trade_date": day,
                "advancing": signs.count(1),
                "declining": signs.count(-1),
                "unchanged": signs.count(0),
                "symbols": len(signs),
            }
        )
    return rows


def expected_movers() -> list[dict]:
    closes, volumes = market(), {}
    for n, symbol in enumerate(sorted(closes)):
        volumes[symbol] = 1_000 * (n + 1) + len(closes[symbol]) - 1
    last = moves()[LAST]
    rows = []
    for side, keep, key in (
        ("gainer", lambda m: m > 0, lambda s: (-last[s], s)),
        ("loser", lambda m: m < 0, lambda s: (last[s], s)),
    ):
        ranked = sorted((s for s in last if keep(last[s])), key=key)[:10]
        for rank, symbol in enumerate(ranked, start=1):
            traded = closes[symbol][LAST] * later_factor(symbol, LAST)
            rows.append(
                {
                    "rank": rank,
                    "symbol": symbol,
                    "side": side,
                    "price_change_pct": float(last[symbol] * 100),
                    "close": float(cents(traded)),
                    "volume": volumes[symbol],
                    "trade_date": LAST,
                }
            )
    return rows


def expected_above_sma50() -> list[dict]:
    counts: dict[dt.date, list[bool]] = defaultdict(list)
    for closes in market().values():
        days = sorted(closes)
        for i in range(49, len(days)):
            window = [closes[d] for d in days[i - 49 : i + 1]]
            counts[days[i]].append(closes[days[i]] > sum(window) / 50)
    return [
        {"trade_date": d, "above": sum(v), "counted": len(v), "share_above": sum(v) / len(v)}
        for d, v in sorted(counts.items())
    ]


# -- the views ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VIEWS)
def test_each_view_parses_as_trino_and_says_its_definition(name):
    text = sqlfiles.load(f"views/{name}.sql")
    statements = [s for s in sqlglot.parse(text, read="trino", error_level=ErrorLevel.RAISE) if s]
    assert len(statements) == 1 and isinstance(statements[0], sqlglot.exp.Query)
    header = text.split("SELECT", 1)[0].split("WITH", 1)[0]
    assert "split-adjusted" in header  # which close the move or the average is of


def test_the_data_has_what_the_views_must_get_right():
    """Guards the fixture: without these cases the comparisons below prove less."""
    by_day = moves()
    assert by_day[SPLITS["BRAV"][0]]["BRAV"] == 0  # a split day, unchanged once adjusted
    assert SESSIONS[49] < SPLITS["BRAV"][0]  # ... inside BRAV's full 50-session windows
    assert by_day[SPLITS["CHAR"][0]]["CHAR"] == 0  # ... and a flat symbol's split day
    assert by_day[SESSIONS[45]]["HOTL"] == 0  # an unchanged day with no split
    assert "GOLF" in by_day[SESSIONS[41]] and SESSIONS[40] not in market()["GOLF"]
    assert "NEWB" not in by_day[LAST] and "ECHO" not in by_day[LAST]
    last = sorted(by_day[LAST].values())
    assert last[9] == last[10] and last[-10] == last[-11]  # ties at the cut of 10, both sides
    assert any(len(closes) < 50 for closes in market().values())  # no full window, ever


def test_market_breadth_counts_advancing_declining_and_unchanged_per_session(lake):
    rows = view(lake, "market_breadth", "trade_date")
    assert list(rows[0]) == ["trade_date", "advancing", "declining", "unchanged", "symbols"]
    assert rows == expected_breadth()


def test_top_movers_ranks_the_last_sessions_ten_gainers_and_ten_losers(lake):
    rows = view(lake, "top_movers", "side, rank")
    expected = expected_movers()
    assert [r["symbol"] for r in rows if r["side"] == "gainer"] == [
        "M01", "M02", "M03", "M04", "M05", "M06", "M07", "M08", "M09", "M10",
    ]  # fmt: skip
    assert [r["symbol"] for r in rows if r["side"] == "loser"][-1] == "M22"  # M22 < M23 < M24
    assert len(rows) == len(expected) == 20
    for found, wanted in zip(rows, expected):
        assert list(found) == list(wanted)
        pct = found.pop("price_change_pct")
        assert pct == pytest.approx(wanted.pop("price_change_pct"), rel=1e-12)
        assert found == wanted


def test_top_movers_never_lists_a_symbol_on_both_sides_or_an_unchanged_one(lake):
    rows = view(lake, "top_movers", "side, rank")
    assert len({r["symbol"] for r in rows}) == len(rows)
    assert not {"UNCH", "NEWB", "ECHO"} & {r["symbol"] for r in rows}


def test_breadth_above_sma50_counts_only_full_windows(lake):
    rows = view(lake, "breadth_above_sma50", "trade_date")
    expected = expected_above_sma50()
    assert [r["trade_date"] for r in rows] == [r["trade_date"] for r in expected]
    assert rows[0]["trade_date"] == SESSIONS[49]  # the first full 50-session window
    for found, wanted in zip(rows, expected):
        assert (found["above"], found["counted"]) == (wanted["above"], wanted["counted"])
        assert math.isclose(found["share_above"], wanted["share_above"], rel_tol=1e-12)
        assert 0.0 <= found["share_above"] <= 1.0
    # DELT (40 sessions) and the movers (5) never count; CHAR, flat, is counted, never above.
    assert max(r["counted"] for r in rows) == 6


def test_top_movers_on_a_quiet_session_lists_only_real_moves():
    """Fewer than 10 a side: a symbol unchanged (0, or 1e-14 % of split-adjustment noise) or
    on its first bar (NULL) is neither a gainer nor a loser; an older session never counts."""
    day, before = dt.date(2024, 6, 28), dt.date(2024, 6, 27)
    prices = pd.DataFrame(
        {
            "symbol": ["UP1", "UP2", "UP3", "FLAT", "NOISE", "NEW", "DN1", "DN2", "UP1"],
            "trade_date": [day] * 8 + [before],
            "price_change_pct": [2.0, 0.5, 0.5, 0.0, 2.2e-14, None, -1.0, -0.25, 9.0],
            "close": [10.0] * 9,
            "volume": [100] * 9,
        }
    )
    with duckdb.connect() as con:
        con.register("daily_prices", prices)
        sql = transpile(sqlfiles.load("views/top_movers.sql"))
        found = con.sql(f"SELECT side, rank, symbol FROM ({sql}) ORDER BY side, rank").fetchall()
    assert found == [
        ("gainer", 1, "UP1"),
        ("gainer", 2, "UP2"),  # tied with UP3: by symbol
        ("gainer", 3, "UP3"),
        ("loser", 1, "DN1"),
        ("loser", 2, "DN2"),
    ]
