-- Staging transform for daily_prices (Athena/Trino dialect; DuckDB runs it via sqlglot).
-- Input: raw_daily_prices, every column varchar as OpenCSVSerDe reads it, partitioned by
-- ingest_date. Output: one typed row per (symbol, trade_date) with its metrics.
-- Portability: divisions are on DOUBLE, windows count rows, a window that is not yet full
-- yields NULL, and ln() only ever sees positive arguments (Trino gives NaN, DuckDB errors).
WITH typed AS (
    SELECT
        upper(trim(symbol)) AS symbol,
        try_cast(trade_date AS DATE) AS trade_date,
        try_cast(open AS DOUBLE) AS open,
        try_cast(high AS DOUBLE) AS high,
        try_cast(low AS DOUBLE) AS low,
        try_cast(close AS DOUBLE) AS close,
        try_cast(volume AS BIGINT) AS volume,
        try_cast(ingested_at AS TIMESTAMP) AS ingested_at,
        ingest_date
    FROM raw_daily_prices
),

ranked AS (
    -- A bar may land more than once (reruns, corrections): the latest copy wins.
    SELECT
        *,
        row_number() OVER (
            PARTITION BY symbol, trade_date
            ORDER BY ingested_at DESC, ingest_date DESC
        ) AS copy_rank
    FROM typed
),

bars AS (
    SELECT
        symbol,
        trade_date,
        open,
        high,
        low,
        close,
        volume,
        CASE
            WHEN high > 0 AND low > 0 THEN power(ln(high / low), 2)
        END AS log_hl_squared
    FROM ranked
    WHERE copy_rank = 1
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
    -- Windows are spelled out in full: Athena's support for a named WINDOW clause is unclear.
    CASE
        WHEN count(log_hl_squared) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
        ) = 20
            THEN sqrt(252.0 / (4.0 * ln(2.0)) * avg(log_hl_squared) OVER (
                PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
            ))
    END AS parkinson_vol_20d,
    year(trade_date) AS year
FROM bars
ORDER BY symbol, trade_date
