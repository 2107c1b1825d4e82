-- The bars of an incremental build (Athena/Trino dialect): the new bars, and of each symbol
-- in firsts its published bars from its first new bar on (a new bar replaces the published
-- one of its day) plus the lookback_rows bars before it that its windows can reach.
-- previous_daily_prices: the published partitions from the years that lookback can reach.
-- Only the bar columns and the RSI averages are read: Parquet skips the other metrics.
-- rsi_14 is seeded (see sql/staging/daily_prices.sql): the last published row before a
-- symbol's first new bar carries its published Wilder averages, and when it has them, it and
-- every earlier row are rsi_seeded.
-- parameters: lookback_rows
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume,
    CAST(NULL AS DOUBLE) AS rsi_avg_gain_seed,
    CAST(NULL AS DOUBLE) AS rsi_avg_loss_seed,
    FALSE AS rsi_seeded
FROM new_bars
UNION ALL
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume,
    CASE WHEN trade_date < first_new AND back = 1 THEN rsi_avg_gain_14 END AS rsi_avg_gain_seed,
    CASE WHEN trade_date < first_new AND back = 1 THEN rsi_avg_loss_14 END AS rsi_avg_loss_seed,
    trade_date < first_new AND seed_gain IS NOT NULL AND seed_loss IS NOT NULL AS rsi_seeded
FROM (
    SELECT
        p.symbol,
        p.trade_date,
        p.open,
        p.high,
        p.low,
        p.close,
        p.volume,
        p.rsi_avg_gain_14,
        p.rsi_avg_loss_14,
        f.first_new,
        row_number() OVER (
            PARTITION BY p.symbol, p.trade_date < f.first_new
            ORDER BY p.trade_date DESC
        ) AS back,
        -- The seed row's averages (back = 1 before first_new), on every row of its side.
        first_value(p.rsi_avg_gain_14) OVER (
            PARTITION BY p.symbol, p.trade_date < f.first_new
            ORDER BY p.trade_date DESC
        ) AS seed_gain,
        first_value(p.rsi_avg_loss_14) OVER (
            PARTITION BY p.symbol, p.trade_date < f.first_new
            ORDER BY p.trade_date DESC
        ) AS seed_loss
    FROM previous_daily_prices AS p
    INNER JOIN firsts AS f ON p.symbol = f.symbol
    WHERE NOT EXISTS (
        SELECT 1 FROM new_bars AS n
        WHERE n.symbol = p.symbol AND n.trade_date = p.trade_date
    )
) AS kept
WHERE trade_date >= first_new OR back <= ?
