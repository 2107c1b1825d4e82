-- severity: warning
-- description: close moved more than 50% from the previous close (a split, or bad data)
-- price_change_pct is 100 * (close / prev_close - 1) over the symbol's previous row.
SELECT
    symbol,
    trade_date,
    close,
    price_change_pct
FROM staging_daily_prices
WHERE abs(price_change_pct) > 50
