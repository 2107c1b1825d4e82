-- Rows per raw object that a build reads (Athena/Trino dialect), to reconcile with the rows
-- ingest or import landed in each (state/raw_landed/): ingest_date partitions from raw_from
-- on, every partition when raw_from is NULL (a full build).
-- parameters: raw_from, raw_from
SELECT
    ingest_date,
    symbol,
    count(*) AS n
FROM raw_daily_prices
WHERE ? IS NULL OR ingest_date >= ?
GROUP BY ingest_date, symbol
