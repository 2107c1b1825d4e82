-- severity: blocking
-- description: every row has a symbol and a trade_date, and no (symbol, trade_date) repeats
SELECT
    symbol,
    trade_date,
    count(*) AS copies
FROM staging_daily_prices
GROUP BY symbol, trade_date
HAVING count(*) > 1 OR symbol IS NULL OR trade_date IS NULL
