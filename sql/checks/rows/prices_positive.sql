-- severity: row
-- description: open, high, low and close are all present, finite and greater than zero
-- x - x = 0 is false for NaN and +-Infinity (and NULL) on both engines: a raw 'NaN' or 'Inf'
-- reads as a double, and DuckDB orders NaN above every number, so NaN > 0 alone would pass.
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume
FROM bars
WHERE
    NOT coalesce(
        open > 0 AND high > 0 AND low > 0 AND close > 0
        AND open - open = 0 AND high - high = 0 AND low - low = 0 AND close - close = 0,
        FALSE
    )
