-- severity: warning
-- description: close moved more than 50% from the previous close (a split, or bad data)
WITH moves AS (
    SELECT
        symbol,
        trade_date,
        close,
        lag(close) OVER (PARTITION BY symbol ORDER BY trade_date) AS prev_close
    FROM staging_daily_prices
)

SELECT
    symbol,
    trade_date,
    prev_close,
    close
FROM moves
WHERE prev_close > 0 AND abs(close / prev_close - 1.0) > 0.5
