-- The raw rows an incremental build has not read (Athena/Trino dialect); bound in place of
-- raw_daily_prices in sql/staging/bars.sql. The ingest_date filter prunes partitions. A row's
-- watermark is its partition first: every row of a partition newer than the last one read
-- (read_through) is new, whatever its fields say. Only in a partition read before (read
-- again because something landed there since) does ingested_at tell the rows apart: those
-- ingested after ingested_after (NULL: all) are new, and so is a row whose ingested_at is
-- not the raw zone's fixed-width timestamp, since damage must not hide a row behind the
-- watermark: the row checks quarantine it. Fixed width makes text order time order on both
-- engines.
-- parameters: raw_from, ingested_after, read_through, ingested_after
SELECT *
FROM raw_daily_prices
WHERE
    ingest_date >= ?
    AND (
        ? IS NULL
        OR ingest_date > ?
        OR ingested_at > ?
        OR NOT regexp_like(
            coalesce(ingested_at, ''), '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}$'
        )
    )
