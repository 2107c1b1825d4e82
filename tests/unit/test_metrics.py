"""The metrics of daily_prices (sql/staging/daily_prices.sql) against an independent NumPy
implementation of issue 4's definitions, and rsi_14 against TA-Lib as well.

The SQL runs exactly as the build runs it: its `bars` input bound with sqlfiles.bind,
transpiled from Athena to DuckDB by marketlake.engines.duckdb.transpile, executed by DuckDB.
NULL and NaN are told apart (DuckDB's masked NumPy arrays), so "NULL while the window is not
full" is checked row by row, not merely "not a number".
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
import talib
from numpy.lib.stride_tricks import sliding_window_view
from sqlglot import exp

from marketlake import sqlfiles
from marketlake.engines.duckdb import DuckDBEngine, transpile
from marketlake.lake.raw import bars_to_frame, frame_to_csv, raw_key
from marketlake.sessions import sessions_between
from marketlake.wap.pipeline import run_build

# Issue 14's columns, after volume.
ADJUSTED = [
    "adj_factor",
    "adj_open",
    "adj_high",
    "adj_low",
    "adj_close",
    "adj_volume",
    "dividend",
    "dividend_yield_ttm",
]
# Issue 24's columns, after dividend_yield_ttm: tests/unit/test_earnings_metrics.py checks
# their values; with no earnings registered here they are NULL.
EARNINGS = [
    "eps_ttm",
    "pe_ratio_ttm",
    "payout_ratio_ttm",
    "eps_quarter",
    "eps_quarter_end",
    "eps_reported_date",
]
COLUMNS = [
    "symbol",
    "trade_date",
    "open",
    "high",
    "low",
    "close",
    "volume",
    *ADJUSTED,
    *EARNINGS,
    "daily_return",
    "avg_price",
    "price_change_pct",
    "log_return",
    "parkinson_vol",
    "parkinson_vol_20d",
    "garman_klass_vol_20d",
    "rogers_satchell_vol_20d",
    "yang_zhang_vol_20d",
    "hv_30d",
    "sma_5",
    "sma_20",
    "sma_50",
    "rsi_14",
    "rsi_avg_gain_14",
    "rsi_avg_loss_14",
    "volume_surge_ratio",
    "candle_type",
    "is_market_up",
    "year",
]
FLOAT_METRICS = [
    *ADJUSTED,
    "daily_return",
    "avg_price",
    "price_change_pct",
    "log_return",
    "parkinson_vol",
    "parkinson_vol_20d",
    "garman_klass_vol_20d",
    "rogers_satchell_vol_20d",
    "yang_zhang_vol_20d",
    "hv_30d",
    "sma_5",
    "sma_20",
    "sma_50",
    "rsi_avg_gain_14",
    "rsi_avg_loss_14",
    "volume_surge_ratio",
]
REL = 1e-9  # every metric but rsi_14
RSI_ABS = 1e-6
BAR_COLUMNS = ["symbol", "trade_date", "open", "high", "low", "close", "volume"]
SEED_COLUMNS = ["rsi_avg_gain_seed", "rsi_avg_loss_seed", "rsi_seeded"]

# Hand-made bars at the exact boundaries of the candle rules, with the label each must get.
CANDLES = [
    ((10.0, 10.0, 10.0, 10.0), "flat"),  # range 0
    ((15.0, 20.0, 10.0, 16.0), "doji"),  # body 1 = 0.1 * range 10
    ((16.0, 20.0, 10.0, 15.0), "doji"),
    ((15.0, 20.0, 10.0, 16.5), "bullish"),  # body 1.5 > 1: no longer a doji
    ((14.0, 18.0, 10.0, 16.0), "hammer"),  # lower 4 = 2 * body 2, upper 2 = body
    ((16.0, 18.0, 10.0, 14.0), "hammer"),  # the same, bearish
    ((12.0, 18.0, 10.0, 14.0), "shooting_star"),  # upper 4 = 2 * body, lower 2 = body
    ((14.0, 18.0, 10.0, 12.0), "shooting_star"),
    ((12.0, 17.0, 11.0, 16.0), "bullish"),
    ((16.0, 17.0, 11.0, 12.0), "bearish"),
    ((14.0, 18.0, 9.9, 16.0), "hammer"),  # lower 4.1 > 2 * body
    ((14.0, 18.1, 10.0, 16.0), "bullish"),  # upper 2.1 > body: not a hammer
]


# -- the independent reference ------------------------------------------------------------


def trailing(values: np.ndarray, n: int, reduce, *, previous: bool = False) -> np.ndarray:
    """reduce() over the last n rows (or the n rows before the current one); NaN where the
    window is not full or holds a missing value."""
    out = np.full(len(values), np.nan)
    if len(values) < n + previous:
        return out
    windows = sliding_window_view(values, n)
    if previous:
        windows = windows[:-1]
    full = ~np.isnan(windows).any(axis=1)
    start = n - 1 + previous
    result = np.full(len(windows), np.nan)
    result[full] = reduce(windows[full], axis=1)
    out[start:] = result
    return out


def wilder(close: np.ndarray, period: int = 14) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilder's RSI by its recursion: (rsi, avg_gain, avg_loss), NaN for the first `period` rows."""
    n = len(close)
    rsi, avg_gain, avg_loss = (np.full(n, np.nan) for _ in range(3))
    if n <= period:
        return rsi, avg_gain, avg_loss
    change = np.diff(close)
    gains, losses = np.maximum(change, 0.0), np.maximum(-change, 0.0)
    gain, loss = gains[:period].mean(), losses[:period].mean()
    for row in range(period, n):
        if row > period:
            gain = (13.0 * gain + gains[row - 1]) / 14.0
            loss = (13.0 * loss + losses[row - 1]) / 14.0
        avg_gain[row], avg_loss[row] = gain, loss
        if loss == 0:
            rsi[row] = 100.0 if gain > 0 else 50.0
        else:
            rsi[row] = 100.0 - 100.0 / (1.0 + gain / loss)
    return rsi, avg_gain, avg_loss


def _log_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """ln(num / den) where both are positive, NaN elsewhere."""
    ok = (num > 0) & (den > 0)
    safe_num, safe_den = np.where(ok, num, 1.0), np.where(ok, den, 1.0)
    return np.where(ok, np.log(safe_num / safe_den), np.nan)


def candle(o: float, h: float, lo: float, c: float) -> str:
    body, span = abs(c - o), h - lo
    upper, lower = h - max(o, c), min(o, c) - lo
    if span == 0:
        return "flat"
    if body <= 0.1 * span:
        return "doji"
    if lower >= 2 * body and upper <= body:
        return "hammer"
    if upper >= 2 * body and lower <= body:
        return "shooting_star"
    return "bullish" if c > o else "bearish"


# Recorded corporate actions of the test series (symbol ADJ has both kinds; SPLIT and
# LONGSPLIT split with no record, so their metrics see the jump as before).
ADJ_START = dt.date(2021, 1, 4)
ADJ_SPLITS = [
    ("ADJ", dt.date(2021, 9, 1), 10.0),  # 10:1
    ("ADJ", dt.date(2022, 3, 1), 0.25),  # 1:4 reverse
    ("ADJ", dt.date(2020, 6, 1), 2.0),  # before the first bar: every bar carries it
]
ADJ_DIVIDENDS = [
    ("ADJ", ADJ_START + dt.timedelta(days=d), a)
    for d, a in [(40, 0.5), (131, 0.5), (222, 0.52), (313, 0.06), (404, 0.06), (495, 0.25)]
] + [
    # A Saturday before a holiday Monday: it goes ex on Tuesday 2023-01-03, the next session.
    ("ADJ", dt.date(2022, 12, 31), 0.3),
    # A Sunday and the Monday after it: both go ex on that Monday, summed.
    ("ADJ", dt.date(2022, 10, 16), 0.05),
    ("ADJ", dt.date(2022, 10, 17), 0.07),
]


def next_session(day: dt.date) -> dt.date:
    """The dividend's ex-session: its date, or the next NYSE session if it is none."""
    return sessions_between(day, day + dt.timedelta(days=10))[0]


def adjustment(bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(adj_factor, dividend, dividend_yield_ttm) of one symbol's bars, from the issue."""
    symbol = bars["symbol"].iloc[0]
    days = list(bars["trade_date"])
    splits = [(d, f) for s, d, f in ADJ_SPLITS if s == symbol]

    def factor(day: dt.date) -> float:
        return float(np.prod([f for d, f in splits if d > day]))

    adj = np.array([factor(d) for d in days])
    dividends = [(next_session(d), a) for s, d, a in ADJ_DIVIDENDS if s == symbol]
    dividend = np.array([sum(a for d, a in dividends if d == day) for day in days])
    close = bars["close"].to_numpy(float)
    paid = np.array(
        [
            sum(a * adj[i] / factor(d) for d, a in dividends if day - dt.timedelta(365) < d <= day)
            for i, day in enumerate(days)
        ]
    )
    # No yield over a close that is not positive (only a stray bad bar has one): NULL.
    safe = np.where(close > 0, close, 1.0)
    return adj, dividend, np.where(close > 0, paid / safe, np.nan)


def reference(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every metric of one symbol's bars (sorted by trade_date), straight from the issue:
    on split-adjusted prices, but daily_return, avg_price and the candle as traded."""
    adj, dividend, ttm = adjustment(bars)
    to, th, tl, tc = (bars[k].to_numpy(float) for k in ("open", "high", "low", "close"))
    o, h, lo, c = to / adj, th / adj, tl / adj, tc / adj
    v = bars["volume"].to_numpy(float) * adj
    prev = np.r_[np.nan, c[:-1]]
    ln_hl = _log_ratio(h, lo)
    ln_co = _log_ratio(c, o)
    ln_o_prev = _log_ratio(o, prev)
    log_return = _log_ratio(c, prev)
    # The GK and RS terms are read only from consistent bars (0 < low <= open, close <= high).
    consistent = (lo > 0) & (lo <= o) & (lo <= c) & (h >= o) & (h >= c)
    gk = np.where(consistent, 0.5 * ln_hl**2 - (2 * np.log(2) - 1) * ln_co**2, np.nan)
    rs = np.where(
        consistent,
        _log_ratio(h, c) * _log_ratio(h, o) + _log_ratio(lo, c) * _log_ratio(lo, o),
        np.nan,
    )
    n = 20
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    var_o = trailing(ln_o_prev, n, lambda w, axis: np.var(w, axis=axis, ddof=1))
    var_c = trailing(ln_co, n, lambda w, axis: np.var(w, axis=axis, ddof=1))
    mean_rs = trailing(rs, n, np.mean)
    mean_prev_volume = trailing(v, 7, np.mean, previous=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        price_change_pct = np.where(prev != 0, 100 * (c / prev - 1), np.nan)
        surge = np.where(mean_prev_volume != 0, v / mean_prev_volume, np.nan)
    rsi, avg_gain, avg_loss = wilder(c)
    return {
        "adj_factor": adj,
        "adj_open": o,
        "adj_high": h,
        "adj_low": lo,
        "adj_close": c,
        "adj_volume": v,
        "dividend": dividend,
        "dividend_yield_ttm": ttm,
        "daily_return": tc - to,
        "avg_price": (to + th + tl + tc) / 4,
        "price_change_pct": price_change_pct,
        "log_return": log_return,
        "parkinson_vol": np.abs(ln_hl) / np.sqrt(4 * np.log(2)),
        "parkinson_vol_20d": np.sqrt(252 / (4 * np.log(2)) * trailing(ln_hl**2, 20, np.mean)),
        "garman_klass_vol_20d": np.sqrt(252 * trailing(gk, 20, np.mean)),
        "rogers_satchell_vol_20d": np.sqrt(252 * mean_rs),
        "yang_zhang_vol_20d": np.sqrt(252 * (var_o + k * var_c + (1 - k) * mean_rs)),
        "hv_30d": trailing(log_return, 30, lambda w, axis: np.std(w, axis=axis, ddof=1))
        * np.sqrt(252),
        "sma_5": trailing(c, 5, np.mean),
        "sma_20": trailing(c, 20, np.mean),
        "sma_50": trailing(c, 50, np.mean),
        "rsi_14": rsi,
        "avg_gain": avg_gain,
        "avg_loss": avg_loss,
        "rsi_avg_gain_14": avg_gain,
        "rsi_avg_loss_14": avg_loss,
        "volume_surge_ratio": surge,
        "candle_type": np.array([candle(*bar) for bar in zip(to, th, tl, tc)], dtype=object),
        "is_market_up": tc > to,
        "year": np.array([d.year for d in bars["trade_date"]]),
    }


# -- test data ------------------------------------------------------------------------------


def walk(
    rng: np.random.Generator,
    symbol: str,
    rows: int,
    *,
    start: dt.date = dt.date(2021, 1, 4),
    vol: float = 0.02,
    price: float = 100.0,
    decimals: int | None = 2,
    gap_every: int = 0,
    dates: list[dt.date] | None = None,
) -> pd.DataFrame:
    """A geometric random walk with consistent OHLC on consecutive days (or with gaps)."""
    steps = np.ones(rows, dtype=int)
    if gap_every:
        steps[rng.integers(1, rows, rows // gap_every)] = rng.integers(5, 60, rows // gap_every)
    if dates is None:
        dates = [start + dt.timedelta(days=int(d)) for d in np.cumsum(steps)]
    close = price * np.exp(np.cumsum(rng.normal(0, vol, rows)))
    open_ = np.r_[price, close[:-1]] * np.exp(rng.normal(0, vol / 3, rows))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, vol / 2, rows)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, vol / 2, rows)))
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "trade_date": dates,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(100_000, 5_000_000, rows),
        }
    )
    if decimals is not None:  # rounding is monotone: the bars stay consistent
        frame[["open", "high", "low", "close"]] = frame[["open", "high", "low", "close"]].round(
            decimals
        )
    return frame


def split(frame: pd.DataFrame, at: int, ratio: float = 10.0) -> pd.DataFrame:
    """A ratio:1 split before row `at`: prices divided, volume multiplied, never adjusted."""
    frame = frame.copy()
    for column in ("open", "high", "low", "close"):
        frame.loc[at:, column] = (frame.loc[at:, column] / ratio).round(4)
    frame.loc[at:, "volume"] = frame.loc[at:, "volume"] * int(ratio)
    return frame


def flatten(frame: pd.DataFrame, rows) -> pd.DataFrame:
    """open = high = low = close = the close on the given rows."""
    frame = frame.copy()
    for column in ("open", "high", "low"):
        frame.loc[rows, column] = frame.loc[rows, "close"]
    return frame


def make_bars(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = [
        walk(rng, "WALK", 400),
        walk(rng, "GAPS", 400, gap_every=15, vol=0.03),  # sessions missing: dates jump
        walk(rng, "CHEAP", 400, price=3.0, decimals=4, vol=0.04),
        split(walk(rng, "SPLIT", 400), 200),  # a 10:1 split in the middle
        # Past the 500-row RSI kernel after a split, at a low volatility: the kernel's
        # truncation is visible here (a 300-row kernel fails, see the test below).
        split(walk(rng, "LONGSPLIT", 1200, vol=0.004, decimals=None), 300),
        # Longer than (14/13)^rn stays finite (~9,570 rows): the powers must stay bounded.
        walk(rng, "HISTORY", 10_200, start=dt.date(1985, 1, 2), vol=0.015, decimals=None),
        flatten(walk(rng, "FLATS", 150), [3, 17, 60, *range(80, 120)]),
        walk(rng, "ONE", 1),
        walk(rng, "ONEB", 1, start=dt.date(2023, 12, 29)),
        walk(rng, "TWENTY", 20),
        walk(rng, "NOVOL", 45),
        # Recorded: a 10:1 split, then a 1:4 reverse split, and dividends (ADJ_* above).
        split(split(walk(rng, "ADJ", 700, start=ADJ_START), 240, 10.0), 421, 0.25),
    ]
    bars = pd.concat(parts, ignore_index=True)
    novol = bars.index[bars["symbol"] == "NOVOL"]
    bars.loc[novol[10:17], "volume"] = 0  # 7 sessions without trades: row 17's mean is 0
    bars.loc[novol[30], "volume"] = 0  # a quiet day after busy ones: a ratio of 0
    constant = walk(rng, "CONST", 60)  # closes never change: both RSI averages 0
    constant["close"] = 50.0
    constant["open"] = 50.0 + rng.choice([-0.5, 0.0, 0.5], 60)
    constant["high"] = np.maximum(constant["open"], 50.0) + 0.25
    constant["low"] = np.minimum(constant["open"], 50.0) - 0.25
    candles = pd.DataFrame(
        {
            "symbol": "CANDLES",
            "trade_date": [dt.date(2022, 3, 1) + dt.timedelta(days=i) for i in range(len(CANDLES))],
            "open": [bar[0] for bar, _ in CANDLES],
            "high": [bar[1] for bar, _ in CANDLES],
            "low": [bar[2] for bar, _ in CANDLES],
            "close": [bar[3] for bar, _ in CANDLES],
            "volume": 1000,
        }
    )
    return pd.concat([bars, constant, candles], ignore_index=True)


# -- running the SQL as the build does --------------------------------------------------------


def daily_prices_sql() -> str:
    return sqlfiles.load("staging/daily_prices.sql")


def run_sql(
    bars: pd.DataFrame, sql: str | None = None, seeded: bool = False
) -> dict[str, np.ndarray]:
    """The SQL over `bars` as the build runs it; columns as (masked) NumPy arrays. `seeded`:
    the bars carry rsi_14's seed columns, as an incremental build's (SEED_COLUMNS)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE input_bars (symbol VARCHAR, trade_date DATE, open DOUBLE, high DOUBLE, "
        "low DOUBLE, close DOUBLE, volume BIGINT"
        + (", rsi_avg_gain_seed DOUBLE, rsi_avg_loss_seed DOUBLE, rsi_seeded BOOLEAN" * seeded)
        + ")"
    )
    # Shuffled: the SQL must not lean on the order rows arrive in.
    columns = BAR_COLUMNS + SEED_COLUMNS * seeded
    con.register("shuffled", bars[columns].sample(frac=1.0, random_state=1))
    con.execute("INSERT INTO input_bars SELECT * FROM shuffled")
    # As the build registers them (actions.build_frames): one row per (symbol, ex_date).
    con.execute("CREATE TABLE corporate_splits (symbol VARCHAR, ex_date DATE, split_factor DOUBLE)")
    con.executemany("INSERT INTO corporate_splits VALUES (?, ?, ?)", ADJ_SPLITS)
    con.execute("CREATE TABLE corporate_dividends (symbol VARCHAR, ex_date DATE, amount DOUBLE)")
    con.executemany("INSERT INTO corporate_dividends VALUES (?, ?, ?)", ADJ_DIVIDENDS)
    # No earnings: test_earnings_metrics.py fills this table.
    con.execute(
        "CREATE TABLE corporate_earnings (symbol VARCHAR, fiscal_date_ending DATE, "
        "reported_date DATE, reported_eps DOUBLE, eps_basis_date DATE)"
    )
    # As the build registers it (wap/pipeline.py nyse_sessions_frame): the closed sessions,
    # through one on or after every dividend (the build applies none dated after them).
    con.execute("CREATE TABLE xnys_sessions (session DATE)")
    last = max([*bars["trade_date"], *(d + dt.timedelta(days=10) for _, d, _ in ADJ_DIVIDENDS)])
    con.executemany(
        "INSERT INTO xnys_sessions VALUES (?)",
        [(d,) for d in sessions_between(dt.date(2000, 1, 1), last)],
    )
    composed = sqlfiles.bind(
        sql or daily_prices_sql(),
        # As a full build supplies them: wap/new_bars.sql (nothing seeds rsi_14).
        {
            "bars": "SELECT * FROM input_bars"
            if seeded
            else sqlfiles.bind(sqlfiles.load("wap/new_bars.sql"), {"new_bars": "input_bars"})
        },
    )
    # The SQL has no ORDER BY (Parquet keeps none): line rows up with the reference here.
    ordered = f"SELECT * FROM ({composed}) AS metrics ORDER BY symbol, trade_date"
    result = con.execute(transpile(ordered))
    names = [d[0] for d in result.description]
    types = [str(d[1]) for d in result.description]
    data = result.fetchnumpy()
    con.close()
    return {"__names__": names, "__types__": types, **data}


def values(column) -> tuple[np.ndarray, np.ndarray]:
    """(is NULL, values) of a fetched column; NULL floats become NaN in the values."""
    null = np.ma.getmaskarray(column)
    data = np.ma.getdata(column)
    if data.dtype.kind == "f":
        data = np.where(null, np.nan, data)
    return null, data


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def computed(bars):
    """(SQL output, reference) aligned row by row, sorted by symbol and trade_date."""
    out = run_sql(bars)
    ordered = bars.sort_values(["symbol", "trade_date"], kind="stable").reset_index(drop=True)
    parts = [reference(group) for _, group in ordered.groupby("symbol", sort=False)]
    ref = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    ref["symbol"] = ordered["symbol"].to_numpy()
    ref["trade_date"] = ordered["trade_date"].to_numpy()
    return out, ref


def _where(ref, rows) -> str:
    rows = list(rows)[:5]
    return ", ".join(f"{ref['symbol'][i]} {ref['trade_date'][i]}" for i in rows)


# -- the file itself ------------------------------------------------------------------------


def test_the_file_is_one_trino_select_with_the_issue_columns_in_order():
    sql = daily_prices_sql()
    statements = sqlglot.parse(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert len(statements) == 1
    tree = sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(tree, exp.Select)
    assert tree.named_selects == COLUMNS
    # No named WINDOW clause; every frame is the last n rows (or the n rows before) of one
    # symbol in date order; only lag() and row_number() go without a frame.
    windows = list(tree.find_all(exp.Window))
    frames = {
        (int(w.args["spec"].args["start"].this), str(w.args["spec"].args["end"]))
        for w in windows
        if w.args.get("spec") is not None
    }
    # sma_5, the 20-row estimators, hv_30d, sma_50, the 7 volumes before, rsi_14's kernel.
    assert frames == {
        (4, "CURRENT ROW"),
        (19, "CURRENT ROW"),
        (29, "CURRENT ROW"),
        (49, "CURRENT ROW"),
        (7, "1"),
        (499, "CURRENT ROW"),
    }
    # The earnings CTEs rank quarters (newest first) per report date and per bar, and find
    # each session's previous one: frameless, and none of them a window over one symbol's
    # bars, so none reaches back rows the build's lookback must read.
    unframed = {
        (
            type(w.this).__name__,
            tuple(p.sql() for p in w.args.get("partition_by") or []),
            w.args["order"].sql(dialect="trino"),
        )
        for w in windows
        if w.args["order"].sql(dialect="trino") != "ORDER BY trade_date"
    }
    assert unframed == {
        ("RowNumber", ("k.symbol", "k.reported_date"), "ORDER BY q.fiscal_date_ending DESC"),
        ("RowNumber", ("b.symbol", "b.trade_date"), "ORDER BY r.fiscal_date_ending DESC"),
        ("Lag", (), "ORDER BY session"),
    }
    for window in windows:
        assert not window.alias, f"named window {window.alias}"
        if window.args["order"].sql(dialect="trino") != "ORDER BY trade_date":
            assert window.args.get("spec") is None, window.sql()
            continue
        assert [p.sql() for p in window.args.get("partition_by") or []] == ["symbol"]
        spec = window.args.get("spec")
        if spec is None:
            assert isinstance(window.this, (exp.Lag, exp.RowNumber)), window.sql()
            continue
        assert spec.args["kind"] == "ROWS"
        assert spec.args["start_side"] == "PRECEDING"
        assert isinstance(spec.args["start"], exp.Literal), window.sql()
        end_of_frame = (str(spec.args["end"]), spec.args.get("end_side"))
        assert end_of_frame in {("CURRENT ROW", None), ("1", "PRECEDING")}, window.sql()


def test_duckdb_runs_it_with_the_issue_columns_and_types(computed):
    out, _ = computed
    assert out["__names__"] == COLUMNS
    types = dict(zip(out["__names__"], out["__types__"]))
    assert types["symbol"] == "VARCHAR"
    assert types["trade_date"] == "DATE"
    assert types["volume"] == "BIGINT"
    assert types["candle_type"] == "VARCHAR"
    assert types["is_market_up"] == "BOOLEAN"
    assert types["year"] in ("BIGINT", "INTEGER")
    for column in [*FLOAT_METRICS, "rsi_14", "open", "high", "low", "close"]:
        assert types[column] == "DOUBLE", column


def test_rows_come_out_one_per_key(computed, bars):
    out, ref = computed
    assert len(out["symbol"]) == len(bars)
    assert list(out["symbol"]) == list(ref["symbol"])
    dates = pd.to_datetime(out["trade_date"]).date
    assert list(dates) == list(ref["trade_date"])


# -- every metric against NumPy ----------------------------------------------------------------


@pytest.mark.parametrize("metric", FLOAT_METRICS)
def test_metric_matches_numpy(computed, metric):
    out, ref = computed
    null, got = values(out[metric])
    want = ref[metric]
    assert np.isfinite(got[~null]).all(), f"{metric}: NaN or infinity where SQL gave a value"
    wrong_nulls = np.flatnonzero(null != np.isnan(want))
    assert wrong_nulls.size == 0, (
        f"{metric}: NULL where NumPy disagrees at {_where(ref, wrong_nulls)}"
    )
    assert (~null).sum() > 0, f"{metric}: never computed"
    error = np.abs(got[~null] - want[~null])
    bad = np.flatnonzero(~null)[error > REL * np.abs(want[~null])]
    assert bad.size == 0, (
        f"{metric}: relative error above {REL} at {_where(ref, bad)}: "
        f"SQL {got[bad[:3]]} vs NumPy {want[bad[:3]]}"
    )


@pytest.mark.parametrize("metric", ["candle_type", "is_market_up", "year"])
def test_exact_metric_matches_numpy(computed, metric):
    out, ref = computed
    null, got = values(out[metric])
    assert not null.any()
    assert list(got) == list(ref[metric])


def test_candle_rules_at_their_boundaries(computed):
    out, ref = computed
    rows = np.flatnonzero(ref["symbol"] == "CANDLES")
    assert [out["candle_type"][i] for i in rows] == [label for _, label in CANDLES]
    assert {label for _, label in CANDLES} == {
        "flat",
        "doji",
        "hammer",
        "shooting_star",
        "bullish",
        "bearish",
    }


def test_rsi_matches_wilder_and_talib(computed):
    out, ref = computed
    null, got = values(out["rsi_14"])
    assert list(null) == list(np.isnan(ref["rsi_14"]))
    assert np.abs(got - ref["rsi_14"])[~null].max() <= RSI_ABS
    both_zero = (ref["avg_gain"] == 0) & (ref["avg_loss"] == 0)
    assert both_zero.sum() >= 40  # the CONST symbol
    for symbol in np.unique(ref["symbol"]):
        rows = ref["symbol"] == symbol
        # On the adjusted close (ADJ splits 10:1 and 1:4; elsewhere it is the close).
        expected = talib.RSI(np.ascontiguousarray(out["adj_close"][rows], dtype=float), 14)
        assert list(np.isnan(expected)) == list(null[rows]), symbol
        ours, zero = got[rows], both_zero[rows]
        # The one documented difference: both averages 0 -> TA-Lib 0, we 50.
        assert (expected[zero] == 0).all() and (ours[zero] == 50).all(), symbol
        keep = ~np.isnan(expected) & ~zero
        worst = np.abs(ours[keep] - expected[keep]).max(initial=0.0)
        assert worst <= RSI_ABS, f"{symbol}: |rsi_14 - talib.RSI| = {worst}"


def test_rsi_at_the_seed_and_past_the_kernel(computed):
    out, ref = computed
    for symbol, row in [("WALK", 14), ("SPLIT", 14), ("LONGSPLIT", 800), ("HISTORY", 10_199)]:
        index = np.flatnonzero(ref["symbol"] == symbol)[row]
        assert out["rsi_14"][index] == pytest.approx(ref["rsi_14"][index], abs=RSI_ABS)
    first = np.flatnonzero(ref["symbol"] == "WALK")[:15]
    closes = out["close"][first]
    gains = np.maximum(np.diff(closes), 0).mean()
    losses = np.maximum(-np.diff(closes), 0).mean()
    assert out["rsi_14"][first[14]] == pytest.approx(100 * gains / (gains + losses), abs=1e-9)


@pytest.mark.parametrize(
    ("symbol", "seed_row"),
    [("WALK", 14), ("WALK", 200), ("SPLIT", 60), ("LONGSPLIT", 800), ("HISTORY", 10_150)],
)
def test_a_seeded_rsi_continues_the_full_computation(bars, computed, symbol, seed_row):
    """What an incremental build reads (wap/lookback_bars.sql): 50 bars before its first new
    one, the last of them carrying its published Wilder averages, it and every earlier row
    rsi_seeded. Every column of the rows after the seed equals the full computation's, though
    rsi_14's 500-row sums now see 51 rows. Row 14 is the first with averages (rn 15)."""
    out, ref = computed
    rows = np.flatnonzero(ref["symbol"] == symbol)
    ordered = bars[bars["symbol"] == symbol].sort_values("trade_date").reset_index(drop=True)
    part = ordered.iloc[max(seed_row - 50, 0) :].copy()
    seed = rows[seed_row]
    is_seed = part.index == seed_row
    part["rsi_avg_gain_seed"] = np.where(is_seed, out["rsi_avg_gain_14"][seed], np.nan)
    part["rsi_avg_loss_seed"] = np.where(is_seed, out["rsi_avg_loss_14"][seed], np.nan)
    part["rsi_seeded"] = part.index <= seed_row
    got = run_sql(part, seeded=True)
    after = got["trade_date"] > out["trade_date"][seed]
    assert after.sum() == len(rows) - seed_row - 1
    for column in [*FLOAT_METRICS, "rsi_14"]:
        null, mine = values(got[column][after])
        full_null, full = values(out[column][rows[seed_row + 1 :]])
        assert list(null) == list(full_null), column
        assert mine[~null] == pytest.approx(full[~null], rel=1e-12, abs=1e-300), column
    if seed_row > 50:
        # Unseeded, the cut history restarts the recursion: rsi_14 is off, so the seed is read.
        part["rsi_seeded"] = False
        restarted = run_sql(part, seeded=True)["rsi_14"][after]
        assert np.nanmax(np.abs(restarted - out["rsi_14"][rows[seed_row + 1 :]])) > 1e-6


def test_a_300_row_kernel_would_not_be_exact_on_the_split_series(bars):
    """Why the SQL keeps 500 rows: on LONGSPLIT a 300-row kernel misses by more than 1e-6."""
    close = bars.loc[bars["symbol"] == "LONGSPLIT", "close"].to_numpy(float)
    exact = wilder(close)[0]
    change = np.diff(close)
    a = 13 / 14

    def truncated(length: int) -> np.ndarray:
        rsi = np.full(len(close), np.nan)
        for row in range(14, len(close)):
            j = np.arange(max(1, row - length + 1), row + 1)  # rows with a change in the frame
            weight = a ** (row - np.maximum(j, 14)) / 14
            gain = (weight * np.maximum(change[j - 1], 0)).sum()
            loss = (weight * np.maximum(-change[j - 1], 0)).sum()
            rsi[row] = 100 * gain / (gain + loss)
        return rsi

    assert np.nanmax(np.abs(truncated(300) - exact)) > RSI_ABS
    assert np.nanmax(np.abs(truncated(500) - exact)) < RSI_ABS / 100


# -- windows that are not full --------------------------------------------------------------


def test_nothing_is_partial_on_short_histories(computed):
    out, ref = computed
    windowed = [m for m in FLOAT_METRICS if m.endswith(("_20d", "_30d")) or m.startswith("sma")]
    for symbol in ("ONE", "ONEB"):
        (row,) = np.flatnonzero(ref["symbol"] == symbol)
        for metric in [*windowed, "price_change_pct", "log_return", "rsi_14", "volume_surge_ratio"]:
            assert np.ma.getmaskarray(out[metric])[row], (symbol, metric)
        assert out["daily_return"][row] == pytest.approx(ref["daily_return"][row], rel=1e-15)
    rows = np.flatnonzero(ref["symbol"] == "TWENTY")
    nulls = {m: np.ma.getmaskarray(out[m])[rows] for m in COLUMNS[7:]}
    for metric in (
        "parkinson_vol_20d",
        "garman_klass_vol_20d",
        "rogers_satchell_vol_20d",
        "sma_20",
    ):
        assert list(nulls[metric]) == [True] * 19 + [False], metric
    # Yang-Zhang needs 20 overnight moves, so 21 rows; hv_30d 30 log returns.
    for metric in ("yang_zhang_vol_20d", "hv_30d", "sma_50"):
        assert nulls[metric].all(), metric
    assert list(nulls["sma_5"]) == [True] * 4 + [False] * 16
    assert list(nulls["rsi_14"]) == [True] * 14 + [False] * 6
    assert list(nulls["volume_surge_ratio"]) == [True] * 7 + [False] * 13


def test_volume_surge_is_null_when_the_previous_seven_sessions_had_no_volume(computed):
    out, ref = computed
    rows = np.flatnonzero(ref["symbol"] == "NOVOL")
    null, ratio = values(out["volume_surge_ratio"])
    assert null[rows[17]] and not null[rows[16]] and not null[rows[18]]
    assert ratio[rows[16]] == 0.0  # zero volume over a mean that still holds some
    assert ratio[rows[30]] == 0.0
    volume = out["volume"][rows].astype(float)
    assert ratio[rows[18]] == pytest.approx(volume[18] / volume[11:18].mean(), rel=1e-12)


def test_flat_days_and_constant_closes(computed):
    out, ref = computed
    flats = np.flatnonzero(ref["symbol"] == "FLATS")
    for row in (3, 17, 60, 80, 119):
        assert out["candle_type"][flats[row]] == "flat"
        assert out["parkinson_vol"][flats[row]] == 0.0
    # Rows 80..119 are flat: a 20-row window inside them holds only zeros.
    for metric in ("parkinson_vol_20d", "garman_klass_vol_20d", "rogers_satchell_vol_20d"):
        assert out[metric][flats[119]] == 0.0, metric
    constant = np.flatnonzero(ref["symbol"] == "CONST")
    assert list(out["rsi_14"][constant[14:]]) == [50.0] * (len(constant) - 14)
    assert list(out["hv_30d"][constant[30:]]) == [0.0] * (len(constant) - 30)
    assert (ref["avg_gain"][constant[14:]] == 0).all()


# -- bad bars reach the audit instead of breaking the write ------------------------------------


def test_a_stray_bad_bar_gives_nulls_not_errors_or_nan():
    """The build hands the SQL only bars that passed the row checks (tests/unit/test_sql.py
    checks that each kind of bad bar is excluded and feeds no window); a bad bar given to the
    SQL directly must still not fail the query or write NaN or infinity."""
    rng = np.random.default_rng(3)
    frame = walk(rng, "BAD", 60)
    frame.loc[25, "low"] = 0.0  # ln(high / 0)
    frame.loc[30, "close"] = -1.0  # ln of a negative ratio, twice
    frame.loc[35, ["high", "low"]] = frame.loc[35, ["low", "high"]].to_numpy()  # high < low
    frame.loc[40, "open"] = 0.0
    frame.loc[45, "close"] = 0.0  # the next row divides by a previous close of 0
    out = run_sql(frame)
    ref = reference(frame.reset_index(drop=True))
    for metric in FLOAT_METRICS:
        null, got = values(out[metric])
        assert np.isfinite(got[~null]).all(), metric
        # Where every input is valid the value is exact; windows over a bad bar are the
        # audit's business, not this SQL's.
        valid = ~np.isnan(ref[metric])
        assert not null[valid].any(), metric
        assert (np.abs(got[valid] - ref[metric][valid]) <= REL * np.abs(ref[metric][valid])).all()
    checked = [("parkinson_vol", 25), ("log_return", 30), ("log_return", 31)]
    for metric, row in [*checked, ("log_return", 45), ("price_change_pct", 46)]:
        assert np.ma.getmaskarray(out[metric])[row], (metric, row)


# -- the build writes it, Parquet keeps the types --------------------------------------------


def test_the_build_writes_daily_prices_with_its_types(lake_store, lake_settings):
    rng = np.random.default_rng(11)
    # NYSE sessions only: the build's row checks quarantine any other date.
    sessions = sessions_between(dt.date(2023, 10, 2), dt.date(2024, 1, 31))
    parts = {
        "AAA": flatten(walk(rng, "AAA", 70, dates=sessions[-70:]), [5]),
        "BBB": walk(rng, "BBB", 40, dates=sessions[-40:]),
    }
    stamp = "2024-01-31 22:00:00.000"
    for symbol, frame in parts.items():
        key = raw_key(dt.date(2024, 1, 31), symbol)
        lake_store.put_bytes(key, frame_to_csv(bars_to_frame(symbol, frame, "synthetic", stamp)))
    settings = lake_settings(tickers="AAA,BBB")
    with DuckDBEngine(lake_store.root) as engine:
        result = run_build(settings, lake_store, engine)
        assert result.status == "published"
        described = engine.con.execute("DESCRIBE daily_prices").fetchall()
        stored = engine.con.execute(
            "SELECT * FROM daily_prices ORDER BY symbol, trade_date"
        ).fetchnumpy()
    types = {name: kind for name, kind, *_ in described}
    assert [name for name, *_ in described] == COLUMNS
    assert types["is_market_up"] == "BOOLEAN"
    assert types["candle_type"] == "VARCHAR"
    assert types["volume"] == "BIGINT"
    assert types["year"] == "INTEGER"
    assert types["trade_date"] == "DATE"
    assert types["rsi_14"] == "DOUBLE"
    assert sorted(set(stored["year"])) == [2023, 2024]  # two partitions
    assert "flat" in set(stored["candle_type"])
    # What the lake holds is what the SQL computes over the same bars.
    direct = run_sql(pd.concat(parts.values(), ignore_index=True))
    for column in COLUMNS[2:]:
        null_stored, got = values(stored[column])
        null_direct, want = values(direct[column])
        assert list(null_stored) == list(null_direct), column
        assert list(got[~null_stored]) == list(want[~null_direct]), column
