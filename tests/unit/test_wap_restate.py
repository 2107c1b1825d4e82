"""Issue 14, item 3: a split or dividend that lands after the bars it adjusts were published.

The incremental build recomputes exactly the symbols whose numbers the change reaches (a
split: the symbol's whole history; a dividend added after the last one: from its ex-date),
splices them into the rebuilt years, and leaves every other symbol's published values as
they were; the table it publishes equals a full build of the same lake.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from test_wap_versions import Lake, same_rows

from marketlake.errors import MarketlakeError
from marketlake.lake import actions, raw
from marketlake.sessions import sessions_between
from marketlake.wap import restate
from marketlake.wap.pipeline import TABLE, plan
from marketlake.wap.versions import load_registry, registry_key

SYMBOLS = ("AAA", "BBB", "CCC")
HISTORY = (dt.date(2021, 1, 4), dt.date(2023, 12, 29))
LATER = (dt.date(2024, 1, 2), dt.date(2024, 3, 28))
SPLIT_DAY = dt.date(2022, 6, 15)  # AAA 4:1; its bars before it trade at 4x
# Rows of the lake compared symbol by symbol.
OF = f"SELECT * FROM {TABLE} WHERE symbol = '{{}}' ORDER BY trade_date"


def bars(symbol: str, days: list[dt.date], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 40.0 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
    if symbol == "AAA":
        close = np.where(np.array(days) < SPLIT_DAY, close * 4, close)
    open_ = close * np.exp(rng.normal(0, 0.01, len(days)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, len(days))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, len(days))))
    volume = rng.integers(1_000, 100_000, len(days))
    return pd.DataFrame(
        {
            "trade_date": days,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


def land_bars(lake: Lake, span: tuple[dt.date, dt.date], ingest_date: dt.date) -> None:
    days = sessions_between(*span)
    for i, symbol in enumerate(SYMBOLS):
        frame = bars(symbol, days, seed=100 * i + span[0].year)
        stamp = f"{ingest_date.isoformat()} 23:00:00.000"
        lake.store.put_bytes(
            raw.raw_key(ingest_date, symbol),
            raw.frame_to_csv(raw.bars_to_frame(symbol, frame, "import", stamp)),
        )


def land_action(lake: Lake, kind, symbol: str, day: str, value: float, ingest_date: str) -> None:
    valid = actions.judge_actions(kind, pd.DataFrame({"date": [day], "value": [str(value)]}))[0]
    landed = dt.date.fromisoformat(ingest_date)
    stamp = f"{ingest_date} 23:30:00.000"
    assert actions.land_actions(lake.store, kind, symbol, valid, "import", landed, stamp) == 1


@pytest.fixture()
def lake(tmp_path):
    """Three symbols, 2021 to March 2024, published by a full build and an incremental one;
    BBB's and CCC's 2022 dividends recorded from the start, no split yet."""
    lake = Lake(tmp_path / "lake")
    land_bars(lake, HISTORY, dt.date(2024, 1, 2))
    land_action(lake, actions.DIVIDENDS, "BBB", "2022-05-10", 0.4, "2024-01-02")
    land_action(lake, actions.DIVIDENDS, "CCC", "2022-05-10", 0.25, "2024-01-02")
    assert lake.build().mode == "full"
    land_bars(lake, LATER, dt.date(2024, 4, 1))
    daily = lake.build()
    assert daily.mode == "incremental" and daily.years == [2024] and daily.restated == {}
    return lake


def rows_of(lake: Lake, symbol: str) -> list[dict]:
    return lake.rows(OF.format(symbol))


def test_a_late_split_rebuilds_that_symbol_and_equals_a_full_build(lake):
    before = {s: rows_of(lake, s) for s in SYMBOLS}
    land_action(lake, actions.SPLITS, "AAA", SPLIT_DAY.isoformat(), 4, "2024-04-02")

    late = lake.build()
    assert late.mode == "incremental" and "splits or dividends changed for AAA" in late.message
    # Only AAA is recomputed, from its first bar; every year holding its rows is rewritten.
    assert late.restated == {"AAA": "2021-01-04"}
    assert late.years == [2021, 2022, 2023, 2024]
    assert late.new_rows == 0
    incremental = lake.rows()

    # Other symbols' published values: bit for bit what they were.
    for symbol in ("BBB", "CCC"):
        same_rows(before[symbol], rows_of(lake, symbol))
    # AAA's adjusted history is now at the post-split scale.
    aaa = rows_of(lake, "AAA")
    assert len(aaa) == len(before["AAA"])
    assert {r["adj_factor"] for r in aaa if r["trade_date"] < SPLIT_DAY} == {4.0}
    assert {r["adj_factor"] for r in aaa if r["trade_date"] >= SPLIT_DAY} == {1.0}
    assert {r["adj_factor"] for r in before["AAA"]} == {1.0}
    day = next(r for r in aaa if r["trade_date"] == SPLIT_DAY)
    assert abs(day["price_change_pct"]) < 10  # the 75% overnight drop is the split, no move

    # The whole table, every column, equals a full build of the same lake.
    assert lake.build(full=True).mode == "full"
    same_rows(incremental, lake.rows(), rel=1e-14)


def test_a_late_dividend_restates_its_symbol_from_its_ex_date(lake):
    before = {s: rows_of(lake, s) for s in SYMBOLS}
    land_action(lake, actions.DIVIDENDS, "CCC", "2023-05-10", 0.3, "2024-04-02")

    late = lake.build()
    assert late.mode == "incremental"
    assert late.restated == {"CCC": "2023-05-10"}  # after the 2022 one it already applied
    assert late.years == [2023, 2024]
    for symbol in ("AAA", "BBB"):
        same_rows(before[symbol], rows_of(lake, symbol))
    ccc = {r["trade_date"]: r for r in rows_of(lake, "CCC")}
    old = {r["trade_date"]: r for r in before["CCC"]}
    ex = dt.date(2023, 5, 10)
    assert ccc[ex]["dividend"] == 0.3 and old[ex]["dividend"] == 0.0
    assert ccc[ex]["dividend_yield_ttm"] == pytest.approx(0.3 / ccc[ex]["close"], rel=1e-12)
    # Within 365 days of the ex-date the yield carries it; before it, nothing changed.
    assert (
        ccc[dt.date(2024, 3, 28)]["dividend_yield_ttm"]
        > old[dt.date(2024, 3, 28)]["dividend_yield_ttm"]
    )
    earlier = [d for d in ccc if d < ex]
    same_rows([old[d] for d in earlier], [ccc[d] for d in earlier])

    incremental = lake.rows()
    lake.build(full=True)
    same_rows(incremental, lake.rows(), rel=1e-14)


def test_a_changed_earlier_dividend_restates_the_whole_symbol(lake):
    land_action(lake, actions.DIVIDENDS, "BBB", "2022-05-10", 0.45, "2024-04-02")  # was 0.4
    late = lake.build()
    assert late.restated == {"BBB": "2021-01-04"}
    incremental = lake.rows()
    lake.build(full=True)
    same_rows(incremental, lake.rows(), rel=1e-14)


def test_a_dividend_after_the_last_bar_publishes_and_then_nothing_is_left_to_build(lake):
    before = lake.rows()
    land_action(lake, actions.DIVIDENDS, "AAA", "2024-05-14", 0.2, "2024-04-02")
    plan_now = plan(lake.store, load_registry(lake.store, TABLE), full=False)
    assert plan_now.mode == "incremental" and set(plan_now.restated) == {"AAA"}
    late = lake.build()
    # No published row reaches 2024-05-14: nothing recomputed, the values stay, and the
    # version records the dividend, so the next build has nothing to do.
    assert late.status == "published" and late.restated == {}
    same_rows(before, lake.rows())
    assert lake.build().status == "skipped"


def test_new_bars_and_a_late_split_in_one_run(lake):
    land_action(lake, actions.SPLITS, "AAA", SPLIT_DAY.isoformat(), 4, "2024-04-02")
    land_bars(lake, (dt.date(2024, 4, 1), dt.date(2024, 4, 12)), dt.date(2024, 4, 15))
    late = lake.build()
    assert late.mode == "incremental" and late.new_rows == 3 * 10
    assert late.restated == {"AAA": "2021-01-04"}
    incremental = lake.rows()
    lake.build(full=True)
    same_rows(incremental, lake.rows(), rel=1e-14)


def test_the_version_records_the_actions_it_applied_and_an_older_one_builds_full(lake):
    current = load_registry(lake.store, TABLE).current_version()
    assert set(current.actions) == {"BBB", "CCC"}
    assert current.actions["CCC"]["dividends_through"] == "2022-05-10"
    body = json.loads(lake.store.get_bytes(registry_key(TABLE)))
    for version in body["versions"]:
        del version["actions"]  # as a version published before they were recorded
    lake.store.put_bytes(registry_key(TABLE), json.dumps(body).encode())
    again = plan(lake.store, load_registry(lake.store, TABLE), full=False)
    assert again.mode == "full" and "splits and dividends" in again.reason


# -- restate.restated_symbols -------------------------------------------------------------


def frames(splits: list, dividends: list) -> dict[str, pd.DataFrame]:
    """Frames as actions.build_frames gives them, from (symbol, ex_date, value) rows."""

    def frame(rows: list, column: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "symbol": [r[0] for r in rows],
                "ex_date": pd.to_datetime([r[1] for r in rows]),
                column: [float(r[2]) for r in rows],
            }
        )

    return {
        "corporate_splits": frame(splits, "split_factor"),
        "corporate_dividends": frame(dividends, "amount"),
    }


SPLITS = [("X", "2020-06-01", 2)]
DIVIDENDS = [("X", "2020-03-01", 0.1), ("X", "2020-09-01", 0.1), ("Y", "2021-01-05", 1)]
FIRST = restate.FROM_FIRST_ROW


@pytest.mark.parametrize(
    ("splits", "dividends", "expected"),
    [
        (SPLITS, DIVIDENDS, {}),
        # A split new, changed or gone: the whole symbol.
        ([*SPLITS, ("Y", "2024-01-02", 3)], DIVIDENDS, {"Y": FIRST}),
        ([("X", "2020-06-01", 3)], DIVIDENDS, {"X": FIRST}),
        ([], DIVIDENDS, {"X": FIRST}),
        # Dividends after the last one applied: from the first of them (a symbol with none
        # before: from its first); any other change: the whole symbol.
        (
            SPLITS,
            [
                *DIVIDENDS,
                ("X", "2021-06-01", 0.2),
                ("X", "2021-03-01", 0.2),
                ("Z", "2022-02-02", 5),
            ],
            {"X": dt.date(2021, 3, 1), "Z": dt.date(2022, 2, 2)},
        ),
        (SPLITS, [("X", "2019-12-01", 0.1), *DIVIDENDS], {"X": FIRST}),
        (SPLITS, [("X", "2020-03-01", 0.1), ("X", "2020-09-01", 0.15), DIVIDENDS[2]], {"X": FIRST}),
        (SPLITS, DIVIDENDS[:2], {"Y": FIRST}),
    ],
)
def test_which_symbols_a_change_in_their_actions_restates(splits, dividends, expected):
    recorded = restate.applied_actions(frames(SPLITS, DIVIDENDS))
    assert restate.restated_symbols(recorded, frames(splits, dividends)) == expected


def test_a_damaged_split_object_stops_the_build_and_names_it(lake):
    """A split the build cannot read would restate its symbol without it: the build stops,
    names the object, and publishes nothing."""
    land_action(lake, actions.SPLITS, "AAA", SPLIT_DAY.isoformat(), 4, "2024-04-02")
    key = actions.SPLITS.key(dt.date(2024, 4, 2), "AAA")
    lake.store.put_bytes(key, b"\xff\xfe\x00garbled")
    published = load_registry(lake.store, TABLE).current
    before = lake.rows()

    with pytest.raises(MarketlakeError, match=r"raw/splits/ingest_date=2024-04-02/AAA\.csv"):
        lake.build()
    assert load_registry(lake.store, TABLE).current == published
    same_rows(before, lake.rows())
