"""Splits and dividends through run_ingest: the loopback Alpha Vantage answers SPLITS and
DIVIDENDS in the vendor's shapes (and refuses them as it does), the synthetic market has
its own, and both land under raw/splits/ and raw/dividends/ like the bars."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from av_fake_server import (
    ERROR_UNKNOWN_FUNCTION,
    INFO_PREMIUM_ENDPOINT,
    KEY_ECHO,
    ByFunction,
    BySymbol,
    FakeAlphaVantage,
    Reply,
    bars_on,
    daily_reply,
    dividends_json,
    earnings_json,
    splits_json,
)

from marketlake.config import Settings
from marketlake.ingest.ratelimit import SimulatedClock
from marketlake.ingest.runner import FETCHED, run_ingest
from marketlake.lake import actions
from marketlake.lake.state import load_state
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore
from recorders import Observer

NY = ZoneInfo("America/New_York")
KEY = "KEYzq81x7TEST"
DAY1 = dt.datetime(2024, 7, 3, 18, 0, tzinfo=NY)
S1 = dt.date(2024, 7, 3)
BARS = bars_on(sessions_between(dt.date(2024, 2, 1), S1)[-100:])
AAA_SPLITS = [(dt.date(2024, 6, 10), 10.0), (dt.date(2019, 3, 4), 0.25)]
AAA_DIVIDENDS = [(dt.date(2024, 5, 10), 0.24), (dt.date(2024, 2, 9), 0.24)]


@pytest.fixture
def server():
    with FakeAlphaVantage() as fake:
        fake.default = ByFunction(
            daily_reply(BARS),
            {
                "SPLITS": lambda q: Reply(
                    splits_json(q["symbol"], AAA_SPLITS if q["symbol"] == "AAA" else [])
                ),
                "DIVIDENDS": lambda q: Reply(
                    dividends_json(q["symbol"], AAA_DIVIDENDS if q["symbol"] == "AAA" else [])
                ),
                "EARNINGS": lambda q: Reply(earnings_json(q["symbol"], [])),
            },
        )
        yield fake


def run(server, home, tickers="AAA,BBB", now=DAY1, observer=None, as_of=DAY1, **env):
    settings = Settings.from_env(
        {
            "ALPHAVANTAGE_API_KEY": KEY,
            "ALPHAVANTAGE_BASE_URL": server.url,
            "ALPHAVANTAGE_BACKOFF_SECONDS": "0.01",
            "ALPHAVANTAGE_MAX_RETRIES": "1",
            "MARKETLAKE_TICKERS": tickers,
            **env,
        },
        home=home,
    )
    clock = SimulatedClock(1000.0)
    return run_ingest(
        settings,
        LocalStore(home),
        None,
        as_of,
        observer=observer or Observer(),
        now=lambda: now.astimezone(dt.timezone.utc),
        clock=clock.now,
        sleep=clock.sleep,
    )


def functions(server) -> list[tuple[str, str]]:
    return [(q["function"], q["symbol"]) for q in server.requests]


def test_splits_and_dividends_land_after_the_bars_in_the_vendors_shapes(server, tmp_path):
    report = run(server, tmp_path / "lake")
    assert [r.status for r in report.results] == [FETCHED, FETCHED]
    # Bars first, for every symbol; then two requests per symbol (then its earnings,
    # tests/integration/test_ingest_earnings.py).
    assert functions(server) == [
        ("TIME_SERIES_DAILY", "AAA"),
        ("TIME_SERIES_DAILY", "BBB"),
        ("SPLITS", "AAA"),
        ("DIVIDENDS", "AAA"),
        ("SPLITS", "BBB"),
        ("DIVIDENDS", "BBB"),
        ("EARNINGS", "AAA"),
        ("EARNINGS", "BBB"),
    ]
    store = LocalStore(tmp_path / "lake")
    key = "raw/splits/ingest_date=2024-07-03/AAA.csv"
    text = store.get_bytes(key).decode()
    assert text.startswith("symbol,effective_date,split_factor,source,ingested_at\r\n")
    splits = actions.current(store, actions.SPLITS)
    assert [(d, v) for d, v in zip(splits["date"], splits["value"])] == sorted(AAA_SPLITS)
    dividends = actions.current(store, actions.DIVIDENDS)
    assert list(dividends["value"]) == [0.24, 0.24]
    assert report.actions_landed == {"splits": 2, "dividends": 2}
    assert load_state(store).symbols["AAA"].actions_on == "2024-07-03"
    assert KEY not in "".join(
        p.read_text(errors="replace") for p in (tmp_path / "lake").rglob("*") if p.is_file()
    )


def test_they_are_asked_again_only_after_the_interval_and_land_only_what_changed(server, tmp_path):
    run(server, tmp_path / "lake")
    server.requests.clear()
    run(server, tmp_path / "lake", now=DAY1 + dt.timedelta(days=6))
    assert functions(server) == []  # bars up to date, actions asked 6 days ago
    server.requests.clear()
    AAA_SPLITS.append((dt.date(2024, 7, 1), 2.0))  # a split the vendor learnt of since
    try:
        report = run(server, tmp_path / "lake", now=DAY1 + dt.timedelta(days=7))
    finally:
        AAA_SPLITS.pop()
    assert ("SPLITS", "AAA") in functions(server)
    assert report.actions_landed == {"splits": 1, "dividends": 0}


def test_the_interval_is_a_setting_and_zero_turns_the_feature_off(server, tmp_path):
    run(server, tmp_path / "lake", MARKETLAKE_ACTIONS_EVERY_DAYS="0")
    assert {f for f, _ in functions(server)} == {"TIME_SERIES_DAILY"}


def test_when_the_quota_is_short_bars_come_first_and_actions_wait(server, tmp_path):
    report = run(server, tmp_path / "lake", ALPHAVANTAGE_CALLS_PER_DAY="3")
    assert [r.status for r in report.results] == [FETCHED, FETCHED]
    assert functions(server)[2:] == [("SPLITS", "AAA")]
    # The one request left went to AAA's splits; the symbol waits whole for the next run.
    assert report.actions_waiting == ["AAA", "BBB"]
    state = load_state(LocalStore(tmp_path / "lake"))
    assert state.symbols["AAA"].actions_on is None and state.deferred == []


@pytest.mark.parametrize("refusal", [INFO_PREMIUM_ENDPOINT, ERROR_UNKNOWN_FUNCTION])
def test_a_premium_or_unknown_function_refusal_turns_the_feature_off_once(
    server, tmp_path, refusal
):
    server.default.functions["SPLITS"] = Reply(refusal)
    observer = Observer()
    report = run(server, tmp_path / "lake", observer=observer)
    assert [r.status for r in report.results] == [FETCHED, FETCHED]
    assert [f for f, _ in functions(server)].count("SPLITS") == 1
    assert "DIVIDENDS" not in [f for f, _ in functions(server)]
    said = [m for k, m in observer.events if k == "actions"]
    assert len(said) == 1 and "off for this run" in said[0]
    assert report.actions_off
    assert not list((tmp_path / "lake").glob("raw/splits/*/*.csv"))
    assert load_state(LocalStore(tmp_path / "lake")).symbols["AAA"].actions_on is None


def test_a_refusal_that_echoes_the_key_is_redacted(server, tmp_path):
    echo = {"Information": f"This is a premium endpoint for the key {KEY_ECHO}."}
    server.default.functions["SPLITS"] = Reply(echo)
    observer = Observer()
    report = run(server, tmp_path / "lake", observer=observer)
    assert KEY not in report.actions_off and "***" in report.actions_off
    assert all(KEY not in m for _, m in observer.events)


def test_an_unusable_row_goes_to_quarantine_and_the_rest_lands(server, tmp_path):
    body = splits_json("AAA", AAA_SPLITS)
    body["data"].append({"effective_date": "None", "split_factor": "2.0000"})
    server.default.functions["SPLITS"] = BySymbol(
        {"AAA": Reply(body)}, fallback=Reply(splits_json("BBB", []))
    )
    run(server, tmp_path / "lake")
    quarantined = list((tmp_path / "lake").glob("quarantine/splits/*/AAA.*.csv"))
    assert len(quarantined) == 1 and "is not a date" in quarantined[0].read_text()
    assert len(actions.current(LocalStore(tmp_path / "lake"), actions.SPLITS)) == 2


def test_the_synthetic_market_has_a_10_to_1_and_a_reverse_split_and_quarterly_dividends():
    provider = SyntheticProvider(seed=42)
    until = dt.date(2026, 11, 27)
    factors = {
        s: list(provider.fetch_actions("splits", s, until)["value"])
        for s in ("NVDA", "AVGO", "AMAT", "TXN", "INTC")
    }
    assert 10.0 in factors["AMAT"] and 0.25 in factors["INTC"]
    payers = [
        s
        for s in ("NVDA", "AMD", "INTC", "TSM", "AVGO", "QCOM", "TXN", "MU", "ASML", "AMAT")
        if len(provider.fetch_actions("dividends", s, until))
    ]
    assert payers
    one = provider.fetch_actions("dividends", payers[0], dt.date(2025, 12, 31))
    in_2025 = one[[d.year == 2025 for d in one["date"]]]
    assert [d.month for d in in_2025["date"]] == [2, 5, 8, 11]
    # The traded close drops about 90% across the 10:1 split; the adjusted path does not.
    bars = provider.fetch_daily("AMAT", dt.date(2025, 6, 13), dt.date(2025, 6, 16))
    ratio = bars["close"].iloc[1] / bars["close"].iloc[0]
    assert 0.07 < ratio < 0.13


def test_synthetic_ingest_lands_splits_and_dividends(tmp_path):
    settings = Settings.from_env({"MARKETLAKE_TICKERS": "AMAT,INTC"}, home=tmp_path / "lake")
    now = dt.datetime(2026, 11, 27, 18, 0, tzinfo=NY)
    report = run_ingest(settings, LocalStore(settings.home), None, now, now=lambda: now)
    assert report.actions_asked == ["AMAT", "INTC"]
    splits = actions.current(LocalStore(settings.home), actions.SPLITS)
    assert set(zip(splits["symbol"], splits["value"])) == {("AMAT", 10.0), ("INTC", 0.25)}
    frame = pd.read_csv(next((tmp_path / "lake").glob("raw/splits/*/AMAT.csv")))
    assert list(frame["source"]) == ["synthetic"]


def test_the_build_adjusts_the_bars_with_the_splits_the_lake_holds(tmp_path):
    from marketlake.engines.duckdb import DuckDBEngine
    from marketlake.wap.pipeline import run_build

    settings = Settings.from_env(
        {"MARKETLAKE_TICKERS": "AMAT", "MARKETLAKE_HISTORY_DAYS": "120"}, home=tmp_path / "lake"
    )
    now = dt.datetime(2025, 7, 31, 18, 0, tzinfo=NY)
    store = LocalStore(settings.home)
    run_ingest(settings, store, None, now, now=lambda: now)
    with DuckDBEngine(settings.home) as engine:
        run_build(settings, store, engine, now=lambda: now)
        frame = engine.fetch_df(
            "SELECT trade_date, close, adj_factor, adj_close, price_change_pct, dividend "
            "FROM daily_prices ORDER BY trade_date"
        )
    at = frame.index[frame["trade_date"] == pd.Timestamp("2025-06-16")][0]
    # The product is exp(sum(ln)): 10 within a few ulps.
    assert list(frame["adj_factor"][:at]) == pytest.approx([10.0] * at, rel=1e-15)
    assert set(frame["adj_factor"][at:]) == {1.0}
    assert frame["close"][at] / frame["close"][at - 1] < 0.15  # traded: the 10:1 drop
    assert abs(frame["price_change_pct"][at]) < 15  # adjusted: an ordinary day
    assert frame["adj_close"][at - 1] == pytest.approx(frame["close"][at - 1] / 10)


def test_a_declared_dividend_not_yet_ex_is_held_back_and_reported(server, tmp_path):
    """Alpha Vantage lists declared ex-dates ahead: such a row is not landed (no build can
    apply it early) and the report says how many were held back; the first fetch after its
    date lands it."""
    AAA_DIVIDENDS.append((dt.date(2024, 8, 9), 0.25))  # declared, ex a month ahead
    try:
        report = run(server, tmp_path / "lake")
        assert report.actions_landed == {"splits": 2, "dividends": 2}
        assert report.actions_held == {"dividends": 1}
        dividends = actions.current(LocalStore(tmp_path / "lake"), actions.DIVIDENDS)
        assert dt.date(2024, 8, 9) not in set(dividends["date"])
        moment = dt.datetime(2024, 8, 12, 18, 0, tzinfo=NY)
        later = run(server, tmp_path / "lake", now=moment, as_of=moment)
    finally:
        AAA_DIVIDENDS.pop()
    assert later.actions_landed == {"splits": 0, "dividends": 1} and later.actions_held == {}
    dividends = actions.current(LocalStore(tmp_path / "lake"), actions.DIVIDENDS)
    assert dt.date(2024, 8, 9) in set(dividends["date"])


def test_a_vendor_answer_with_two_amounts_for_one_date_is_quarantined(server, tmp_path):
    AAA_DIVIDENDS.append((dt.date(2024, 5, 10), 0.5))  # beside 0.24 on the same date
    try:
        report = run(server, tmp_path / "lake")
    finally:
        AAA_DIVIDENDS.pop()
    assert report.actions_landed == {"splits": 2, "dividends": 1}
    assert report.actions_quarantined == {"dividends": 2}
    assert list((tmp_path / "lake").glob("quarantine/dividends/*/AAA.*.csv"))
