"""The peer the build is measured against: daily_prices' columns in Polars, written the way a
user would write them (scan_csv of the raw zone, dedupe, rolling_* and ewm_mean over symbol, a
Parquet write partitioned by year). Bench-only: Polars is a dev dependency, never a runtime one.

Same definitions as sql/staging/daily_prices.sql, split adjustment, dividends and earnings
(eps_ttm, pe_ratio_ttm, payout_ratio_ttm, eps_quarter*) included, so
tests/unit/test_polars_peer.py can hold the two to 1e-9. RSI uses ewm_mean with Wilder's seed
put in by hand (the mean of the first 14 gains at row 15, nothing before), which makes it exact
rather than close.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl

from marketlake.lake import earnings, raw
from marketlake.sessions import sessions_between

# Every raw column as text, as the build reads them.
RAW_COLUMNS = {column: pl.String for column in raw.RAW_COLUMNS}
ACTIONS = {
    "splits": ("effective_date", "split_factor"),
    "dividends": ("ex_dividend_date", "amount"),
}
YZ_K = 0.34 / (1.34 + 21 / 19)


def _scan(lake: Path, zone: str, schema: dict) -> pl.LazyFrame | None:
    if not any((lake / "raw" / zone).glob("*/*.csv")):
        return None
    return pl.scan_csv(str(lake / "raw" / zone / "*" / "*.csv"), schema=schema)


def _latest_copy(frame: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    return frame.sort([*keys, "ingested_at"]).unique(subset=keys, keep="last", maintain_order=True)


def _actions(lake: Path, kind: str) -> pl.DataFrame:
    date_column, value_column = ACTIONS[kind]
    schema = {"symbol": pl.String, date_column: pl.String, value_column: pl.String}
    schema |= {"source": pl.String, "ingested_at": pl.String}
    scan = _scan(lake, kind, schema)
    if scan is None:
        return pl.DataFrame(
            {"symbol": [], "ex_date": [], "value": []},
            schema={"symbol": pl.String, "ex_date": pl.Date, "value": pl.Float64},
        )
    return (
        _latest_copy(scan, ["symbol", date_column])
        .select(
            pl.col("symbol").str.strip_chars().str.to_uppercase(),
            pl.col(date_column).str.to_date().alias("ex_date"),
            pl.col(value_column).cast(pl.Float64).alias("value"),
        )
        .sort("symbol", "ex_date")
        .collect()
    )


def _earnings(lake: Path) -> pl.DataFrame:
    """The latest copy of each (symbol, quarter): symbol, fiscal, reported, eps, basis."""
    scan = _scan(lake, "earnings", {column: pl.String for column in earnings.COLUMNS})
    names = ("fiscal", "reported", "basis")
    if scan is None:
        schema = {"symbol": pl.String, "eps": pl.Float64} | {n: pl.Date for n in names}
        return pl.DataFrame({n: [] for n in schema}, schema=schema)
    return (
        _latest_copy(scan, ["symbol", "fiscal_date_ending"])
        .select(
            pl.col("symbol").str.strip_chars().str.to_uppercase(),
            pl.col("fiscal_date_ending").str.to_date().alias("fiscal"),
            pl.col("reported_date").str.to_date().alias("reported"),
            pl.col("reported_eps").cast(pl.Float64).alias("eps"),
            pl.col("eps_basis_date").str.to_date().alias("basis"),
        )
        .collect()
    )


def _with_earnings(df: pl.DataFrame, reports: pl.DataFrame) -> pl.DataFrame:
    """Adds adj_eps_ttm (the TTM at the adjusted scale, where four consecutive recent
    quarters are known before the bar) and the eps_quarter columns of the first bar after
    each report. `reports` carry adj_eps = eps / adj_factor(basis)."""
    # Every date a symbol reported on, with the four newest quarters known then.
    known = (
        reports.select("symbol", pl.col("reported").alias("known_from"))
        .unique()
        .join(reports, on="symbol")
        .filter(pl.col("reported") <= pl.col("known_from"))
        .sort("fiscal", descending=True)
        .group_by("symbol", "known_from", maintain_order=True)
        .head(4)
        .group_by("symbol", "known_from")
        .agg(
            pl.len().alias("quarters"),
            pl.col("adj_eps").sum().alias("adj_eps_4q"),
            pl.col("fiscal").max().alias("newest"),
            pl.col("fiscal").min().alias("oldest"),
        )
        .sort("known_from")
    )
    df = df.sort("trade_date").join_asof(
        known,
        left_on="trade_date",
        right_on="known_from",
        by="symbol",
        strategy="backward",
        allow_exact_matches=False,  # a report counts from the session after it
        check_sortedness=False,
    )
    full = (
        (pl.col("quarters") == 4)
        & ((pl.col("newest") - pl.col("oldest")).dt.total_days() <= 300)
        & (pl.col("newest") >= pl.col("trade_date") - pl.duration(days=365))
    )
    df = df.with_columns(pl.when(full).then(pl.col("adj_eps_4q")).alias("adj_eps_ttm"))
    df = df.drop("known_from", "quarters", "adj_eps_4q", "newest", "oldest")
    # Each report on the symbol's first bar after it; on a symbol's first bar only a report
    # of the session before it or later (older ones predate the symbol's history).
    firsts = df.sort("symbol", "trade_date").group_by("symbol").agg(pl.col("trade_date").first())
    before_first = {
        (symbol, day): sessions_between(day - dt.timedelta(days=10), day)[-2]
        for symbol, day in firsts.iter_rows()
    }
    bars = df.select("symbol", "trade_date").sort("symbol", "trade_date")
    bars = bars.with_columns(pl.col("trade_date").shift(1).over("symbol").alias("previous"))
    shown = (
        reports.sort("reported")
        .join_asof(
            bars.sort("trade_date"),
            left_on="reported",
            right_on="trade_date",
            by="symbol",
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .filter(pl.col("trade_date").is_not_null())
    )
    keep = [
        previous is not None or reported >= before_first[(symbol, day)]
        for symbol, day, reported, previous in shown.select(
            "symbol", "trade_date", "reported", "previous"
        ).iter_rows()
    ]
    shown = (
        shown.filter(pl.Series(keep, dtype=pl.Boolean))
        .sort("fiscal", descending=True)
        .unique(subset=["symbol", "trade_date"], keep="first")
        .select(
            "symbol",
            "trade_date",
            pl.col("adj_eps").alias("adj_eps_quarter"),
            pl.col("fiscal").alias("eps_quarter_end"),
            pl.col("reported").alias("eps_reported_date"),
        )
    )
    return df.join(shown, on=["symbol", "trade_date"], how="left")


def daily_prices(lake: Path) -> pl.DataFrame:
    """daily_prices of the raw zone under `lake`, with the build's columns in its order."""
    bars = (
        _latest_copy(_scan(lake, "daily_prices", RAW_COLUMNS), ["symbol", "trade_date"])
        .select(
            pl.col("symbol").str.strip_chars().str.to_uppercase(),
            pl.col("trade_date").str.to_date(),
            *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close")),
            pl.col("volume").cast(pl.Int64),
        )
        .sort("symbol", "trade_date")
        .collect()
    )

    # adj_factor of a bar: the product of every later split's factor, i.e. the suffix product
    # at the first split after the bar (strictly: a split's day is at the new scale).
    splits = (
        _actions(lake, "splits")
        .filter(pl.col("value") > 0)
        .with_columns(
            pl.col("value").log().reverse().cum_sum().reverse().over("symbol").exp().alias("adj")
        )
        .select("symbol", "ex_date", "adj")
    )

    def factor_after(frame: pl.DataFrame, on: str) -> pl.DataFrame:
        return frame.join_asof(
            splits,
            left_on=on,
            right_on="ex_date",
            by="symbol",
            strategy="forward",
            allow_exact_matches=False,
            coalesce=False,
            check_sortedness=False,  # sorted by `on` within each symbol above
        ).with_columns(pl.col("adj").fill_null(1.0).alias("adj_factor"))

    dividends = _actions(lake, "dividends")
    adjusted_dividends = (
        factor_after(dividends.sort("ex_date"), "ex_date")
        .select(
            "symbol",
            pl.col("ex_date").alias("div_date"),
            (pl.col("value") / pl.col("adj_factor")).alias("adj_amount"),
        )
        .sort("symbol", "div_date")
        .with_columns(pl.col("adj_amount").cum_sum().over("symbol").alias("cum"))
    )

    def dividends_through(frame: pl.DataFrame, on: str, name: str) -> pl.DataFrame:
        """Adds `name`: the adjusted dividends gone ex on or before column `on`."""
        joined = frame.join_asof(
            adjusted_dividends.select("symbol", "div_date", "cum"),
            left_on=on,
            right_on="div_date",
            by="symbol",
            strategy="backward",
            coalesce=False,
            check_sortedness=False,  # sorted by `on` within each symbol above
        )
        return joined.with_columns(pl.col("cum").fill_null(0.0).alias(name)).drop("div_date", "cum")

    df = factor_after(bars.sort("trade_date"), "trade_date").drop("ex_date", "adj")
    df = df.join(
        dividends.rename({"ex_date": "trade_date", "value": "dividend"}),
        on=["symbol", "trade_date"],
        how="left",
    ).with_columns(pl.col("dividend").fill_null(0.0))
    df = dividends_through(df, "trade_date", "cum_now")
    df = df.with_columns((pl.col("trade_date") - pl.duration(days=365)).alias("year_ago"))
    df = dividends_through(df.sort("year_ago"), "year_ago", "cum_then")
    reports = factor_after(_earnings(lake).sort("basis"), "basis").with_columns(
        (pl.col("eps") / pl.col("adj_factor")).alias("adj_eps")
    )
    df = _with_earnings(df, reports.drop("ex_date", "adj", "adj_factor"))
    df = df.sort("symbol", "trade_date")

    o, h, lo, c = (pl.col(f"adj_{x}") for x in ("open", "high", "low", "close"))
    prev = c.shift(1).over("symbol")
    rn = pl.int_range(1, pl.len() + 1).over("symbol")
    df = df.with_columns(
        *(
            (pl.col(x) / pl.col("adj_factor")).alias(f"adj_{x}")
            for x in ("open", "high", "low", "close")
        ),
        (pl.col("volume").cast(pl.Float64) * pl.col("adj_factor")).alias("adj_volume"),
    ).with_columns(
        prev.alias("prev_close"),
        rn.alias("rn"),
        (h / lo).log().alias("ln_hl"),
        (c / o).log().alias("ln_co"),
        (o / prev).log().alias("ln_o_prev"),
        (c / prev).log().alias("log_return"),
        ((h / c).log() * (h / o).log() + (lo / c).log() * (lo / o).log()).alias("rs_term"),
        (c - prev).clip(lower_bound=0).alias("gain"),
        (prev - c).clip(lower_bound=0).alias("loss"),
    )

    def roll(expr: pl.Expr, n: int, how: str = "mean") -> pl.Expr:
        return getattr(expr, f"rolling_{how}")(n, min_samples=n).over("symbol")

    def wilder(column: str) -> pl.Expr:
        seed = pl.col(column).rolling_mean(14, min_samples=14)
        x = pl.when(pl.col("rn") == 15).then(seed).when(pl.col("rn") > 15).then(pl.col(column))
        return x.ewm_mean(alpha=1 / 14, adjust=False, ignore_nulls=True).over("symbol")

    gk = 0.5 * pl.col("ln_hl") ** 2 - (2 * math.log(2) - 1) * pl.col("ln_co") ** 2
    df = df.with_columns(
        roll(pl.col("ln_hl") ** 2, 20).alias("mean_hl2_20"),
        roll(gk, 20).alias("mean_gk_20"),
        roll(pl.col("rs_term"), 20).alias("mean_rs_20"),
        roll(pl.col("ln_o_prev"), 20, "var").alias("var_o_prev_20"),
        roll(pl.col("ln_co"), 20, "var").alias("var_co_20"),
        roll(pl.col("log_return"), 30, "std").alias("sd_lr_30"),
        pl.col("adj_volume")
        .rolling_mean(7, min_samples=7)
        .shift(1)
        .over("symbol")
        .alias("mean_volume_prev_7"),
        wilder("gain").alias("avg_gain"),
        wilder("loss").alias("avg_loss"),
    )

    body = (pl.col("close") - pl.col("open")).abs()
    bottom = pl.min_horizontal("open", "close")
    top = pl.max_horizontal("open", "close")
    span = pl.col("high") - pl.col("low")
    sqrt_252 = math.sqrt(252)
    out = df.select(
        "symbol",
        "trade_date",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "adj_factor",
        "adj_open",
        "adj_high",
        "adj_low",
        "adj_close",
        "adj_volume",
        "dividend",
        ((pl.col("cum_now") - pl.col("cum_then")) / c).alias("dividend_yield_ttm"),
        (pl.col("adj_eps_ttm") * pl.col("adj_factor")).alias("eps_ttm"),
        pl.when(pl.col("adj_eps_ttm") > 0)
        .then(pl.col("close") / (pl.col("adj_eps_ttm") * pl.col("adj_factor")))
        .alias("pe_ratio_ttm"),
        pl.when(pl.col("adj_eps_ttm") > 0)
        .then((pl.col("cum_now") - pl.col("cum_then")) / pl.col("adj_eps_ttm"))
        .alias("payout_ratio_ttm"),
        (pl.col("adj_eps_quarter") * pl.col("adj_factor")).alias("eps_quarter"),
        "eps_quarter_end",
        "eps_reported_date",
        (pl.col("close") - pl.col("open")).alias("daily_return"),
        ((pl.col("open") + pl.col("high") + pl.col("low") + pl.col("close")) / 4).alias(
            "avg_price"
        ),
        (100 * (c / pl.col("prev_close") - 1)).alias("price_change_pct"),
        "log_return",
        (pl.col("ln_hl").abs() / math.sqrt(4 * math.log(2))).alias("parkinson_vol"),
        (252 / (4 * math.log(2)) * pl.col("mean_hl2_20").clip(lower_bound=0))
        .sqrt()
        .alias("parkinson_vol_20d"),
        (252 * pl.col("mean_gk_20").clip(lower_bound=0)).sqrt().alias("garman_klass_vol_20d"),
        (252 * pl.col("mean_rs_20").clip(lower_bound=0)).sqrt().alias("rogers_satchell_vol_20d"),
        (
            252
            * (
                pl.col("var_o_prev_20")
                + YZ_K * pl.col("var_co_20")
                + (1 - YZ_K) * pl.col("mean_rs_20")
            ).clip(lower_bound=0)
        )
        .sqrt()
        .alias("yang_zhang_vol_20d"),
        (pl.col("sd_lr_30") * sqrt_252).alias("hv_30d"),
        *(roll(c, n).alias(f"sma_{n}") for n in (5, 20, 50)),
        pl.when(pl.col("avg_gain") + pl.col("avg_loss") == 0)
        .then(50.0)
        .otherwise(100 * pl.col("avg_gain") / (pl.col("avg_gain") + pl.col("avg_loss")))
        .alias("rsi_14"),
        pl.col("avg_gain").alias("rsi_avg_gain_14"),
        pl.col("avg_loss").alias("rsi_avg_loss_14"),
        pl.when(pl.col("mean_volume_prev_7") != 0)
        .then(pl.col("adj_volume") / pl.col("mean_volume_prev_7"))
        .alias("volume_surge_ratio"),
        pl.when(span == 0)
        .then(pl.lit("flat"))
        .when(body <= 0.1 * span)
        .then(pl.lit("doji"))
        .when((bottom - pl.col("low") >= 2 * body) & (pl.col("high") - top <= body))
        .then(pl.lit("hammer"))
        .when((pl.col("high") - top >= 2 * body) & (bottom - pl.col("low") <= body))
        .then(pl.lit("shooting_star"))
        .when(pl.col("close") > pl.col("open"))
        .then(pl.lit("bullish"))
        .otherwise(pl.lit("bearish"))
        .alias("candle_type"),
        (pl.col("close") > pl.col("open")).alias("is_market_up"),
        pl.col("trade_date").dt.year().cast(pl.Int64).alias("year"),
    )
    return out


def write(lake: Path, out: Path) -> int:
    """daily_prices of `lake` as Parquet under `out`, partitioned by year; the row count."""
    frame = daily_prices(lake)
    frame.write_parquet(out, partition_by="year", mkdir=True)
    return frame.height
