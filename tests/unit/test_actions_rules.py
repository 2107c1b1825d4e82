"""Issue 20, point 5: corporate actions get the bars' rules.

An action counts from its date on (a future one is refused at import and held back by the
build until it is effective, then restates its symbol); a file gives each date once; a value
on record changes only with --replace; a `symbol` column must agree with the symbol the rows
land under; an absurd dividend is flagged by a warning check.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from test_wap_versions import Lake, after_close

from marketlake.config import Settings
from marketlake.errors import MarketlakeError
from marketlake.ingest.importer import run_import, run_import_actions
from marketlake.lake import actions
from marketlake.storage import LocalStore

FRIDAY = after_close("2024-06-14")  # the last closed session is Friday 2024-06-14
MONDAY = after_close("2024-06-17")


@pytest.fixture()
def home(tmp_path) -> Path:
    return tmp_path / "lake"


def settings(home: Path) -> Settings:
    return Settings.from_env({"MARKETLAKE_HOME": str(home)})


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def import_actions(home, files, kind, now=FRIDAY, **kwargs):
    return run_import_actions(
        settings(home), LocalStore(home), files, kind, now=lambda: now, **kwargs
    )


def on_record(home: Path, kind: actions.ActionKind) -> list[tuple[str, dt.date, float]]:
    frame = actions.current(LocalStore(home), kind)
    return list(zip(frame["symbol"], frame["date"], frame["value"]))


def land_raw(store, kind, symbol: str, day: str, value: float) -> None:
    """A row landed as an older version would have: straight into raw, no import checks."""
    valid = actions.judge_actions(kind, pd.DataFrame({"date": [day], "value": [str(value)]}))[0]
    stamp = "2024-06-14 23:30:00.000"
    assert actions.land_actions(store, kind, symbol, valid, "import", dt.date(2024, 6, 14), stamp)


# -- 1. an action counts from its date on ----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "header"), [("splits", "date,split_factor"), ("dividends", "date,amount")]
)
def test_an_import_dated_after_the_last_closed_session_is_refused(home, tmp_path, kind, header):
    files = [
        write(tmp_path / "amd.csv", f"{header}\n2024-05-10,2\n"),
        write(tmp_path / "nvda.csv", f"{header}\n2024-06-10,10\n2027-06-10,10\n"),
    ]
    with pytest.raises(MarketlakeError) as caught:
        import_actions(home, files, kind)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("nvda.csv: ")
    assert "2027-06-10" in message and "2024-06-14" in message  # the row, the last session
    assert "nothing was imported" in message
    assert not (home / "raw").exists()  # not even the good file


def test_an_action_dated_on_the_last_closed_session_imports(home, tmp_path):
    file = write(tmp_path / "nvda.csv", "date,split_factor\n2024-06-14,10\n")
    assert import_actions(home, [file], "splits") == [("NVDA", 1, 0)]
    # The same row a session earlier in time is still in the future.
    with pytest.raises(MarketlakeError, match="2024-06-14 is after the last closed"):
        import_actions(tmp_path / "other", [file], "splits", now=after_close("2024-06-13"))


def test_the_build_is_handed_only_actions_dated_through_the_last_closed_session(home):
    store = LocalStore(home)
    land_raw(store, actions.SPLITS, "AMD", "2024-06-17", 2.0)
    land_raw(store, actions.SPLITS, "AMD", "2024-06-03", 4.0)
    land_raw(store, actions.DIVIDENDS, "AMD", "2024-06-15", 0.5)  # a Saturday

    def dates(frames, table):
        return [pd.Timestamp(d).date().isoformat() for d in frames[table]["ex_date"]]

    friday = actions.build_frames(store, FRIDAY)
    assert dates(friday, "corporate_splits") == ["2024-06-03"]
    assert dates(friday, "corporate_dividends") == []
    # Sunday evening: the Saturday dividend goes ex on Monday, whose session has not closed.
    sunday = actions.build_frames(store, after_close("2024-06-16"))
    assert dates(sunday, "corporate_splits") == ["2024-06-03"]
    assert dates(sunday, "corporate_dividends") == []
    monday = actions.build_frames(store, MONDAY)
    assert dates(monday, "corporate_splits") == ["2024-06-03", "2024-06-17"]
    assert dates(monday, "corporate_dividends") == ["2024-06-15"]
    # Typed even when a filter leaves nothing.
    assert str(friday["corporate_dividends"]["ex_date"].dtype) == "datetime64[ns]"


def test_without_a_time_the_build_frames_filter_by_now(home, monkeypatch):
    store = LocalStore(home)
    land_raw(store, actions.SPLITS, "AMD", "2024-06-17", 2.0)
    monkeypatch.setattr(actions, "_utcnow", lambda: FRIDAY.astimezone(dt.timezone.utc))
    assert len(actions.build_frames(store)["corporate_splits"]) == 0
    monkeypatch.setattr(actions, "_utcnow", lambda: MONDAY.astimezone(dt.timezone.utc))
    assert len(actions.build_frames(store)["corporate_splits"]) == 1


def test_a_held_back_split_restates_its_symbol_once_effective(tmp_path):
    """A split in raw dated Monday (landed by an older version) changes nothing while the
    build runs on Friday evening; the first build after Monday's close applies it and
    restates the symbol's whole history, with no new bar landed in between."""
    lake = Lake(tmp_path / "lake", history_days=120)
    lake.ingest("2024-06-14")
    land_raw(lake.store, actions.SPLITS, "AMD", "2024-06-17", 2.0)

    # The build hands build_frames its own start time.
    clock = {"now": FRIDAY}

    def build():
        return lake.build(now=lambda: clock["now"].astimezone(dt.timezone.utc))

    sql = "SELECT trade_date, adj_factor, adj_close FROM daily_prices WHERE symbol = 'AMD' "
    first = build()
    assert first.status == "published"
    before = lake.rows(sql + "ORDER BY trade_date")
    assert {r["adj_factor"] for r in before} == {1.0}
    # Again on Friday: nothing changed, nothing to build.
    assert build().status == "skipped"

    clock["now"] = MONDAY
    second = build()
    assert second.status == "published" and second.mode == "incremental"
    assert set(second.restated) == {"AMD"}
    after = lake.rows(sql + "ORDER BY trade_date")
    assert [r["trade_date"] for r in after] == [r["trade_date"] for r in before]
    assert {r["adj_factor"] for r in after} == {2.0}  # every bar is before the split
    assert all(a["adj_close"] == pytest.approx(b["adj_close"] / 2) for a, b in zip(after, before))


# -- 2. one row per date in a file -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("splits", "date,split_factor\n2024-06-10,10\n2024-05-01,2\n2024-06-10,4\n"),
        ("dividends", "date,amount\n2024-05-10,0.24\n2024-05-10,0.24\n"),
    ],
)
def test_a_date_given_twice_in_one_file_is_refused(home, tmp_path, kind, text):
    file = write(tmp_path / "nvda.csv", text)
    with pytest.raises(MarketlakeError) as caught:
        import_actions(home, [file], kind)
    message = str(caught.value)
    assert message.startswith("nvda.csv: ") and "given more than once" in message
    assert "2024-06-10" in message or "2024-05-10" in message
    assert "\n" not in message and not (home / "raw").exists()


def test_a_vendor_answer_with_two_values_for_a_date_lands_neither():
    rows = pd.DataFrame(
        {
            "date": ["2024-05-10", "2024-05-10", "2024-02-09", "2024-02-09", "2023-11-10"],
            "value": ["0.24", "0.25", "0.2", "0.2", "0.19"],
        }
    )
    valid, rejected = actions.judge_actions(actions.DIVIDENDS, rows)
    # Identical copies are one dividend; differing ones are not ours to pick from.
    assert list(valid["date"]) == [dt.date(2023, 11, 10), dt.date(2024, 2, 9)]
    assert list(rejected["ex_dividend_date"]) == ["2024-05-10", "2024-05-10"]
    assert rejected["reason"].str.contains("different amounts \\(0.24, 0.25\\)").all()
    assert actions.repeated_date(rows) == dt.date(2024, 5, 10)


# -- 3. a value on record changes only with --replace ----------------------------------------


def test_a_changed_split_factor_is_refused_unless_replaced(home, tmp_path):
    write(tmp_path / "nvda.csv", "date,split_factor\n2024-06-10,10\n")
    import_actions(home, [tmp_path / "nvda.csv"], "splits")
    # The same value again: nothing new, nothing refused.
    assert import_actions(home, [tmp_path / "nvda.csv"], "splits") == [("NVDA", 0, 0)]

    write(tmp_path / "fix.csv", "date,split_factor\n2024-06-10,4\n")
    with pytest.raises(MarketlakeError) as caught:
        import_actions(home, [tmp_path / "fix.csv"], "splits", symbol="nvda")
    message = str(caught.value)
    assert "\n" not in message
    for part in ("fix.csv", "NVDA", "2024-06-10", "split_factor 10 on record", "says 4"):
        assert part in message
    assert "--replace" in message
    assert on_record(home, actions.SPLITS) == [("NVDA", dt.date(2024, 6, 10), 10.0)]

    assert import_actions(home, [tmp_path / "fix.csv"], "splits", symbol="nvda", replace=True)
    assert on_record(home, actions.SPLITS) == [("NVDA", dt.date(2024, 6, 10), 4.0)]


def test_a_changed_dividend_refuses_the_whole_import(home, tmp_path):
    write(tmp_path / "amd.csv", "date,amount\n2024-05-10,0.24\n")
    import_actions(home, [tmp_path / "amd.csv"], "dividends")
    files = [
        write(tmp_path / "intc.csv", "date,amount\n2024-05-01,0.125\n"),
        write(tmp_path / "AMD_dividends.csv", "date,amount\n2024-02-09,0.24\n2024-05-10,0.0024\n"),
    ]
    with pytest.raises(MarketlakeError, match=r"AMD_dividends.csv: AMD 2024-05-10 has amount 0.24"):
        import_actions(home, files, "dividends")
    assert on_record(home, actions.DIVIDENDS) == [("AMD", dt.date(2024, 5, 10), 0.24)]


def test_two_files_of_one_import_that_disagree_are_refused(home, tmp_path):
    files = [
        write(tmp_path / "nvda.csv", "date,split_factor\n2024-06-10,10\n"),
        write(tmp_path / "nvda_splits.csv", "date,split_factor\n2024-06-10,4\n"),
    ]
    with pytest.raises(MarketlakeError, match=r"nvda_splits\.csv: NVDA 2024-06-10"):
        import_actions(home, files, "splits")
    assert not (home / "raw").exists()


# -- 6. a symbol column must agree -----------------------------------------------------------


BARS = "date,symbol,open,high,low,close,volume\n2024-06-14,{},10,11,9,10.5,100\n"


def test_bars_whose_symbol_column_names_another_symbol_are_refused(home, tmp_path):
    file = write(tmp_path / "NVDA.csv", BARS.format("AMD"))
    with pytest.raises(MarketlakeError) as caught:
        run_import(settings(home), LocalStore(home), [file], now=lambda: FRIDAY)
    message = str(caught.value)
    assert message.startswith("NVDA.csv: ") and "AMD" in message and "NVDA" in message
    assert "\n" not in message and not (home / "raw").exists()
    # --symbol is the name compared with, not the file's.
    report = run_import(settings(home), LocalStore(home), [file], "amd", now=lambda: FRIDAY)
    assert [(r.symbol, r.new_bars) for r in report.results] == [("AMD", 1)]
    with pytest.raises(MarketlakeError, match="--symbol says INTC"):
        run_import(settings(home), LocalStore(home), [file], "intc", now=lambda: FRIDAY)


def test_a_symbol_column_that_agrees_in_any_case_and_spacing_is_fine(home, tmp_path):
    file = write(tmp_path / "nvda.csv", BARS.format(" nvda "))
    report = run_import(settings(home), LocalStore(home), [file], now=lambda: FRIDAY)
    assert [(r.symbol, r.new_bars) for r in report.results] == [("NVDA", 1)]
    divs = write(tmp_path / "nvda_divs.csv", "symbol,date,amount\nNvda,2024-05-10,0.01\n,x,\n")
    env = Settings.from_env({"MARKETLAKE_HOME": str(home), "MARKETLAKE_MAX_BAD_ROW_PCT": "50"})
    landed = run_import_actions(env, LocalStore(home), [divs], "dividends", now=lambda: FRIDAY)
    assert landed == [("NVDA", 1, 1)]


@pytest.mark.parametrize(
    ("kind", "header"), [("splits", "date,split_factor"), ("dividends", "date,amount")]
)
def test_actions_whose_symbol_column_names_another_symbol_are_refused(home, tmp_path, kind, header):
    file = write(tmp_path / "NVDA.csv", f"symbol,{header}\nAMD,2024-05-10,2\n")
    with pytest.raises(MarketlakeError) as caught:
        import_actions(home, [file], kind)
    message = str(caught.value)
    assert message.startswith("NVDA.csv: its symbol column says AMD but the file name says NVDA")
    assert not (home / "raw").exists()
    assert import_actions(home, [file], kind, symbol="AMD") == [("AMD", 1, 0)]


# -- 5. an absurd dividend is flagged ---------------------------------------------------------


def test_a_dividend_above_half_the_close_is_a_warning(tmp_path):
    lake = Lake(tmp_path / "lake", history_days=60)
    lake.ingest("2024-06-14")
    land_raw(lake.store, actions.DIVIDENDS, "AMD", "2024-06-12", 1e9)
    land_raw(lake.store, actions.DIVIDENDS, "NVDA", "2024-06-12", 0.01)
    result = lake.build()
    assert result.status == "published"
    (check,) = [c for c in result.checks if c.check_name == "dividend_above_half_close"]
    assert (check.severity, check.status, check.failing_rows) == ("warning", "fail", 1)
