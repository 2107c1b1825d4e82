"""Ingest from a whole-market provider (ingest.market): the fewest requests, one raw object
per session, oldest first, the plan's edge, deadlines, junk, and the build reading it all.

The provider here is an in-memory market with Polygon's behaviour (grouped daily, per
ticker, market-wide splits and dividends, a plan that refuses old dates); the HTTP client
itself is tested against a loopback stand-in in tests/integration/test_polygon_http.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pandas as pd
import pytest

from marketlake.config import Settings
from marketlake.ingest import market
from marketlake.ingest.runner import run_ingest
from marketlake.lake import raw
from marketlake.lake.state import load_state
from marketlake.providers.base import BAR_COLUMNS, REJECTED_COLUMNS, BeyondPlan, Retriable
from marketlake.sessions import EASTERN, sessions_between
from marketlake.storage import LocalStore

# A Thursday after the close; the window below holds a week of sessions before it.
AS_OF = dt.datetime(2024, 6, 13, 23, 0, tzinfo=EASTERN)
NEXT_DAY = dt.datetime(2024, 6, 14, 23, 0, tzinfo=EASTERN)


@dataclasses.dataclass
class Day:
    session: dt.date
    bars: pd.DataFrame
    rejected: pd.DataFrame
    payload: str = ""


class Market:
    """Polygon as the ingest sees it, in memory: every ticker's bar of any session."""

    name = "polygon"
    resends_history = False
    fetch_actions = None

    def __init__(self, tickers, edge: dt.date | None = None, splits=(), dividends=()):
        self.tickers = list(tickers)
        self.edge = edge  # the plan's first day: older asks are refused (403)
        self.splits = list(splits)  # (ticker, date, factor)
        self.dividends = list(dividends)  # (ticker, date, amount)
        self.asked: list[tuple] = []
        self.fail: dict[dt.date, Exception] = {}
        self.junk: dict[dt.date, pd.DataFrame] = {}
        self.last_rejected = pd.DataFrame(columns=REJECTED_COLUMNS)

    @property
    def requests_made(self) -> int:
        return len(self.asked)

    def bar(self, ticker: str, day: dt.date) -> tuple:
        seed = sum(map(ord, ticker)) * 1000 + day.toordinal()
        close = 50 + (seed % 997) / 10
        return (day, close - 0.5, close + 1.0, close - 1.0, close, 1000 + seed % 5000)

    def _refuse(self, first: dt.date) -> None:
        if self.edge is not None and first < self.edge:
            raise BeyondPlan("Your plan doesn't include this data timeframe.", first)

    def fetch_grouped(self, session: dt.date) -> Day:
        self.asked.append(("grouped", session))
        self._refuse(session)
        if session in self.fail:
            raise self.fail.pop(session)
        rows = [(t, *self.bar(t, session)) for t in self.tickers]
        bars = pd.DataFrame(rows, columns=["symbol", *BAR_COLUMNS])
        rejected = self.junk.get(session, pd.DataFrame(columns=["symbol", *REJECTED_COLUMNS]))
        return Day(session, bars, rejected)

    def fetch_daily(self, symbol: str, since: dt.date | None, until: dt.date) -> pd.DataFrame:
        self.asked.append(("ticker", symbol, since))
        self._refuse(since)
        rows = [self.bar(symbol, d) for d in sessions_between(since, until)]
        return pd.DataFrame(rows, columns=BAR_COLUMNS)

    def fetch_market_actions(self, kind: str, since: dt.date, until: dt.date) -> pd.DataFrame:
        self.asked.append((kind, since))
        rows = self.splits if kind == "splits" else self.dividends
        kept = [(t, d.isoformat(), v) for t, d, v in rows if since <= d <= until]
        return pd.DataFrame(kept, columns=["symbol", "date", "value"])


class CountingStore(LocalStore):
    """A local lake that counts the objects written (each one an S3 PUT on the real lake)."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.puts: list[str] = []

    def put_bytes(self, key, data, *args, **kwargs):
        # Conditional writes (update_bytes) write through here too.
        self.puts.append(key)
        return super().put_bytes(key, data, *args, **kwargs)


def settings_for(tmp_path, tickers="ALL", days=10, **extra) -> Settings:
    env = {
        "MARKETLAKE_PROVIDER": "polygon",
        "POLYGON_API_KEY": "k",
        "MARKETLAKE_TICKERS": tickers,
        "MARKETLAKE_HISTORY_DAYS": str(days),
    }
    return Settings.from_env(env, home=tmp_path / "lake", **extra)


TICKERS = [f"T{n:03d}" for n in range(300)] + ["BRK.B", "KIMpL"]


# -- the plan ----------------------------------------------------------------------------


def brute_force(gaps: dict[str, int]) -> int:
    """The cheapest cover, by trying every number of grouped sessions."""
    most = max(gaps.values(), default=0)
    return min(k + sum(1 for g in gaps.values() if g > k) for k in range(most + 1))


def test_the_plan_takes_the_cheaper_of_grouped_and_per_ticker_or_a_mix():
    sessions = sessions_between(dt.date(2023, 6, 1), dt.date(2024, 6, 13))
    year = len(sessions)
    # A 6-ticker watchlist's first year: 6 per-ticker requests, not 250 grouped.
    first = market.plan_requests({f"S{i}": year for i in range(6)}, sessions)
    assert (first.requests, first.grouped) == (6, [])
    # The next weekday: 1 grouped request for any number of tickers.
    weekday = market.plan_requests({f"S{i}": 1 for i in range(500)}, sessions)
    assert (weekday.grouped, weekday.per_ticker) == ([sessions[-1]], [])
    # A mix: three tickers a day behind, one new: 1 grouped + 1 per-ticker.
    mixed = market.plan_requests({"A": 1, "B": 1, "C": 1, "NEW": year}, sessions)
    assert (mixed.grouped, mixed.per_ticker) == ([sessions[-1]], ["NEW"])


def test_the_plan_is_never_dearer_than_the_cheapest_cover():
    rng = random.Random(5)
    sessions = sessions_between(dt.date(2024, 1, 2), dt.date(2024, 6, 13))
    for _ in range(300):
        gaps = {
            f"S{i}": rng.choice([1, 2, 3, 5, 40, len(sessions)]) for i in range(rng.randint(1, 30))
        }
        plan = market.plan_requests(gaps, sessions)
        assert plan.requests == brute_force(gaps)
        # Every symbol is served: grouped covers its gap, or it is asked alone.
        for symbol, gap in gaps.items():
            assert symbol in plan.per_ticker or gap <= len(plan.grouped)
        assert plan.grouped == sessions[len(sessions) - len(plan.grouped) :]


def test_the_plan_says_its_requests_and_time_at_the_pace():
    plan = market.RequestPlan([dt.date(2024, 6, d) for d in (10, 11, 12, 13)] * 25, ["NVDA"])
    text = market.describe(plan, 5)
    assert text.startswith("103 requests: 100 grouped-daily")
    assert "1 per-ticker" in text and "about 20 min at 5 a minute" in text
    assert "unpaced" in market.describe(plan, float("inf"))


# -- the whole market --------------------------------------------------------------------


def test_a_whole_market_backfill_lands_one_object_per_session_oldest_first(tmp_path):
    provider = Market(TICKERS)
    store = LocalStore(tmp_path / "lake")
    settings = settings_for(tmp_path)
    report = run_ingest(settings, store, provider, AS_OF)
    window = sessions_between(AS_OF.date() - dt.timedelta(days=10), AS_OF.date())
    grouped = [a[1] for a in provider.asked if a[0] == "grouped"]
    assert grouped == window  # oldest first, one request each
    keys = sorted(i.key for i in store.list_objects(raw.RAW_PREFIX))
    assert keys == [raw.market_key(AS_OF.date(), s) for s in window]
    frame = raw.read_csv(store.get_bytes(keys[0]))
    assert set(frame["symbol"]) == set(TICKERS)  # spelled as the vendor does: BRK.B, KIMpL
    assert report.new_bars == len(TICKERS) * len(window)
    state = load_state(store)
    assert state.market_through == window[-1].isoformat()
    assert state.watermark("KIMpL") == window[-1]


def test_the_next_weekday_is_one_bar_request_and_at_most_ten_writes(tmp_path):
    provider = Market(TICKERS)
    store = CountingStore(tmp_path / "lake")
    settings = settings_for(tmp_path)
    run_ingest(settings, store, provider, AS_OF)
    provider.asked.clear()
    store.puts.clear()
    report = run_ingest(settings, store, provider, NEXT_DAY)
    bar_requests = [a for a in provider.asked if a[0] in ("grouped", "ticker")]
    assert bar_requests == [("grouped", NEXT_DAY.date())]
    assert report.new_bars == len(TICKERS)
    assert len(store.puts) <= 10, store.puts
    assert sum(1 for k in store.puts if k.startswith(raw.RAW_PREFIX)) == 1


def test_a_watchlist_first_year_is_one_request_per_ticker(tmp_path):
    provider = Market(TICKERS)
    store = LocalStore(tmp_path / "lake")
    settings = settings_for(tmp_path, tickers="T001,T002,T003,T004,T005,BRK.B", days=365)
    run_ingest(settings, store, provider, AS_OF)
    bar_requests = [a for a in provider.asked if a[0] in ("grouped", "ticker")]
    assert [a[0] for a in bar_requests] == ["ticker"] * 6
    provider.asked.clear()
    report = run_ingest(settings, store, provider, NEXT_DAY)
    assert [a for a in provider.asked if a[0] in ("grouped", "ticker")] == [
        ("grouped", NEXT_DAY.date())
    ]
    # Only the watchlist lands from the grouped answer.
    frame = raw.read_csv(store.get_bytes(raw.market_key(NEXT_DAY.date(), NEXT_DAY.date())))
    assert sorted(frame["symbol"]) == sorted(["T001", "T002", "T003", "T004", "T005", "BRK.B"])
    assert report.new_bars == 6


def test_a_run_out_of_time_leaves_the_newer_sessions_and_the_next_run_fills_them(tmp_path):
    provider = Market(TICKERS[:20])
    store = LocalStore(tmp_path / "lake")
    settings = settings_for(tmp_path)
    budget = iter([False, False, True])
    report = run_ingest(settings, store, provider, AS_OF, out_of_time=lambda _: next(budget, True))
    window = sessions_between(AS_OF.date() - dt.timedelta(days=10), AS_OF.date())
    assert report.market_waiting == [s.isoformat() for s in window[2:]]
    assert load_state(store).market_through == window[1].isoformat()
    provider.asked.clear()
    run_ingest(settings, store, provider, AS_OF)
    assert [a[1] for a in provider.asked if a[0] == "grouped"] == window[2:]
    assert load_state(store).market_through == window[-1].isoformat()


def test_a_failed_session_stops_the_newer_ones_so_no_hole_opens(tmp_path):
    provider = Market(TICKERS[:20])
    window = sessions_between(AS_OF.date() - dt.timedelta(days=10), AS_OF.date())
    provider.fail[window[3]] = Retriable("HTTP 502 after 4 attempts")
    store = LocalStore(tmp_path / "lake")
    report = run_ingest(settings_for(tmp_path), store, provider, AS_OF)
    assert report.market_failed and "502" in report.market_why
    assert load_state(store).market_through == window[2].isoformat()
    assert [a[1] for a in provider.asked if a[0] == "grouped"] == window[:4]


def test_history_beyond_the_plan_lands_from_its_edge_and_says_where(tmp_path):
    window = sessions_between(AS_OF.date() - dt.timedelta(days=30), AS_OF.date())
    edge = window[9]
    provider = Market(TICKERS[:10], edge=edge)
    store = LocalStore(tmp_path / "lake")
    report = run_ingest(settings_for(tmp_path, days=30), store, provider, AS_OF)
    assert f"starts at {edge}" in report.plan_history
    state = load_state(store)
    assert state.plan_edge == edge.isoformat()
    assert state.market_through == window[-1].isoformat()
    landed = sorted(i.key for i in store.list_objects(raw.RAW_PREFIX))
    assert landed == [raw.market_key(AS_OF.date(), s) for s in window[9:]]
    grouped = [a[1] for a in provider.asked if a[0] == "grouped"]
    # The refused day, a bisection (about log2 of the window), then the rest once each.
    assert len(grouped) <= 1 + 5 + len(window[9:])
    assert all(grouped.count(s) == 1 for s in window[10:])


def test_a_watchlist_ticker_beyond_the_plan_lands_from_the_edge(tmp_path):
    window = sessions_between(AS_OF.date() - dt.timedelta(days=60), AS_OF.date())
    edge = window[20]
    provider = Market(TICKERS[:10], edge=edge)
    store = LocalStore(tmp_path / "lake")
    report = run_ingest(settings_for(tmp_path, tickers="T001", days=60), store, provider, AS_OF)
    assert report.results[0].first_date == edge and report.results[0].new_bars == len(window) - 20
    assert load_state(store).plan_edge == edge.isoformat()
    asked = [a for a in provider.asked if a[0] == "ticker"]
    assert len(asked) <= 1 + 6


def test_junk_tickers_and_impossible_bars_go_to_quarantine(tmp_path):
    provider = Market(TICKERS[:50])
    day = AS_OF.date()
    junk = pd.DataFrame(
        [["\x00\x9b\x1b", str(day), "1", "2", "0.5", "1.5", "10", "ticker has control characters"]],
        columns=["symbol", *REJECTED_COLUMNS],
    )
    provider.junk[day] = junk
    original = provider.fetch_grouped

    def with_impossible(session):
        answer = original(session)
        if session == day:
            answer.bars.loc[0, "high"] = answer.bars.loc[0, "low"] - 5  # high below low
        return answer

    provider.fetch_grouped = with_impossible
    store = LocalStore(tmp_path / "lake")
    report = run_ingest(settings_for(tmp_path, days=1), store, provider, AS_OF)
    assert report.quarantined == 2
    held = [i.key for i in store.list_objects("quarantine/daily_prices/")]
    assert len(held) == 1 and raw.MARKET_OBJECT in held[0]
    body = store.get_bytes(held[0]).decode()
    assert "control characters" in body and "high is below" in body
    frame = raw.read_csv(store.get_bytes(raw.market_key(day, day)))
    assert len(frame) == 49 and "T000" not in set(frame["symbol"])


def test_splits_and_dividends_are_asked_market_wide_from_the_last_day_asked(tmp_path):
    window = sessions_between(AS_OF.date() - dt.timedelta(days=10), AS_OF.date())
    provider = Market(
        TICKERS[:20],
        splits=[("T001", window[3], 4.0), ("NOTHELD", window[3], 2.0)],
        dividends=[("T002", window[5], 0.25), ("T003", NEXT_DAY.date(), 0.5)],
    )
    store = LocalStore(tmp_path / "lake")
    settings = settings_for(tmp_path, tickers="T001,T002,T003")
    report = run_ingest(settings, store, provider, AS_OF)
    assert ("splits", window[0]) in provider.asked and ("dividends", window[0]) in provider.asked
    assert report.actions_landed == {"splits": 1, "dividends": 1}
    from marketlake.lake import actions

    splits = actions.current(store, actions.SPLITS)
    assert list(splits["symbol"]) == ["T001"] and list(splits["value"]) == [4.0]
    assert load_state(store).actions_through == AS_OF.date().isoformat()
    provider.asked.clear()
    report = run_ingest(settings, store, provider, NEXT_DAY)
    assert ("dividends", AS_OF.date()) in provider.asked  # from the last day asked
    assert report.actions_landed == {"splits": 0, "dividends": 1}


def test_tickers_all_is_refused_for_alpha_vantage():
    from marketlake.errors import ConfigError

    env = {"ALPHAVANTAGE_API_KEY": "k", "MARKETLAKE_TICKERS": "ALL"}
    with pytest.raises(ConfigError, match=r"--tickers ALL .*needs the polygon provider"):
        Settings.from_env(env)
    # Allstate alone is a list of one.
    assert Settings.from_env({**env, "MARKETLAKE_TICKERS": "ALL,"}).tickers == ("ALL",)


@pytest.mark.parametrize("count", [1, 3])
def test_a_second_run_the_same_day_merges_into_the_sessions_object(tmp_path, count):
    provider = Market(TICKERS[:count])
    store = LocalStore(tmp_path / "lake")
    settings = settings_for(tmp_path, days=1)
    run_ingest(settings, store, provider, AS_OF)
    provider.tickers = TICKERS[: count + 2]  # two listings appear in a corrected answer
    report = run_ingest(settings, store, provider, AS_OF, refetch_days=[AS_OF.date()])
    frame = raw.read_csv(store.get_bytes(raw.market_key(AS_OF.date(), AS_OF.date())))
    assert sorted(frame["symbol"]) == sorted(TICKERS[: count + 2])
    assert report.new_bars == count + 2


# -- the build reads it ------------------------------------------------------------------


def test_the_build_reads_market_objects_and_a_damaged_one_names_its_day(tmp_path):
    from marketlake.engines.duckdb import DuckDBEngine
    from marketlake.errors import MarketlakeError
    from marketlake.wap.pipeline import run_build

    window = sessions_between(AS_OF.date() - dt.timedelta(days=10), AS_OF.date())
    provider = Market(TICKERS[:30], splits=[("T001", window[4], 2.0)])
    lake = tmp_path / "lake"
    store = LocalStore(lake)
    settings = settings_for(tmp_path)
    run_ingest(settings, store, provider, AS_OF)
    with DuckDBEngine(lake) as engine:
        run_build(settings, store, engine, full=True, now=lambda: AS_OF)
        built = engine.fetch_df("SELECT symbol, trade_date, close, adj_close FROM daily_prices")
    assert len(built) == 30 * len(window)
    t001 = built[built["symbol"] == "T001"].sort_values("trade_date")
    before = t001[t001["trade_date"] < pd.Timestamp(window[4])]
    assert (before["adj_close"] == before["close"] / 2).all()  # the split was applied

    # A market object that lost rows blocks the next build, naming the day to ask again.
    key = raw.market_key(AS_OF.date(), window[6])
    data = store.get_bytes(key)
    truncated = b"".join(data.splitlines(keepends=True)[:-3])
    store.put_bytes(key, truncated)
    with DuckDBEngine(lake) as engine, pytest.raises(MarketlakeError) as blocked:
        run_build(settings, store, engine, full=True, now=lambda: AS_OF)
    assert key in str(blocked.value)
    assert f"marketlake ingest --refetch-days {window[6]}" in str(blocked.value)

    # The remedy: the day asked again, the damaged object set aside, the build goes on.
    provider.asked.clear()
    later = AS_OF + dt.timedelta(hours=1)
    run_ingest(settings, store, provider, later, refetch_days=[window[6]])
    assert [a for a in provider.asked if a[0] == "grouped"] == [("grouped", window[6])]
    assert store.get_bytes("quarantine/damaged/" + key) == truncated
    with DuckDBEngine(lake) as engine:
        run_build(settings, store, engine, full=True, now=lambda: later)
        rebuilt = engine.fetch_df("SELECT count(*) AS n FROM daily_prices")
    assert int(rebuilt["n"][0]) == 30 * len(window)


def test_a_long_first_ask_of_actions_goes_a_month_at_a_time_and_resumes(tmp_path):
    from marketlake.ingest.market_actions import ACTIONS_CHUNK_DAYS

    provider = Market(TICKERS[:5], dividends=[("T001", dt.date(2023, 9, 15), 0.3)])
    store = LocalStore(tmp_path / "lake")
    settings = settings_for(tmp_path, days=400)
    asked = []

    def out_of_time(_wait: float) -> bool:
        # The bars come first; time runs out once three spans of dividends were asked.
        asked.append(len([a for a in provider.asked if a[0] == "dividends"]))
        return asked[-1] >= 3

    report = run_ingest(settings, store, provider, AS_OF, out_of_time=out_of_time)
    spans = [a[1] for a in provider.asked if a[0] == "dividends"]
    first = sessions_between(AS_OF.date() - dt.timedelta(days=400), AS_OF.date())[0]
    step = dt.timedelta(days=ACTIONS_CHUNK_DAYS)
    assert spans == [first, first + step, first + 2 * step]
    assert report.actions_waiting == [f"every ticker from {first + 3 * step}"]
    assert (
        load_state(store).actions_through == (first + 3 * step - dt.timedelta(days=1)).isoformat()
    )
    provider.asked.clear()
    run_ingest(settings, store, provider, AS_OF)
    spans = [a[1] for a in provider.asked if a[0] == "dividends"]
    assert spans[0] == first + 3 * step - dt.timedelta(days=1)  # the last day asked, again
    assert load_state(store).actions_through == AS_OF.date().isoformat()
    from marketlake.lake import actions

    assert list(actions.current(store, actions.DIVIDENDS)["value"]) == [0.3]
