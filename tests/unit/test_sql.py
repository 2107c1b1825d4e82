"""The shared SQL: it parses as Athena (Trino) SQL, its metrics are right, its checks block.

The metrics are checked against an independent NumPy implementation over a small raw zone
written with the ingest's own raw-zone helpers.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel, ParseError

from marketlake import sqlfiles
from marketlake.config import Settings
from marketlake.engines.duckdb import DuckDBEngine
from marketlake.errors import BuildBlocked, MarketlakeError
from marketlake.lake import raw
from marketlake.sessions import sessions_between
from marketlake.storage import LocalStore
from marketlake.wap.pipeline import CURATED_PREFIX, TABLE, run_build
from marketlake.wap.versions import load_registry

SQL_ROOT = Path(__file__).resolve().parents[2] / "sql"
SQL_FILES = sorted(SQL_ROOT.rglob("*.sql"))
CHECK_FILES = sorted((SQL_ROOT / "checks").rglob("*.sql"))
SEVERITY = re.compile(r"^--\s*severity:\s*(\S+)\s*$", re.MULTILINE)
# sql/checks/rows: a failing bar is excluded and quarantined; sql/checks/table: the version
# as a whole, blocking or warning.
ALLOWED_SEVERITIES = {"rows": {"row"}, "table": {"blocking", "warning"}}
RTOL = 1e-9
PARKINSON_FACTOR = 252.0 / (4.0 * math.log(2.0))


def check_kind(path: Path) -> str:
    return path.relative_to(SQL_ROOT / "checks").parts[0]


# -- the SQL files ------------------------------------------------------------------------


def test_the_sql_tree_is_there():
    names = {p.relative_to(SQL_ROOT).as_posix() for p in SQL_FILES}
    assert "staging/daily_prices.sql" in names
    assert len(CHECK_FILES) >= 5


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.relative_to(SQL_ROOT).as_posix())
def test_every_sql_file_parses_as_trino_and_transpiles_to_duckdb(path):
    text = path.read_text(encoding="utf-8")
    statements = [s for s in sqlglot.parse(text, read="trino", error_level=ErrorLevel.RAISE) if s]
    assert len(statements) == 1
    assert isinstance(statements[0], sqlglot.exp.Query)
    duck = sqlglot.transpile(text, read="athena", write="duckdb", error_level=ErrorLevel.RAISE)
    assert len([s for s in duck if s]) == 1
    # The DuckDB text parses back as DuckDB.
    sqlglot.parse_one(duck[0], read="duckdb", error_level=ErrorLevel.RAISE)


@pytest.mark.parametrize(
    "broken",
    [
        "SELECT symbol FROM staging_daily_prices WHERE (high >",
        "SELECT count(* FROM staging_daily_prices",
        "SELECT * FROM staging_daily_prices WHERE volume = = 0",
    ],
)
def test_broken_sql_does_fail_the_parse(broken):
    with pytest.raises(ParseError):
        sqlglot.parse(broken, read="trino", error_level=ErrorLevel.RAISE)


@pytest.mark.parametrize(
    "path", CHECK_FILES, ids=lambda p: p.relative_to(SQL_ROOT / "checks").as_posix()
)
def test_every_check_has_a_valid_severity_header(path):
    text = path.read_text(encoding="utf-8")
    found = SEVERITY.findall(text)
    assert len(found) == 1, f"{path.name}: one '-- severity:' header"
    assert check_kind(path) in ALLOWED_SEVERITIES
    assert found[0] in ALLOWED_SEVERITIES[check_kind(path)]
    assert re.search(r"^--\s*description:\s*\S", text, re.MULTILINE)


def test_sqlfiles_loads_every_check_with_its_severity():
    for kind in ALLOWED_SEVERITIES:
        files = [p for p in CHECK_FILES if check_kind(p) == kind]
        loaded = {c.name: c.severity for c in sqlfiles.checks(kind)}
        assert set(loaded) == {p.stem for p in files}
        for path in files:
            assert loaded[path.stem] == SEVERITY.findall(path.read_text(encoding="utf-8"))[0]
    assert any(c.severity == "blocking" for c in sqlfiles.checks("table"))


@pytest.mark.parametrize(
    ("kind", "header"),
    [
        ("rows", "-- severity: blocking"),  # a row check only excludes rows
        ("table", "-- severity: fatal"),
        ("table", "-- description: no severity"),
    ],
)
def test_a_check_without_a_valid_severity_is_refused(tmp_path, monkeypatch, kind, header):
    (tmp_path / "staging").mkdir()
    (tmp_path / "checks" / kind).mkdir(parents=True)
    (tmp_path / "checks" / kind / "odd.sql").write_text(f"{header}\nSELECT 1 AS x\n")
    monkeypatch.setattr(sqlfiles, "sql_root", lambda: tmp_path)
    with pytest.raises(MarketlakeError, match=r"odd\.sql"):
        sqlfiles.checks(kind)


PARAMETERS = re.compile(r"^--\s*parameters:\s*(.+?)\s*$", re.MULTILINE)


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.relative_to(SQL_ROOT).as_posix())
def test_every_parameter_marker_is_named_in_the_header(path):
    """A `?` marker is bound by name (sqlfiles.bind): the header names each, in order."""
    text = path.read_text(encoding="utf-8")
    markers = list(sqlglot.parse_one(text, read="trino").find_all(sqlglot.exp.Placeholder))
    named = PARAMETERS.findall(text)
    names = [n.strip() for n in named[0].split(",")] if named else []
    assert len(named) <= 1 and len(markers) == len(names), path.name


def test_bind_puts_each_named_value_at_its_marker_as_a_literal():
    sql = (
        "-- parameters: since, after, after, year\n"
        "SELECT * FROM raw WHERE d >= ? AND (? IS NULL OR t > ?) AND y = ?"
    )
    bound = sqlfiles.bind(
        sql, {"raw": "other"}, {"since": "2024-01-02", "after": "it's", "year": 2024}
    )
    assert bound.endswith(
        "FROM other AS raw WHERE d >= '2024-01-02' AND ('it''s' IS NULL OR t > 'it''s') "
        "AND y = 2024"
    )
    unset = sqlfiles.bind(sql, {}, {"since": "x", "after": None, "year": 1})
    assert "(NULL IS NULL OR t > NULL)" in unset


NAMED = "-- parameters: since, after\nSELECT * FROM raw WHERE d >= ? AND t > ?"


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        (NAMED, None),  # no values
        (NAMED, {"since": "x"}),  # one value missing
        ("SELECT * FROM raw WHERE d >= ? AND t > ?", {"since": "x", "after": "y"}),  # no header
    ],
)
def test_bind_refuses_a_marker_without_a_name_or_a_value(sql, parameters):
    with pytest.raises(MarketlakeError, match="parameters"):
        sqlfiles.bind(sql, {}, parameters)


def test_bind_takes_a_check_file_with_its_header_comments_as_a_subquery():
    check = sqlfiles.checks("rows")[0]
    keys = sqlfiles.bind(sqlfiles.load("wap/rejected_keys.sql"), {"failing_bars": check.sql})
    assert "FROM (" in keys and ") AS failing_bars" in keys


# -- how far back the windows reach (an incremental build's lookback) --------------------

FRAME = "ROWS BETWEEN {} PRECEDING AND CURRENT ROW"


def test_the_metrics_reach_back_their_longest_frame_plus_the_lag_under_it():
    # rsi_14's 499-row kernel over changes from the previous close (lag 1, a CTE below): 500.
    # report_bars' previous bar (lag 1) and previous NYSE session (lag 1 over xnys_sessions,
    # not the bars) add 2: the analysis sums the reach of every windowed SELECT, siblings too,
    # so it errs long (two rows more of lookback), never short.
    assert sqlfiles.longest_lookback(sqlfiles.load("staging/daily_prices.sql")) == 502


@pytest.mark.parametrize(
    ("sql", "reach"),
    [
        # A short lag counts: a lag without an offset reaches one row.
        ("SELECT lag(x) OVER (PARTITION BY s ORDER BY d) FROM t", 1),
        ("SELECT lag(x, 4) OVER (ORDER BY d), row_number() OVER (ORDER BY d) FROM t", 4),
        # Frame and lag in one SELECT.
        (
            "SELECT lag(x, 3) OVER (ORDER BY d), "
            f"avg(x) OVER (ORDER BY d {FRAME.format(9)}) FROM t",
            12,
        ),
        # A frame over a lag of the SELECT below: the reaches chain.
        (
            "WITH a AS (SELECT d, lag(x, 2) OVER (ORDER BY d) AS p FROM t), "
            f"b AS (SELECT d, avg(p) OVER (ORDER BY d {FRAME.format(4)}) AS m FROM a) "
            f"SELECT sum(m) OVER (ORDER BY d {FRAME.format(6)}) FROM b",
            12,
        ),
        ("SELECT avg(x) OVER (ORDER BY d ROWS BETWEEN 7 PRECEDING AND 1 PRECEDING) FROM t", 7),
        ("SELECT x FROM t", 0),
    ],
)
def test_longest_lookback_counts_every_frame_and_lag(sql, reach):
    assert sqlfiles.longest_lookback(sql) == reach


@pytest.mark.parametrize(
    ("window", "why"),
    [
        ("lead(x) OVER (ORDER BY d)", "later rows"),
        ("avg(x) OVER (ORDER BY d ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING)", "later rows"),
        ("sum(x) OVER (ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)", "bound"),
        ("sum(x) OVER (ORDER BY d RANGE BETWEEN 3 PRECEDING AND CURRENT ROW)", "bound"),
        ("sum(x) OVER (PARTITION BY s ORDER BY d)", "all history"),
        ("lag(x, n) OVER (ORDER BY d)", "number of rows"),
    ],
)
def test_a_window_without_a_bound_in_earlier_rows_is_refused(window, why):
    with pytest.raises(MarketlakeError, match=why):
        sqlfiles.longest_lookback(f"SELECT {window} FROM t")


# -- a small raw zone ---------------------------------------------------------------------

START = dt.date(2024, 1, 2)
LENGTHS = {"AAA": 45, "BBB": 30, "CCC": 12}  # CCC never fills a 20-row window
FIRST_INGEST = dt.date(2024, 4, 1)
FIRST_STAMP = "2024-04-01 21:00:00.000"
LATER_STAMP = "2024-04-02 21:00:00.000"
TRICKY_SOURCE = 'import, "v2"'


def random_bars(rng: np.random.Generator, days: list[dt.date]) -> pd.DataFrame:
    n = len(days)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
    return pd.DataFrame(
        {
            "trade_date": days,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(1_000, 5_000_000, n).astype("int64"),
        }
    )


def put_raw(store: LocalStore, ingest_date: dt.date, symbol: str, frame: pd.DataFrame) -> None:
    store.put_bytes(raw.raw_key(ingest_date, symbol), raw.frame_to_csv(frame))


def write_raw_zone(store: LocalStore) -> dict[str, pd.DataFrame]:
    """Land the raw objects; return the bars the build should keep, per symbol."""
    rng = np.random.default_rng(20240401)
    days = sessions_between(START, START + dt.timedelta(days=90))
    truth = {}
    for symbol, n in LENGTHS.items():
        bars = random_bars(rng, days[:n])
        source = TRICKY_SOURCE if symbol == "BBB" else "synthetic"
        put_raw(store, FIRST_INGEST, symbol, raw.bars_to_frame(symbol, bars, source, FIRST_STAMP))
        truth[symbol] = bars

    # AAA, row 25: a corrected copy lands the next day, later ingested_at: it must win.
    fix = random_bars(rng, [days[25]])
    put_raw(
        store, dt.date(2024, 4, 2), "AAA", raw.bars_to_frame("AAA", fix, "synthetic", LATER_STAMP)
    )
    truth["AAA"].iloc[25] = fix.iloc[0]
    # BBB, row 10: a later ingested_at wins even from an older ingest_date folder.
    fix = random_bars(rng, [days[10]])
    put_raw(
        store, dt.date(2024, 3, 29), "BBB", raw.bars_to_frame("BBB", fix, "synthetic", LATER_STAMP)
    )
    truth["BBB"].iloc[10] = fix.iloc[0]
    return truth


def expected_metrics(truth: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The metrics, computed here with NumPy, independently of the SQL."""
    frames = []
    for symbol in sorted(truth):
        bars = truth[symbol].sort_values("trade_date").reset_index(drop=True)
        o, h, lo, c = (bars[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
        squared = np.log(h / lo) ** 2
        parkinson = np.full(len(bars), np.nan)
        for i in range(19, len(bars)):
            parkinson[i] = np.sqrt(PARKINSON_FACTOR * squared[i - 19 : i + 1].mean())
        frames.append(
            bars.assign(
                symbol=symbol,
                daily_return=c - o,
                avg_price=(o + h + lo + c) / 4.0,
                parkinson_vol_20d=parkinson,
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    home = tmp_path_factory.mktemp("lake")
    store = LocalStore(home)
    truth = write_raw_zone(store)
    settings = Settings.from_env({}, home=home)
    with DuckDBEngine(home) as engine:
        result = run_build(settings, store, engine)
        table = engine.fetch_df(
            "SELECT symbol, trade_date, open, high, low, close, volume, daily_return, "
            "avg_price, parkinson_vol_20d FROM daily_prices ORDER BY symbol, trade_date"
        )
    table["trade_date"] = [pd.Timestamp(d).date() for d in table["trade_date"]]
    return result, table, expected_metrics(truth)


def test_the_build_publishes_one_row_per_symbol_and_day(built):
    result, table, expected = built
    assert result.status == "published"
    assert result.rows_written == sum(LENGTHS.values())
    assert len(table) == sum(LENGTHS.values())
    assert list(zip(table["symbol"], table["trade_date"])) == list(
        zip(expected["symbol"], expected["trade_date"])
    )
    # Nothing was excluded and nothing blocks (CCC lagging behind may warn).
    assert result.rows_quarantined == 0
    assert not [
        c.check_name for c in result.checks if c.status == "fail" and c.severity != "warning"
    ]


def test_the_dedupe_keeps_the_copy_with_the_later_ingested_at(built):
    _, table, expected = built
    for symbol, row in (("AAA", 25), ("BBB", 10)):
        got = table[table["symbol"] == symbol].reset_index(drop=True).iloc[row]
        want = expected[expected["symbol"] == symbol].reset_index(drop=True).iloc[row]
        assert got["trade_date"] == want["trade_date"]
        for column in ("open", "high", "low", "close"):
            assert got[column] == want[column], (symbol, column)
        assert got["volume"] == want["volume"]


def test_prices_and_volumes_arrive_exactly(built):
    _, table, expected = built
    for column in ("open", "high", "low", "close"):
        assert (table[column].to_numpy() == expected[column].to_numpy()).all(), column
    assert (table["volume"].to_numpy() == expected["volume"].to_numpy()).all()


@pytest.mark.parametrize("column", ["daily_return", "avg_price", "parkinson_vol_20d"])
def test_metric_matches_numpy(built, column):
    _, table, expected = built
    got = table[column].to_numpy(dtype=float)
    want = expected[column].to_numpy(dtype=float)
    assert (np.isnan(got) == np.isnan(want)).all()
    both = ~np.isnan(want)
    assert both.sum() > 0
    np.testing.assert_allclose(got[both], want[both], rtol=RTOL, atol=0)


def test_parkinson_is_null_until_its_window_is_full(built):
    _, table, _ = built
    for symbol, n in LENGTHS.items():
        values = table.loc[table["symbol"] == symbol, "parkinson_vol_20d"].to_numpy(dtype=float)
        assert len(values) == n
        if n < 20:
            assert np.isnan(values).all(), symbol
        else:
            assert np.isnan(values[:19]).all(), symbol
            assert not np.isnan(values[19:]).any(), symbol
            assert (values[19:] > 0).all()


# -- audit: row checks, the bad-row share, blocking -----------------------------------------

BLOCK_START = dt.date(2024, 2, 1)
BLOCK_DAYS = sessions_between(BLOCK_START, dt.date(2024, 7, 31))
RUN_TABLES_SQL = "SELECT run_id, status, mode, checks_failed, message FROM pipeline_runs"


def build(settings: Settings, store: LocalStore):
    """One build on a fresh engine, as one CLI process runs it."""
    with DuckDBEngine(store.root) as engine:
        return run_build(settings, store, engine)


def query(store: LocalStore, sql: str) -> pd.DataFrame:
    with DuckDBEngine(store.root) as engine:
        return engine.fetch_df(sql)


def snapshot(store: LocalStore):
    """What a reader sees, and what the lake keeps."""
    table = query(store, "SELECT * FROM daily_prices ORDER BY symbol, trade_date")
    versions = store.list_prefixes(CURATED_PREFIX + "/")
    return table, versions, load_registry(store, TABLE).current


def assert_windows_over_published_rows_alone(store: LocalStore) -> pd.DataFrame:
    """Each window equals one over the published rows alone, so an excluded bar is in none."""
    table = query(
        store,
        "SELECT trade_date, high, low, close, volume, sma_5, parkinson_vol_20d, "
        "volume_surge_ratio FROM daily_prices ORDER BY trade_date",
    )
    np.testing.assert_allclose(table["sma_5"][4:], table["close"].rolling(5).mean()[4:], rtol=1e-12)
    hl2 = np.log(table["high"] / table["low"]) ** 2
    parkinson = np.sqrt(252 / (4 * np.log(2)) * hl2.rolling(20).mean())
    np.testing.assert_allclose(table["parkinson_vol_20d"][19:], parkinson[19:], rtol=1e-9)
    volume = table["volume"].astype(float)
    surge = volume / volume.rolling(7).mean().shift(1)
    np.testing.assert_allclose(table["volume_surge_ratio"][7:], surge[7:], rtol=1e-12)
    return table


def _breaking(kind: str, bars: pd.DataFrame) -> pd.DataFrame:
    bad = bars.copy()
    if kind == "high_below_low":
        bad["high"] = bad["low"] * 0.9
    elif kind == "low_above_open_and_close":
        bad["low"] = np.maximum(bad["open"], bad["close"]) * 1.01
        bad["high"] = bad["low"] * 1.01
    elif kind == "zero_low":
        bad["low"] = 0.0
    elif kind == "negative_volume":
        bad["volume"] = -100
    return bad


@pytest.fixture
def published(tmp_path):
    """A lake with one published version: 30 good rows of AAA."""
    store = LocalStore(tmp_path)
    bars = random_bars(np.random.default_rng(11), BLOCK_DAYS[:30])
    put_raw(store, dt.date(2024, 4, 1), "AAA", raw.bars_to_frame("AAA", bars, "s", FIRST_STAMP))
    settings = Settings.from_env({}, home=tmp_path)
    first = build(settings, store)
    assert first.status == "published"
    return settings, store, bars, first


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("high_below_low", "high_is_highest"),
        ("low_above_open_and_close", "low_is_lowest"),
        ("zero_low", "prices_positive"),
        ("negative_volume", "volume_non_negative"),
        ("unreadable_price", "prices_positive"),
        # Both read as doubles; DuckDB orders NaN above every number, so only the
        # finiteness test in prices_positive stops them.
        ("nan_price", "prices_positive"),
        ("infinite_price", "prices_positive"),
        ("bad_dates_and_one_good_row", "keys_not_null"),
        # Regression: an incremental run whose new rows all had unreadable dates built from
        # new_bars alone and failed with "the build produced no rows" instead of blocking.
        ("bad_date", "keys_not_null"),
    ],
)
def test_bad_new_rows_block_the_build_and_the_published_data_stays(published, kind, check):
    settings, store, _, first = published
    before_table, before_versions, before_current = snapshot(store)

    # Three new sessions, all bad: far past the share of bad rows a run may exclude.
    new = random_bars(np.random.default_rng(12), BLOCK_DAYS[30:33])
    frame = raw.bars_to_frame("AAA", _breaking(kind, new), "s", LATER_STAMP)
    if kind == "bad_date":
        frame["trade_date"] = ["2024-02-30", "2024-13-01", "yesterday"]
    elif kind == "bad_dates_and_one_good_row":
        frame = raw.bars_to_frame("AAA", new, "s", LATER_STAMP)
        frame.loc[:1, "trade_date"] = ["2024-02-30", "yesterday"]
    elif kind == "unreadable_price":
        frame["open"] = "n/a"
    elif kind == "nan_price":
        frame["high"] = "NaN"
    elif kind == "infinite_price":
        frame[["high", "close"]] = "Infinity"
    put_raw(store, dt.date(2024, 4, 2), "AAA", frame)

    with pytest.raises(BuildBlocked) as info:
        build(settings, store)
    assert "bad_row_share" in str(info.value)
    assert first.run_id in str(info.value)

    after_table, after_versions, after_current = snapshot(store)
    pd.testing.assert_frame_equal(after_table, before_table)
    assert after_versions == before_versions == [f"version={first.run_id}"]
    assert after_current == before_current == first.run_id

    runs = query(store, RUN_TABLES_SQL)
    blocked = runs[runs["status"] == "blocked"]
    assert len(blocked) == 1
    blocked_id = blocked["run_id"].iloc[0]
    assert blocked_id != first.run_id
    assert blocked["checks_failed"].iloc[0] >= 2
    assert "bad_row_share" in blocked["message"].iloc[0]
    assert not (store.root / CURATED_PREFIX / f"version={blocked_id}").exists()
    assert store.list_objects(f"{CURATED_PREFIX}/version={blocked_id}") == []

    results = query(
        store,
        "SELECT check_name, severity, status, failing_rows, sample FROM dq_results "
        f"WHERE run_id = '{blocked_id}'",
    ).set_index("check_name")
    expected = {c.name for c in sqlfiles.checks("rows")} | {
        c.name for c in sqlfiles.checks("table")
    }
    assert expected | {"bad_row_share", "raw_rows_readable"} == set(results.index)
    assert results.loc[check, "status"] == "fail"
    assert results.loc[check, "severity"] == "row"
    assert results.loc[check, "failing_rows"] >= 1
    assert results.loc[check, "sample"] not in ("", "[]")
    assert results.loc["bad_row_share", "status"] == "fail"
    assert results.loc["bad_row_share", "severity"] == "blocking"


def test_a_few_bad_rows_are_excluded_and_quarantined_without_blocking(published):
    settings, store, bars, first = published
    new = random_bars(np.random.default_rng(13), BLOCK_DAYS[30:90])
    bad_day = BLOCK_DAYS[60]
    new.loc[new["trade_date"] == bad_day, "volume"] = -7  # 1 bad row of 60: under 5%
    put_raw(store, dt.date(2024, 7, 1), "AAA", raw.bars_to_frame("AAA", new, "s", LATER_STAMP))

    result = build(settings, store)
    assert result.status == "published"
    assert result.rows_quarantined == 1
    assert result.version != first.run_id

    table = query(store, "SELECT trade_date, volume FROM daily_prices ORDER BY trade_date")
    days = [pd.Timestamp(d).date() for d in table["trade_date"]]
    assert bad_day not in days
    assert len(days) == len(bars) + len(new) - 1
    assert (table["volume"] >= 0).all()

    quarantined = query(
        store,
        "SELECT check_name, symbol, trade_date, volume FROM quarantined_rows "
        f"WHERE run_id = '{result.run_id}'",
    )
    assert list(quarantined["check_name"]) == ["volume_non_negative"]
    assert pd.Timestamp(quarantined["trade_date"].iloc[0]).date() == bad_day
    assert list(quarantined["volume"]) == [-7]
    assert_windows_over_published_rows_alone(store)
    checks = {c.check_name: c for c in result.checks}
    assert checks["volume_non_negative"].status == "fail"
    assert checks["bad_row_share"].status == "pass"


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("high_below_low", "high_is_highest"),
        ("low_above_open_and_close", "low_is_lowest"),
        ("zero_low", "prices_positive"),
        ("negative_volume", "volume_non_negative"),
        ("nan_price", "prices_positive"),
    ],
)
def test_an_excluded_bar_feeds_no_window(published, kind, check):
    """The metrics SQL trusts its input (windows are full by row number): each row check must
    keep its kind of bad bar out of every window."""
    settings, store, _, _ = published
    new = random_bars(np.random.default_rng(15), BLOCK_DAYS[30:90])
    bad_day = BLOCK_DAYS[60]
    is_bad = (new["trade_date"] == bad_day).to_numpy()
    if kind != "nan_price":
        new.loc[is_bad] = _breaking(kind, new.loc[is_bad])
    frame = raw.bars_to_frame("AAA", new, "s", LATER_STAMP)
    if kind == "nan_price":
        frame.loc[is_bad, "high"] = "NaN"
    put_raw(store, dt.date(2024, 7, 1), "AAA", frame)

    result = build(settings, store)
    assert result.rows_quarantined == 1
    assert {c.check_name: c.status for c in result.checks}[check] == "fail"
    table = assert_windows_over_published_rows_alone(store)
    assert bad_day not in {pd.Timestamp(d).date() for d in table["trade_date"]}


def test_a_bad_copy_of_a_published_bar_never_erases_it(published):
    settings, store, bars, _ = published
    more = random_bars(np.random.default_rng(14), BLOCK_DAYS[30:90])
    put_raw(store, dt.date(2024, 7, 1), "AAA", raw.bars_to_frame("AAA", more, "s", LATER_STAMP))
    broken = raw.bars_to_frame(
        "AAA", _breaking("negative_volume", bars.iloc[[5]]), "s", LATER_STAMP
    )
    put_raw(store, dt.date(2024, 7, 1), "AAB", broken.assign(symbol="AAA"))
    day = BLOCK_DAYS[5]

    try:
        build(settings, store)
    except BuildBlocked as exc:
        assert "no_lost_history" in str(exc)
    table = query(store, f"SELECT volume FROM daily_prices WHERE trade_date = DATE '{day}'")
    assert list(table["volume"]) == [bars["volume"].iloc[5]]


def test_a_rerun_with_unchanged_raw_data_is_skipped(published):
    settings, store, _, first = published
    before = snapshot(store)
    again = build(settings, store)
    assert again.status == "skipped"
    assert again.version == first.run_id
    assert again.rows_written == 0
    after = snapshot(store)
    pd.testing.assert_frame_equal(after[0], before[0])
    assert after[1:] == before[1:]
    runs = query(store, "SELECT run_id, status, version FROM pipeline_runs")
    skipped = runs[runs["status"] == "skipped"]
    assert list(skipped["run_id"]) == [again.run_id]
    assert list(skipped["version"]) == [first.run_id]


def test_new_raw_data_is_not_skipped(published):
    settings, store, bars, first = published
    extra = random_bars(np.random.default_rng(3), [BLOCK_DAYS[40]])
    put_raw(store, dt.date(2024, 4, 2), "AAA", raw.bars_to_frame("AAA", extra, "s", LATER_STAMP))
    again = build(settings, store)
    assert again.status == "published"
    assert again.run_id != first.run_id
    assert load_registry(store, TABLE).current == again.run_id
    table = query(store, "SELECT count(*) AS n FROM daily_prices")
    assert table["n"].iloc[0] == len(bars) + 1


# Regression: the first build left published_daily_prices as a TEMP TABLE and the next build
# on the same engine failed to replace it with a TEMP VIEW.
def test_two_builds_on_one_engine(tmp_path):
    store = LocalStore(tmp_path)
    settings = Settings.from_env({}, home=tmp_path)
    bars = random_bars(np.random.default_rng(15), BLOCK_DAYS[:30])
    put_raw(store, dt.date(2024, 4, 1), "AAA", raw.bars_to_frame("AAA", bars, "s", FIRST_STAMP))
    with DuckDBEngine(tmp_path) as engine:
        assert run_build(settings, store, engine).status == "published"
        extra = random_bars(np.random.default_rng(16), BLOCK_DAYS[30:35])
        frame = raw.bars_to_frame("AAA", extra, "s", LATER_STAMP)
        put_raw(store, dt.date(2024, 4, 2), "AAA", frame)
        assert run_build(settings, store, engine).status == "published"
