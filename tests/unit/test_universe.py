"""The lake's own tickers and purges (lake/universe.py) and how the ingest state keeps them."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from marketlake.config import DEFAULT_TICKERS, WHOLE_MARKET, Settings
from marketlake.errors import ConfigError, MarketlakeError
from marketlake.lake import universe
from marketlake.lake.state import (
    STATE_KEY,
    IngestState,
    SymbolState,
    load_state,
    merge_state,
    save_state,
)

NOW = dt.datetime(2024, 7, 5, 12, 0, tzinfo=dt.timezone.utc)

# A state file as written before the lake kept its tickers: no universe, no purged.
OLD_STATE = {
    "version": 1,
    "lake_kind": "synthetic",
    "quota": {"date": None, "used": 0},
    "deferred": [],
    "newest_ingest_date": "2024-06-28",
    "rebuild_needed": False,
    "market_through": None,
    "actions_through": None,
    "plan_edge": None,
    "symbols": {"SPY": {"watermark": "2024-06-28", "source": "synthetic", "last_ingest": None}},
}


def test_an_old_state_file_without_tickers_reads_as_a_lake_that_has_none_recorded(lake_store):
    lake_store.put_bytes(STATE_KEY, json.dumps(OLD_STATE).encode())
    state = load_state(lake_store)
    assert state.universe is None
    assert state.purged == {}
    assert state.watermark("SPY") == dt.date(2024, 6, 28)


def test_tickers_and_purges_round_trip_through_the_store(lake_store):
    state = IngestState(universe=["QQQ", "SPY"], purged={"AMD": "2024-07-05T12:00:00+00:00"})
    save_state(lake_store, state)
    again = load_state(lake_store)
    assert again.universe == ["QQQ", "SPY"]
    assert again.purged == {"AMD": "2024-07-05T12:00:00+00:00"}
    body = json.loads(lake_store.get_bytes(STATE_KEY))
    assert body["universe"] == ["QQQ", "SPY"] and body["version"] == 1


@pytest.mark.parametrize(
    "field, value", [("universe", "SPY"), ("universe", [1]), ("purged", ["SPY"])]
)
def test_a_malformed_universe_or_purged_is_an_error_naming_the_state_file(lake_store, field, value):
    lake_store.put_bytes(STATE_KEY, json.dumps({**OLD_STATE, field: value}).encode())
    with pytest.raises(MarketlakeError, match=r"state/ingest_state\.json.*unreadable"):
        load_state(lake_store)


def test_a_tickers_change_merges_with_another_writers_watermarks():
    """`tickers add` and an ingest (the Lambda) write the state at once: neither is lost."""
    base = IngestState(universe=["SPY"]).body()
    mine = IngestState(universe=["QQQ", "SPY"]).body()
    theirs = IngestState(universe=["SPY"], symbols={"SPY": SymbolState("2024-07-03")}).body()
    merged = merge_state(theirs, base, mine)
    assert merged["universe"] == ["QQQ", "SPY"]
    assert merged["symbols"]["SPY"]["watermark"] == "2024-07-03"


def settings(**overrides) -> Settings:
    return Settings.from_env({}, **overrides)


def test_given_tickers_apply_to_the_run_and_set_only_a_missing_universe():
    state = IngestState()
    given = settings(tickers="SPY,QQQ")
    assert given.tickers_given
    assert universe.run_tickers(given, state) == ("SPY", "QQQ")
    universe.claim(state, ("SPY", "QQQ"))
    assert state.universe == ["SPY", "QQQ"]
    assert universe.run_tickers(settings(tickers="NVDA"), state) == ("NVDA",)
    universe.claim(state, ("NVDA",))
    assert state.universe == ["SPY", "QQQ"]


def test_without_given_tickers_a_run_fetches_the_lakes_and_the_defaults_only_in_a_new_lake():
    plain = settings()
    assert not plain.tickers_given
    assert universe.run_tickers(plain, IngestState()) == DEFAULT_TICKERS
    assert universe.run_tickers(plain, IngestState(universe=["QQQ", "SPY"])) == ("QQQ", "SPY")
    from_env = Settings.from_env({"MARKETLAKE_TICKERS": "AMD"})
    assert from_env.tickers_given
    assert universe.run_tickers(from_env, IngestState(universe=["SPY"])) == ("AMD",)


def test_a_lake_from_before_the_universe_follows_what_it_holds():
    held = IngestState(
        symbols={"SPY": SymbolState("2024-06-28"), "BAD": SymbolState(None, invalid="no")}
    )
    assert universe.universe(held) == ["SPY"]
    assert universe.universe(IngestState(market_through="2024-06-28")) == [WHOLE_MARKET]
    assert universe.universe(IngestState()) is None


def test_a_whole_market_universe_needs_polygon_in_one_line():
    with pytest.raises(ConfigError, match="polygon") as exc:
        universe.run_tickers(settings(), IngestState(universe=[WHOLE_MARKET]))
    assert "\n" not in str(exc.value)


def test_add_and_remove_change_the_universe():
    state = IngestState(universe=["SPY"])
    assert universe.add(state, ("QQQ", "SPY")) == [
        "QQQ: added",
        "SPY: already in the lake's tickers",
    ]
    assert state.universe == ["QQQ", "SPY"]
    universe.remove(state, ("QQQ",), purge=False, now=NOW)
    assert state.universe == ["SPY"] and state.purged == {}


def test_purge_records_the_time_and_add_brings_the_symbol_back():
    state = IngestState(universe=["QQQ", "SPY"], symbols={"QQQ": SymbolState("2024-06-28")})
    universe.remove(state, ("QQQ",), purge=True, now=NOW)
    assert state.universe == ["SPY"]
    assert state.purged == {"QQQ": "2024-07-05T12:00:00+00:00"}
    assert state.watermark("QQQ") == dt.date(2024, 6, 28)  # its watermark stays
    lines = universe.add(state, ("QQQ",))
    assert state.purged == {} and state.universe == ["QQQ", "SPY"]
    assert lines[0].startswith("QQQ: no longer purged")


def test_removing_a_symbol_the_lake_does_not_hold_changes_nothing():
    state = IngestState(universe=["SPY", "QQQ"])
    with pytest.raises(MarketlakeError, match="FOO: not in the lake"):
        universe.remove(state, ("QQQ", "FOO"), purge=True, now=NOW)
    assert state.universe == ["SPY", "QQQ"] and state.purged == {}


def test_the_last_ticker_cannot_be_removed():
    with pytest.raises(MarketlakeError, match="no tickers to fetch"):
        universe.remove(IngestState(universe=["SPY"]), ("SPY",), purge=False, now=NOW)


def test_a_whole_market_lake_purges_a_symbol_but_does_not_stop_fetching_it():
    state = IngestState(universe=[WHOLE_MARKET], symbols={"KIM": SymbolState("2024-06-28")})
    with pytest.raises(MarketlakeError, match="whole market"):
        universe.remove(state, ("KIM",), purge=False, now=NOW)
    universe.remove(state, ("KIM",), purge=True, now=NOW)
    assert state.universe == [WHOLE_MARKET] and "KIM" in state.purged
    with pytest.raises(MarketlakeError, match="whole market"):
        universe.add(state, ("NVDA",))
    universe.add(state, ("KIM",))
    assert state.purged == {}


def test_the_purged_relation_binds_into_the_check_as_athena_reads_it():
    import sqlglot

    from marketlake.wap.publish import table_checks

    check = next(c for c in table_checks(["QQQ", "BRK.B"]) if c.name == "no_lost_history")
    tree = sqlglot.parse_one(check.sql, read="athena")
    assert {t.name for t in tree.find_all(sqlglot.exp.Table)} == {
        "published_daily_prices",
        "staging_daily_prices",
    }
    assert "'BRK.B'" in check.sql and "'QQQ'" in check.sql
