-- severity: row
-- description: low is at most open and close
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume
FROM bars
-- Plain comparisons, not least(): Trino's least() is NULL on any NULL, DuckDB's skips NULLs.
WHERE NOT coalesce(low <= open AND low <= close, FALSE)
