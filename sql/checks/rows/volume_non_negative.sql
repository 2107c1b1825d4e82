-- severity: blocking
-- description: volume is present and not negative
SELECT
    symbol,
    trade_date,
    volume
FROM staging_daily_prices
WHERE NOT coalesce(volume >= 0, FALSE)
