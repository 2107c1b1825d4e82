-- Each symbol's first new bar (Athena/Trino dialect): an incremental build recomputes a
-- symbol's rows from this date on, and copies its earlier rows from the published version.
SELECT
    symbol,
    min(trade_date) AS first_new
FROM new_bars
WHERE symbol IS NOT NULL
GROUP BY symbol
