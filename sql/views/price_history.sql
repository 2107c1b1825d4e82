-- Per symbol and day, the series the market dashboard draws: close with its moving averages,
-- daily return, RSI and volume with its surge ratio. A narrow projection, so Athena reads
-- only these Parquet columns.
SELECT
    symbol,
    trade_date,
    close,
    sma_20,
    sma_50,
    daily_return,
    rsi_14,
    volume,
    volume_surge_ratio
FROM daily_prices
