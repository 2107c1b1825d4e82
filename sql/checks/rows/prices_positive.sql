-- severity: row
-- description: open, high, low and close are all present and greater than zero
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume
FROM bars
WHERE NOT coalesce(open > 0 AND high > 0 AND low > 0 AND close > 0, FALSE)
