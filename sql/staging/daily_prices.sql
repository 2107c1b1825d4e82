-- Metrics of daily_prices (Athena/Trino dialect; DuckDB runs it via sqlglot).
-- Input: bars (symbol, trade_date, open, high, low, close, volume), one row per
-- (symbol, trade_date): the build supplies it from sql/staging/bars.sql.
-- Portability: divisions are on DOUBLE, windows count rows, a window that is not yet full
-- yields NULL, and ln() only ever sees positive arguments (Trino gives NaN, DuckDB errors).
-- Windows are spelled out in full: Athena's support for a named WINDOW clause is unclear.
WITH logs AS (
    SELECT
        *,
        CASE
            WHEN high > 0 AND low > 0 THEN power(ln(high / low), 2)
        END AS log_hl_squared
    FROM bars
)

SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume,
    close - open AS daily_return,
    (open + high + low + close) / 4.0 AS avg_price,
    CASE
        WHEN count(log_hl_squared) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
        ) = 20
            THEN sqrt(252.0 / (4.0 * ln(2.0)) * avg(log_hl_squared) OVER (
                PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
            ))
    END AS parkinson_vol_20d,
    year(trade_date) AS year
FROM logs
ORDER BY symbol, trade_date
