-- severity: row
-- description: volume is present and not negative
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume
FROM bars
WHERE NOT coalesce(volume >= 0, FALSE)
