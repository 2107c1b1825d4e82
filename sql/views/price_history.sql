-- Per symbol and day, the series the market dashboard draws: close (as traded) and the
-- split-adjusted close with the moving averages (which are of the split-adjusted close),
-- daily return, RSI, volume with its surge ratio and the trailing P/E (NULL where it is
-- unknown or a loss: the panel leaves a gap). A narrow projection, so Athena reads only
-- these Parquet columns.
SELECT
    symbol,
    trade_date,
    close,
    adj_close,
    sma_20,
    sma_50,
    daily_return,
    rsi_14,
    volume,
    volume_surge_ratio,
    pe_ratio_ttm
FROM daily_prices
