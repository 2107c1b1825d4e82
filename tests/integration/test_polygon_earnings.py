"""Polygon's quarterly earnings (/vX/reference/financials) over loopback: PolygonProvider's
fetch_earnings against the stand-in's filings (polygon_fake_financials), run_ingest landing
them at most POLYGON_EARNINGS_PER_RUN symbols a run, and a build's eps_ttm from them.

Every expectation is computed from polygon_fake_financials.filings, the stand-in's own
list: a quarter is its first filing's (end_date, filing_date, diluted EPS, basic where the
filing has no diluted figure)."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import polygon_fake_financials as filed_by
import pytest
from polygon_fake_server import BEYOND_PLAN, REQUEST_ID, FakePolygon, html_page, reply

from marketlake.config import Settings
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.ingest.ratelimit import SimulatedClock
from marketlake.ingest.runner import run_ingest
from marketlake.lake import earnings
from marketlake.lake.earnings import empty_earnings, judge
from marketlake.lake.state import load_state, save_state
from marketlake.providers.base import NotOffered, UnusablePayload
from marketlake.providers.polygon import NotEntitled, PayloadError, PolygonProvider
from marketlake.sessions import EASTERN
from marketlake.storage import LocalStore
from marketlake.wap.pipeline import TABLE, run_build
from recorders import Observer, Recorder, shown

KEY = "PGe4rnK3yTEST0Zq"
SESSION = dt.date(2024, 6, 13)  # a Thursday
AS_OF = dt.datetime(2024, 6, 13, 23, 0, tzinfo=EASTERN)
NEXT_DAY = dt.datetime(2024, 6, 14, 23, 0, tzinfo=EASTERN)
MONDAY = dt.datetime(2024, 6, 17, 23, 0, tzinfo=EASTERN)
# The stand-in's first tickers (polygon_fake_market.make_tickers) with AAA, its first made-up
# one: KIMpL is left out, as a watchlist upper-cases it to a ticker the stand-in lacks.
WATCHLIST = ["AAPL", "BRK.B", "MSFT", "NVDA", "BF.B", "GOOGL", "TSLA", "AAA"]


@pytest.fixture
def server():
    with FakePolygon(KEY, tickers=12) as fake:
        yield fake


@pytest.fixture
def rec():
    return Recorder()


def provider(server: FakePolygon, rec: Recorder) -> PolygonProvider:
    return PolygonProvider(
        KEY,
        base_url=server.url,
        max_retries=2,
        backoff_seconds=0.01,
        timeout=2.0,
        sleep=rec.sleep,
        on_event=rec.event,
    )


def ticker(server: FakePolygon, position: int) -> str:
    return server.market.tickers[position]


def expected(server: FakePolygon, symbol: str, until: dt.date | None) -> list[tuple]:
    """(end, filed, EPS as a float or "None") of each quarter's first filing by `until`."""
    first: dict[str, tuple] = {}
    for result in filed_by.filings(server.market, server.market.position[symbol], until):
        income = result["financials"]["income_statement"]
        item = income.get("diluted_earnings_per_share") or income.get("basic_earnings_per_share")
        eps = float(item["value"]) if item else "None"
        first.setdefault(result["end_date"], (result["end_date"], result["filing_date"], eps))
    return sorted(first.values())


def quarters(frame) -> list[tuple]:
    assert list(frame.columns) == list(empty_earnings().columns)
    return sorted(
        (end, filed, eps if eps == "None" else float(eps))
        for end, filed, eps in zip(
            frame["fiscal_date_ending"], frame["reported_date"], frame["reported_eps"]
        )
    )


# -- the provider ---------------------------------------------------------------------


def test_a_tickers_quarters_are_its_filings_by_the_day_asked_with_diluted_eps(server, rec):
    symbol = "AAA"
    frame = provider(server, rec).fetch_earnings(symbol, SESSION)
    want = expected(server, symbol, SESSION)
    assert quarters(frame) == want and len(want) == 10
    # The stand-in files later too: the request's filing_date.lte is what leaves them out.
    assert expected(server, symbol, None)[-1][1] > SESSION.isoformat()
    [logged] = server.requests
    assert logged.endpoint == "financials"
    assert logged.query == {
        "ticker": symbol,
        "timeframe": "quarterly",
        "filing_date.lte": "2024-06-13",
        "order": "asc",
        "sort": "filing_date",
        "limit": "100",
        "apiKey": KEY,
    }
    assert rec.events == [] and rec.sleeps == []


def test_a_filing_without_diluted_eps_gives_its_basic_eps(server, rec):
    symbol = ticker(server, filed_by.BASIC_ONLY)
    frame = provider(server, rec).fetch_earnings(symbol, SESSION)
    basic = [
        float(r["financials"]["income_statement"]["basic_earnings_per_share"]["value"])
        for r in filed_by.filings(server.market, filed_by.BASIC_ONLY, SESSION)
    ]
    assert [eps for *_, eps in quarters(frame)] == basic and len(basic) == 10


def test_an_amended_quarter_keeps_its_first_filing_and_names_the_later(server, rec):
    symbol = ticker(server, filed_by.AMENDED)
    quarter = filed_by.AMENDED_QUARTER.isoformat()
    both = [
        r for r in filed_by.filings(server.market, filed_by.AMENDED) if r["end_date"] == quarter
    ]
    first, amended = sorted(r["filing_date"] for r in both)
    frame = provider(server, rec).fetch_earnings(symbol, SESSION)
    got = {end: (day, eps) for end, day, eps in quarters(frame)}
    eps = both[0]["financials"]["income_statement"]["diluted_earnings_per_share"]["value"]
    assert got[quarter] == (first, eps) and quarters(frame) == expected(server, symbol, SESSION)
    [(kind, message)] = rec.events
    assert kind == "skipped" and message.startswith(f"earnings of {symbol}: ")
    assert f"{symbol} quarter ending {quarter}: the filing of {amended} is left out" in message


def test_a_quarter_filed_without_eps_is_unreported(server, rec):
    symbol = ticker(server, filed_by.UNREPORTED)
    until = dt.date(2025, 3, 31)  # after the newest quarter's 10-K
    frame = provider(server, rec).fetch_earnings(symbol, until)
    got = quarters(frame)
    assert got == expected(server, symbol, until)
    assert got[-1][2] == "None" and all(eps != "None" for *_, eps in got[:-1])
    judged = judge(frame)
    assert judged.unreported == 1 and judged.rejected.empty and len(judged.valid) == len(got) - 1


def test_a_ticker_without_filings_has_no_quarters(server, rec):
    frame = provider(server, rec).fetch_earnings(ticker(server, filed_by.NO_FILINGS), SESSION)
    assert frame.empty and list(frame.columns) == list(empty_earnings().columns)
    assert server.count("financials") == 1 and rec.events == []


def test_pages_are_followed_to_the_same_quarters(server, rec):
    symbol = ticker(server, filed_by.AMENDED)
    whole = provider(server, rec).fetch_earnings(symbol, SESSION)
    results = len(filed_by.filings(server.market, filed_by.AMENDED, SESSION))
    server.page_size = 3
    paged = provider(server, rec).fetch_earnings(symbol, SESSION)
    assert quarters(paged) == quarters(whole) and len(whole) == results - 1
    assert server.count("financials") == 1 + math.ceil(results / 3) and results > 6
    follows = [r.query for r in server.requests[2:]]
    assert all(set(q) == {"cursor", "apiKey"} and q["apiKey"] == KEY for q in follows)


def test_a_plan_without_financials_is_not_entitled(server, rec):
    server.financials_entitled = False
    with pytest.raises(NotEntitled, match="not entitled") as info:
        provider(server, rec).fetch_earnings("AAPL", SESSION)
    assert isinstance(info.value, NotOffered)
    assert server.count("financials") == 1 and rec.sleeps == []


GARBLED = {
    "html-page": lambda: html_page(200, "financials"),
    "results-not-a-list-echoing-the-key": lambda: reply(
        200, {"status": "OK", "request_id": REQUEST_ID, "results": {"key": KEY}}, "financials"
    ),
    "page-echoing-the-key": lambda: reply(
        200, f'<html><a href="/vX/reference/financials?apiKey={KEY}">{KEY}</a></html>', "financials"
    ),
}


@pytest.mark.parametrize("name", list(GARBLED))
def test_a_garbled_answer_on_every_attempt_is_unusable_and_never_shows_the_key(server, rec, name):
    server.faults += [GARBLED[name]() for _ in range(3)]
    with pytest.raises(PayloadError, match="after 3 attempts") as info:
        provider(server, rec).fetch_earnings("AAPL", SESSION)
    exc = info.value
    assert isinstance(exc, UnusablePayload) and server.count("financials") == 3
    assert server.requests[0].query["apiKey"] == KEY  # it did go out
    texts = [*shown(exc), repr(rec.events)]
    assert [k for k, _ in rec.events] == ["retry", "retry"]
    for text in texts:
        assert KEY not in text


# -- ingest -----------------------------------------------------------------------------


def settings(server: FakePolygon, tmp_path, tickers: list[str], days: int = 10, **env):
    return Settings.from_env(
        {
            "MARKETLAKE_PROVIDER": "polygon",
            "POLYGON_API_KEY": KEY,
            "POLYGON_BASE_URL": server.url,
            "POLYGON_BACKOFF_SECONDS": "0.01",
            "MARKETLAKE_TICKERS": ",".join(tickers),
            "MARKETLAKE_HISTORY_DAYS": str(days),
            **env,
        },
        home=tmp_path / "lake",
    )


def ingest(config: Settings, as_of: dt.datetime, observer: Observer | None = None):
    clock = SimulatedClock()
    store = LocalStore(config.home)
    report = run_ingest(
        config,
        store,
        None,
        as_of,
        observer=observer or Observer(),
        clock=clock.now,
        sleep=clock.sleep,
        now=lambda: as_of,
    )
    return report, store


def asked(server: FakePolygon, since: int = 0) -> list[str]:
    return [r.query["ticker"] for r in server.requests[since:] if r.endpoint == "financials"]


def on_record(store, symbol: str) -> list[tuple]:
    rows = earnings.current(store, symbol)
    assert list(rows["basis"]) == list(rows["reported"])  # as filed: the basis is the filing
    return [
        (f.isoformat(), r.isoformat(), e)
        for f, r, e in zip(rows["fiscal"], rows["reported"], rows["eps"])
    ]


def test_quarters_land_dated_by_their_filing_and_nothing_filed_after_the_session(server, tmp_path):
    symbols = ["AAPL", "BRK.B", "GOOGL", "TSLA", "NVDA"]
    observer = Observer()
    report, store = ingest(settings(server, tmp_path, symbols), AS_OF, observer)
    assert report.session == SESSION
    assert sorted(report.earnings_asked) == sorted(symbols) and report.earnings_none == ["NVDA"]
    landed = 0
    for symbol in symbols:
        want = [q for q in expected(server, symbol, SESSION) if q[2] != "None"]
        assert on_record(store, symbol) == want
        landed += len(want)
        # Polygon files later quarters; none of them is on record.
        later = [q for q in expected(server, symbol, None) if q[1] > SESSION.isoformat()]
        assert symbol == "NVDA" or later
    assert report.earnings_landed == landed == 4 * 10
    # Left out by the request (filing_date.lte), not held back after the answer.
    assert {r.query["filing_date.lte"] for r in server.requests if r.endpoint == "financials"} == {
        SESSION.isoformat()
    }
    assert (report.earnings_held, report.earnings_quarantined) == (0, 0)
    assert (tmp_path / "lake/raw/earnings/ingest_date=2024-06-13/TSLA.csv").is_file()
    [skipped] = [m for m in observer.said("skipped") if "earnings of TSLA" in m]
    assert "quarter ending 2023-06-30: the filing of 2023-09-18 is left out" in skipped
    assert KEY not in repr(observer.events)


def test_a_filing_after_the_session_sent_anyway_is_held_back_then_lands(server, tmp_path):
    # A vendor that ignored filing_date.lte: the whole list, filed up to 2025.
    everything = filed_by.filings(server.market, server.market.position["AAA"])
    body = {"status": "OK", "request_id": REQUEST_ID, "results": everything}
    server.faults.append(reply(200, body, "financials"))
    config = settings(server, tmp_path, ["AAA"])
    report, store = ingest(config, AS_OF)
    later = [q for q in expected(server, "AAA", None) if q[1] > SESSION.isoformat()]
    assert report.earnings_held == len(later) == 3
    assert on_record(store, "AAA") == expected(server, "AAA", SESSION)
    # A week on, the next filing (2024-08) is on or before the session: it lands.
    week = dt.datetime(2024, 8, 30, 23, 0, tzinfo=EASTERN)
    report, store = ingest(config, week)
    assert report.earnings_landed == 1 and report.earnings_held == 0
    assert on_record(store, "AAA") == expected(server, "AAA", week.date())


def test_at_most_earnings_per_run_symbols_are_asked_the_unasked_first(server, tmp_path):
    config = settings(server, tmp_path, WATCHLIST, POLYGON_EARNINGS_PER_RUN="3")
    observer = Observer()
    report, store = ingest(config, AS_OF, observer)
    assert report.earnings_asked == asked(server) == ["AAA", "AAPL", "BF.B"]
    assert report.earnings_waiting == ["BRK.B", "GOOGL", "MSFT", "NVDA", "TSLA"]
    [said] = observer.said("earnings")
    assert "5 symbol(s) wait for the next run" in said and "POLYGON_EARNINGS_PER_RUN" in said

    seen = len(server.requests)
    report, store = ingest(config, NEXT_DAY)
    assert report.earnings_asked == asked(server, seen) == ["BRK.B", "GOOGL", "MSFT"]
    assert report.earnings_waiting == ["NVDA", "TSLA"]

    seen = len(server.requests)
    report, store = ingest(config, MONDAY)
    assert report.earnings_asked == asked(server, seen) == ["NVDA", "TSLA"]
    assert report.earnings_waiting == []
    state = load_state(store)
    assert sorted(asked(server)) == sorted(WATCHLIST)
    assert all(state.symbols[s].earnings_on is not None for s in WATCHLIST)


def test_when_all_are_due_the_longest_unasked_go_first(server, tmp_path):
    config = settings(
        server, tmp_path, WATCHLIST, POLYGON_EARNINGS_PER_RUN="3", MARKETLAKE_ACTIONS_EVERY_DAYS="1"
    )
    ingest(config, AS_OF)
    ingest(config, NEXT_DAY)
    seen = len(server.requests)
    report, store = ingest(config, MONDAY)
    # Never asked first (by symbol), then those asked on the 13th before those of the 14th.
    assert report.earnings_asked == asked(server, seen) == ["NVDA", "TSLA", "AAA"]
    assert report.earnings_waiting == ["AAPL", "BF.B", "BRK.B", "GOOGL", "MSFT"]
    assert load_state(store).symbols["AAA"].earnings_on == "2024-06-17"


class BrokenFinancials(FakePolygon):
    """The stand-in, answering the financials of the tickers in ``broken`` with a body whose
    results are not a list, every time (a vendor quirk of a few tickers)."""

    broken: frozenset[str] = frozenset()

    def _financials(self, query: dict) -> dict:
        if query.get("ticker") in self.broken:
            return {"status": "OK", "request_id": REQUEST_ID, "results": "garbled"}
        return super()._financials(query)


def test_a_symbol_whose_earnings_always_fail_does_not_hold_back_the_others(tmp_path):
    # Runs take turns through the list: a symbol asked and failed yesterday is not "never
    # asked" today, or as many such symbols as the cap would take every run's turns.
    with BrokenFinancials(KEY, tickers=12) as server:
        server.broken = frozenset({"AAA"})
        config = settings(
            server, tmp_path, ["AAA", "AAPL"], POLYGON_EARNINGS_PER_RUN="1", POLYGON_MAX_RETRIES="0"
        )
        report, _ = ingest(config, AS_OF)
        assert asked(server) == ["AAA"] and report.earnings_asked == []
        ingest(config, NEXT_DAY)
        ingest(config, MONDAY)
        assert "AAPL" in asked(server), asked(server)


def test_a_plan_without_financials_turns_earnings_off_and_the_bars_land(server, tmp_path):
    server.financials_entitled = False
    observer = Observer()
    symbols = ["AAPL", "TSLA"]
    report, store = ingest(settings(server, tmp_path, symbols), AS_OF, observer)
    assert report.earnings_off.startswith("off for this run: ")
    assert "not entitled" in report.earnings_off
    assert server.count("financials") == 1 and len(observer.said("earnings")) == 1
    assert sorted(report.earnings_waiting) == symbols and report.earnings_asked == []
    state = load_state(store)
    for symbol in symbols:
        assert state.symbols[symbol].watermark == SESSION.isoformat()
        assert state.symbols[symbol].earnings_on is None  # due again next run
    assert report.new_bars > 0 and not list((tmp_path / "lake").glob("raw/earnings/*/*"))


def test_a_plan_that_refuses_the_financials_timeframe_turns_earnings_off_too(server, tmp_path):
    # Polygon's other 403 ("Your plan doesn't include this data timeframe"): a BeyondPlan,
    # which would otherwise end the run after its bars landed, and again every run.
    server.faults.append(reply(403, BEYOND_PLAN, "financials"))
    observer = Observer()
    report, _ = ingest(settings(server, tmp_path, ["AAPL", "TSLA"]), AS_OF, observer)
    assert report.earnings_off.startswith("off for this run: ")
    assert "timeframe" in report.earnings_off and report.earnings_asked == []
    assert server.count("financials") == 1 and len(observer.said("earnings")) == 1
    assert report.new_bars > 0 and sorted(report.earnings_waiting) == ["AAPL", "TSLA"]


def test_a_whole_market_run_asks_the_earnings_of_the_tickers_the_lake_holds(server, tmp_path):
    # --tickers ALL names no symbol: the earnings are those of every ticker the grouped
    # answers brought, a few a run, then the others; a purged ticker is not asked again.
    config = settings(server, tmp_path, ["ALL"], POLYGON_EARNINGS_PER_RUN="5")
    report, store = ingest(config, AS_OF)
    tickers = sorted(server.market.tickers)
    assert report.new_bars > 0 and sorted(report.earnings_asked) == tickers[:5]
    state = load_state(store)
    state.purged["KIMpL"] = "2024-06-14T00:00:00Z"
    save_state(store, state)
    ingest(config, NEXT_DAY)
    asked = [r.query["ticker"] for r in server.requests if r.endpoint == "financials"]
    assert asked[:5] == tickers[:5]  # never tried: by symbol
    assert asked[5:] == [t for t in tickers[5:] if t != "KIMpL"][:5]


# -- end to end -------------------------------------------------------------------------


def reference_eps_ttm(server: FakePolygon, symbol: str, day: dt.date) -> float:
    """The sum of the four latest quarters filed before `day`, each put on `day`'s share
    basis: a filing's EPS is on the basis of its filing day (polygon_fake_financials)."""
    position = server.market.position[symbol]
    splits = [
        (server.market.sessions[at], high / low)
        for who, at, low, high in server.market.splits
        if who == position
    ]

    def shares_after(start: dt.date) -> float:  # new shares per share held on `start`
        return math.prod(f for ex, f in splits if start < ex <= day)

    known = [q for q in expected(server, symbol, None) if q[1] < day.isoformat()][-4:]
    assert len(known) == 4 and all(eps != "None" for *_, eps in known)
    return sum(eps / shares_after(dt.date.fromisoformat(filed)) for _, filed, eps in known)


def test_a_build_publishes_eps_ttm_from_the_filings_on_each_sessions_basis(server, tmp_path):
    # AAPL splits 1:4 inside the window (quarters filed before it are per old share); BF.B
    # splits 2:3 between a quarter's end and its filing (filed per new share); MSFT's 10:1
    # reverse split goes ex on a filing day (that filing is per new share, and the split
    # is not applied to it again); TSLA has an amended quarter (its first filing counts).
    symbols = ["AAPL", "BF.B", "MSFT", "TSLA"]
    config = settings(server, tmp_path, symbols, days=400)
    report, store = ingest(config, AS_OF)
    assert sorted(report.earnings_asked) == symbols
    aapl = server.market.position["AAPL"]
    [split_day] = [
        server.market.sessions[at] for who, at, *_ in server.market.splits if who == aapl
    ]
    with DuckDBEngine(config.home) as engine:
        assert run_build(config, store, engine, full=True).status == "published"
        out = engine.fetch_df(f"SELECT symbol, trade_date, eps_ttm FROM {TABLE}")
    out["trade_date"] = pd.to_datetime(out["trade_date"]).dt.date
    for symbol in symbols:
        rows = out[out["symbol"] == symbol]
        assert len(rows) > 250 and rows["eps_ttm"].notna().all()
        for day, eps_ttm in zip(rows["trade_date"], rows["eps_ttm"]):
            want = reference_eps_ttm(server, symbol, day)
            assert eps_ttm == pytest.approx(want, rel=1e-9), (symbol, day)
    checked = out[out["symbol"] == "AAPL"]["trade_date"]
    assert min(checked) < split_day < max(checked)  # the split is inside what was checked
    # The stand-in's split cases are there: BF.B's inside a quarter's filing lag, MSFT's on
    # a filing day.
    lags = {}
    for who, at, *_ in server.market.splits:
        ex = server.market.sessions[at]
        for q in filed_by.filings(server.market, who):
            end, filed = (dt.date.fromisoformat(q[k]) for k in ("end_date", "filing_date"))
            if end < ex <= filed:
                lags[server.market.tickers[who]] = "on the filing day" if ex == filed else "inside"
    assert lags == {"BF.B": "inside", "MSFT": "on the filing day"}
