-- severity: row
-- description: every bar has a symbol and a trade_date
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume
FROM bars
WHERE symbol IS NULL OR trade_date IS NULL
