-- The raw rows an incremental build has not read (Athena/Trino dialect); bound in place of
-- raw_daily_prices in sql/staging/bars.sql. The ingest_date filter prunes partitions; of the
-- rows in them, only those ingested after ingested_after (NULL: all) are new. ingested_at is
-- fixed-width text, so text order is time order on both engines.
-- parameters: raw_from, ingested_after, ingested_after
SELECT *
FROM raw_daily_prices
WHERE ingest_date >= ? AND (? IS NULL OR ingested_at > ?)
