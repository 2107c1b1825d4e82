-- severity: blocking
-- description: no (symbol, trade_date) appears twice in the new version
SELECT
    symbol,
    trade_date,
    count(*) AS copies
FROM staging_daily_prices
GROUP BY symbol, trade_date
HAVING count(*) > 1
