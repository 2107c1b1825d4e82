-- severity: row
-- description: high is at least open, close and low
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume
FROM bars
-- Plain comparisons, not greatest(): Trino's greatest() is NULL on any NULL, DuckDB's skips NULLs.
WHERE NOT coalesce(high >= open AND high >= close AND high >= low, FALSE)
