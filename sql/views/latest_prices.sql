-- The latest bar of each symbol, with its metrics: one small row per symbol for tables.
-- pe_ratio_ttm and payout_ratio_ttm are NULL without four known quarters or with a loss.
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume,
    daily_return,
    price_change_pct,
    avg_price,
    candle_type,
    is_market_up,
    sma_20,
    sma_50,
    rsi_14,
    hv_30d,
    parkinson_vol_20d,
    volume_surge_ratio,
    dividend_yield_ttm,
    pe_ratio_ttm,
    payout_ratio_ttm
FROM (
    SELECT
        *,
        row_number() OVER (PARTITION BY symbol ORDER BY trade_date DESC) AS recency
    FROM daily_prices
) AS ranked
WHERE recency = 1
