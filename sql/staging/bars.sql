-- Raw text -> typed bars, one per (symbol, trade_date) (Athena/Trino dialect).
-- Input: raw_daily_prices, every column varchar as OpenCSVSerDe reads it, partitioned by
-- ingest_date. try_cast leaves NULL where a value cannot be read; the audit catches it.
-- A symbol is kept as landed (ingest and import spell it as the vendor does): Polygon's
-- KIMpL, a preferred share, is not KIMPL.
WITH typed AS (
    SELECT
        trim(symbol) AS symbol,
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
)

SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume,
    ingested_at
FROM ranked
WHERE copy_rank = 1
