"""run_ingest end to end on a local lake: landing, incrementality, quarantine, failures."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from marketlake.errors import MarketlakeError
from marketlake.ingest.runner import FAILED, FETCHED, UP_TO_DATE, run_ingest
from marketlake.lake import raw
from marketlake.lake.state import STATE_KEY, load_state
from marketlake.providers.base import BAR_COLUMNS, ProviderDefaults
from marketlake.providers.synthetic import SyntheticProvider
from marketlake.sessions import sessions_between

NY = ZoneInfo("America/New_York")


def eastern(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=NY)


class Counting(ProviderDefaults):
    """Wraps a provider and records every request."""

    def __init__(self, inner, name: str | None = None) -> None:
        self.inner = inner
        self.name = name or inner.name
        self.calls: list[tuple[str, dt.date | None, dt.date]] = []

    def fetch_daily(self, symbol, since, until):
        self.calls.append((symbol, since, until))
        return self.inner.fetch_daily(symbol, since, until)


class Scripted(ProviderDefaults):
    """Answers whatever `answer(symbol, since, until)` returns, or raises it."""

    def __init__(self, answer, name: str = "synthetic") -> None:
        self.answer = answer
        self.name = name
        self.calls: list[str] = []

    def fetch_daily(self, symbol, since, until):
        self.calls.append(symbol)
        result = self.answer(symbol, since, until)
        if isinstance(result, BaseException):
            raise result
        return result


def raw_objects(store) -> dict[str, bytes]:
    return {i.key: store.get_bytes(i.key) for i in store.list_objects(raw.RAW_PREFIX)}


def raw_frame(store, key: str) -> pd.DataFrame:
    return raw.read_csv(store.get_bytes(key))


def clock(moment: dt.datetime):
    return lambda: moment.astimezone(dt.timezone.utc)


AS_OF = eastern("2024-07-03 18:00")  # after the early close of 2024-07-03


def test_first_run_lands_two_years_per_symbol_at_the_raw_key(lake_store, lake_settings):
    settings = lake_settings(tickers="AMD,NVDA")
    provider = Counting(SyntheticProvider(seed=3))
    report = run_ingest(settings, lake_store, provider, AS_OF, now=clock(AS_OF))

    assert report.session == dt.date(2024, 7, 3)
    assert report.ingest_date == dt.date(2024, 7, 3)
    assert [r.status for r in report.results] == [FETCHED, FETCHED]
    assert [c[0] for c in provider.calls] == ["AMD", "NVDA"]
    assert all(c[2] == dt.date(2024, 7, 3) for c in provider.calls)

    expected = sessions_between(dt.date(2022, 7, 4), dt.date(2024, 7, 3))
    assert 495 <= len(expected) <= 510  # ~2 years of sessions
    objects = raw_objects(lake_store)
    assert sorted(objects) == [
        "raw/daily_prices/ingest_date=2024-07-03/AMD.csv",
        "raw/daily_prices/ingest_date=2024-07-03/NVDA.csv",
    ]
    for symbol in ("AMD", "NVDA"):
        frame = raw_frame(lake_store, raw.raw_key(dt.date(2024, 7, 3), symbol))
        assert list(frame["trade_date"]) == [d.isoformat() for d in expected]
        assert set(frame["symbol"]) == {symbol}
        assert set(frame["source"]) == {"synthetic"}
        assert set(frame["ingested_at"]) == {"2024-07-03 22:00:00.000"}
        truth = SyntheticProvider(seed=3).fetch_daily(symbol, expected[0], expected[-1])
        assert [float(v) for v in frame["close"]] == list(truth["close"])
    assert report.new_bars == 2 * len(expected)

    state = load_state(lake_store)
    assert state.lake_kind == "synthetic"
    assert state.watermark("AMD") == state.watermark("NVDA") == dt.date(2024, 7, 3)


def test_a_second_run_with_the_same_as_of_asks_nothing_and_writes_nothing(
    lake_store, lake_settings
):
    settings = lake_settings(tickers="AMD,NVDA")
    run_ingest(settings, lake_store, SyntheticProvider(), AS_OF, now=clock(AS_OF))
    before = raw_objects(lake_store)
    versions = {i.key: i.version for i in lake_store.list_objects(raw.RAW_PREFIX)}
    state_before = lake_store.get_bytes(STATE_KEY)

    provider = Counting(SyntheticProvider())
    later = AS_OF + dt.timedelta(hours=2)
    report = run_ingest(settings, lake_store, provider, later, now=clock(later))

    assert provider.calls == []
    assert [r.status for r in report.results] == [UP_TO_DATE, UP_TO_DATE]
    assert report.new_bars == 0
    assert raw_objects(lake_store) == before
    assert {i.key: i.version for i in lake_store.list_objects(raw.RAW_PREFIX)} == versions
    assert lake_store.get_bytes(STATE_KEY) == state_before
    assert lake_store.list_objects("quarantine/") == []


def test_a_later_as_of_adds_only_the_new_sessions_in_a_new_object(lake_store, lake_settings):
    settings = lake_settings(tickers="AMD")
    run_ingest(settings, lake_store, SyntheticProvider(), AS_OF, now=clock(AS_OF))
    first_key = raw.raw_key(dt.date(2024, 7, 3), "AMD")
    first_bytes = lake_store.get_bytes(first_key)

    later = eastern("2024-07-10 17:00")
    provider = Counting(SyntheticProvider())
    report = run_ingest(settings, lake_store, provider, later, now=clock(later))

    assert provider.calls == [("AMD", dt.date(2024, 7, 4), dt.date(2024, 7, 10))]
    new_key = raw.raw_key(dt.date(2024, 7, 10), "AMD")
    assert sorted(raw_objects(lake_store)) == [first_key, new_key]
    assert lake_store.get_bytes(first_key) == first_bytes
    assert list(raw_frame(lake_store, new_key)["trade_date"]) == [
        "2024-07-05",
        "2024-07-08",
        "2024-07-09",
        "2024-07-10",
    ]
    assert report.results[0].new_bars == 4
    assert report.results[0].first_date == dt.date(2024, 7, 5)
    assert load_state(lake_store).watermark("AMD") == dt.date(2024, 7, 10)


def corrupt(frame: pd.DataFrame, days: dict[dt.date, dict]) -> pd.DataFrame:
    frame = frame.copy()
    for day, changes in days.items():
        row = frame.index[frame["trade_date"] == day][0]
        for column, value in changes.items():
            frame.loc[row, column] = value
    return frame


def test_impossible_bars_go_to_quarantine_with_reasons_and_never_to_raw(lake_store, lake_settings):
    bad_days = {
        dt.date(2024, 6, 3): {"high": 0.5},  # high below everything
        dt.date(2024, 6, 20): {"volume": -10},
        dt.date(2024, 7, 2): {"open": 0.0},
    }
    synthetic = SyntheticProvider()

    def answer(symbol, since, until):
        bars = synthetic.fetch_daily(symbol, since, until)
        return corrupt(bars, bad_days) if symbol == "AMD" else bars

    settings = lake_settings(tickers="AMD,NVDA")
    report = run_ingest(settings, lake_store, Scripted(answer), AS_OF, now=clock(AS_OF))

    amd, nvda = report.results
    assert amd.status == FETCHED and amd.quarantined == 3
    assert nvda.quarantined == 0
    assert "quarantined" in amd.message

    stored = set(raw_frame(lake_store, raw.raw_key(dt.date(2024, 7, 3), "AMD"))["trade_date"])
    assert stored.isdisjoint(d.isoformat() for d in bad_days)
    assert "2024-07-03" in stored and "2024-06-04" in stored

    quarantined = lake_store.list_objects(raw.QUARANTINE_PREFIX)
    assert len(quarantined) == 1
    key = quarantined[0].key
    assert key.startswith("quarantine/daily_prices/ingest_date=2024-07-03/AMD.")
    payload = pd.read_csv(io.BytesIO(lake_store.get_bytes(key)), dtype=str)
    assert set(BAR_COLUMNS) <= set(payload.columns)
    assert sorted(payload["trade_date"]) == sorted(d.isoformat() for d in bad_days)
    reasons = dict(zip(payload["trade_date"], payload["reason"]))
    assert reasons["2024-06-03"] == "high is below open, close or low"
    assert reasons["2024-06-20"] == "volume is negative"
    assert reasons["2024-07-02"] == "open is not positive"
    assert set(payload["source"]) == {"synthetic"}


def test_a_symbol_whose_fetch_fails_is_failed_and_the_others_land(lake_store, lake_settings):
    synthetic = SyntheticProvider()

    def answer(symbol, since, until):
        if symbol == "AMD":
            return ConnectionError("connection reset by peer")
        return synthetic.fetch_daily(symbol, since, until)

    settings = lake_settings(tickers="INTC,AMD,NVDA")
    provider = Scripted(answer)
    report = run_ingest(settings, lake_store, provider, AS_OF, now=clock(AS_OF))

    assert provider.calls == ["INTC", "AMD", "NVDA"]
    statuses = {r.symbol: r.status for r in report.results}
    assert statuses == {"INTC": FETCHED, "AMD": FAILED, "NVDA": FETCHED}
    failed = report.with_status(FAILED)[0]
    assert "ConnectionError" in failed.message and "connection reset" in failed.message
    assert sorted(raw_objects(lake_store)) == [
        raw.raw_key(dt.date(2024, 7, 3), "INTC"),
        raw.raw_key(dt.date(2024, 7, 3), "NVDA"),
    ]
    state = load_state(lake_store)
    assert state.watermark("AMD") is None
    assert state.watermark("NVDA") == dt.date(2024, 7, 3)


def test_a_provisional_bar_is_never_stored(lake_store, lake_settings):
    # Friday 2024-07-05 at 11:00: the last closed session is Wednesday 07-03 (07-04 is a
    # holiday). A provider that ignores `until` also sends Friday's bar in progress.
    as_of = eastern("2024-07-05 11:00")
    synthetic = SyntheticProvider()

    def answer(symbol, since, until):
        return synthetic.fetch_daily(symbol, since, until + dt.timedelta(days=2))

    settings = lake_settings(tickers="MU")
    report = run_ingest(settings, lake_store, Scripted(answer), as_of, now=clock(as_of))

    assert report.session == dt.date(2024, 7, 3)
    assert report.ingest_date == dt.date(2024, 7, 5)
    frame = raw_frame(lake_store, raw.raw_key(dt.date(2024, 7, 5), "MU"))
    assert frame["trade_date"].max() == "2024-07-03"
    assert "2024-07-05" not in set(frame["trade_date"])
    assert load_state(lake_store).watermark("MU") == dt.date(2024, 7, 3)
    assert lake_store.list_objects("quarantine/") == []


def test_synthetic_and_market_data_never_mix_in_one_lake(lake_store, lake_settings):
    settings = lake_settings(tickers="AMD")
    run_ingest(settings, lake_store, SyntheticProvider(), AS_OF, now=clock(AS_OF))
    before = raw_objects(lake_store)

    market = Counting(SyntheticProvider(), name="alphavantage")
    later = eastern("2024-07-10 17:00")
    with pytest.raises(MarketlakeError) as info:
        run_ingest(settings, lake_store, market, later, now=clock(later))
    assert "synthetic" in str(info.value)
    assert "alphavantage" in str(info.value)
    assert str(settings.home) in str(info.value)
    assert market.calls == []
    assert raw_objects(lake_store) == before
    assert load_state(lake_store).lake_kind == "synthetic"


def test_a_market_lake_refuses_synthetic_data(lake_store, lake_settings):
    settings = lake_settings(tickers="AMD")
    market = Counting(SyntheticProvider(), name="alphavantage")
    run_ingest(settings, lake_store, market, AS_OF, now=clock(AS_OF))
    assert load_state(lake_store).lake_kind == "market"
    later = eastern("2024-07-10 17:00")
    with pytest.raises(MarketlakeError, match="synthetic"):
        run_ingest(settings, lake_store, SyntheticProvider(), later, now=clock(later))


def test_two_runs_on_one_day_merge_into_one_object_without_losing_rows(lake_store, lake_settings):
    synthetic = SyntheticProvider()
    answers = {}
    provider = Scripted(lambda symbol, since, until: answers[symbol](since, until))
    settings = lake_settings(tickers="AMD")

    # 10:00 Eastern: the last closed session is 07-02.
    morning = eastern("2024-07-03 10:00")
    answers["AMD"] = lambda since, until: synthetic.fetch_daily("AMD", dt.date(2024, 6, 24), until)
    first = run_ingest(settings, lake_store, provider, morning, now=clock(morning))
    assert first.results[0].last_date == dt.date(2024, 7, 2)

    # 14:00 Eastern, after the 13:00 early close: 07-03 has closed. The provider also
    # repeats 07-01 and 07-02 unchanged, as a compact answer does.
    afternoon = eastern("2024-07-03 14:00")
    answers["AMD"] = lambda since, until: synthetic.fetch_daily("AMD", dt.date(2024, 7, 1), until)
    second = run_ingest(settings, lake_store, provider, afternoon, now=clock(afternoon))
    assert second.results[0].status == FETCHED
    assert second.results[0].last_date == dt.date(2024, 7, 3)

    assert len(provider.calls) == 2
    key = raw.raw_key(dt.date(2024, 7, 3), "AMD")
    assert list(raw_objects(lake_store)) == [key]
    frame = raw_frame(lake_store, key)
    expected = sessions_between(dt.date(2024, 6, 24), dt.date(2024, 7, 3))
    assert list(frame["trade_date"]) == [d.isoformat() for d in expected]
    truth = synthetic.fetch_daily("AMD", expected[0], expected[-1])
    assert [float(v) for v in frame["close"]] == list(truth["close"])
    stamps = dict(zip(frame["trade_date"], frame["ingested_at"]))
    assert stamps["2024-06-24"] == "2024-07-03 14:00:00.000"
    assert stamps["2024-07-03"] == "2024-07-03 18:00:00.000"
    assert load_state(lake_store).watermark("AMD") == dt.date(2024, 7, 3)


def test_a_resent_bar_with_changed_values_lands_again_and_the_newer_copy_wins(
    lake_store, lake_settings
):
    # DESIGN: "Bars already stored are rewritten only when their values changed."
    synthetic = SyntheticProvider()
    answers = {}
    provider = Scripted(lambda symbol, since, until: answers[symbol](since, until))
    settings = lake_settings(tickers="AMD")
    morning = eastern("2024-07-03 10:00")
    answers["AMD"] = lambda since, until: synthetic.fetch_daily("AMD", dt.date(2024, 6, 24), until)
    run_ingest(settings, lake_store, provider, morning, now=clock(morning))

    def corrected(since, until):
        bars = synthetic.fetch_daily("AMD", dt.date(2024, 7, 1), until)
        fix = bars["trade_date"] == dt.date(2024, 7, 2)
        bars.loc[fix, ["open", "high", "low", "close"]] *= 2
        return bars

    afternoon = eastern("2024-07-03 14:00")
    answers["AMD"] = corrected
    report = run_ingest(settings, lake_store, provider, afternoon, now=clock(afternoon))
    # 07-01 came back unchanged: not rewritten. 07-02 changed, 07-03 is new.
    assert report.results[0].new_bars == 2

    frame = raw_frame(lake_store, raw.raw_key(dt.date(2024, 7, 3), "AMD")).set_index("trade_date")
    assert len(frame) == len(sessions_between(dt.date(2024, 6, 24), dt.date(2024, 7, 3)))
    assert frame.index.is_unique
    truth = synthetic.fetch_daily("AMD", dt.date(2024, 7, 1), dt.date(2024, 7, 2))
    assert float(frame.loc["2024-07-02", "close"]) == truth["close"].iloc[1] * 2
    assert frame.loc["2024-07-02", "ingested_at"] == "2024-07-03 18:00:00.000"
    assert float(frame.loc["2024-07-01", "close"]) == truth["close"].iloc[0]
    assert frame.loc["2024-07-01", "ingested_at"] == "2024-07-03 14:00:00.000"


def test_an_answer_over_the_bad_row_gate_lands_nothing_and_fails_the_symbol(
    lake_store, lake_settings
):
    synthetic = SyntheticProvider()
    answers = {}

    def answer(symbol, since, until):
        bars = synthetic.fetch_daily(symbol, since, until).tail(20).reset_index(drop=True)
        if symbol == "AMD":  # 4 of 20 impossible: 20%, over the default 5%
            bars = corrupt(bars, {d: {"volume": -1} for d in bars["trade_date"].iloc[:4]})
        answers[symbol] = bars
        return bars

    settings = lake_settings(tickers="AMD,NVDA")
    report = run_ingest(settings, lake_store, Scripted(answer), AS_OF, now=clock(AS_OF))

    statuses = {r.symbol: r.status for r in report.results}
    assert statuses == {"AMD": FAILED, "NVDA": FETCHED}
    amd = next(r for r in report.results if r.symbol == "AMD")
    assert "4 of 20" in amd.message and "20%" in amd.message and amd.new_bars == 0
    assert sorted(raw_objects(lake_store)) == [raw.raw_key(dt.date(2024, 7, 3), "NVDA")]
    assert load_state(lake_store).watermark("AMD") is None  # asked again next run
    # The whole answer is kept: every one of its 20 bars, the good ones too.
    (whole,) = [i.key for i in lake_store.list_objects(raw.QUARANTINE_PREFIX) if "batch" in i.key]
    assert whole in amd.message
    kept = pd.read_csv(io.BytesIO(lake_store.get_bytes(whole)), dtype=str)
    assert len(kept) == 20
    assert sorted(kept["trade_date"]) == sorted(d.isoformat() for d in answers["AMD"]["trade_date"])


def test_an_answer_under_the_gate_lands_its_good_bars(lake_store, lake_settings):
    synthetic = SyntheticProvider()

    def answer(symbol, since, until):
        bars = synthetic.fetch_daily(symbol, since, until).tail(20).reset_index(drop=True)
        return corrupt(bars, {bars["trade_date"].iloc[0]: {"volume": -1}})  # 5%: at the gate

    report = run_ingest(
        lake_settings(tickers="AMD"), lake_store, Scripted(answer), AS_OF, now=clock(AS_OF)
    )
    (amd,) = report.results
    assert amd.status == FETCHED and amd.new_bars == 19 and amd.quarantined == 1


def test_an_import_quarantines_a_session_that_has_not_closed(lake_store, lake_settings, tmp_path):
    from marketlake.ingest.importer import run_import

    during = eastern("2024-07-05 11:00")  # Friday, before the close
    path = tmp_path / "mu.csv"
    days = sessions_between(dt.date(2024, 5, 1), dt.date(2024, 7, 5))
    path.write_text(
        "date,open,high,low,close,volume\n"
        + "".join(f"{d.isoformat()},10,11,9,10.5,100\n" for d in days)
    )
    settings = lake_settings()
    report = run_import(settings, lake_store, [path], now=clock(during))
    (mu,) = report.results
    assert mu.new_bars == len(days) - 1 and mu.quarantined == 1
    assert "has not closed" in mu.message
    (key,) = [i.key for i in lake_store.list_objects(raw.QUARANTINE_PREFIX)]
    kept = pd.read_csv(io.BytesIO(lake_store.get_bytes(key)), dtype=str)
    assert list(kept["trade_date"]) == ["2024-07-05"]
    assert "has not closed" in kept["reason"].iloc[0]
