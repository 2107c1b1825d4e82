-- The bars of a full build (Athena/Trino dialect): every bar read, with no published rows,
-- so nothing seeds rsi_14 (see sql/staging/daily_prices.sql).
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
