-- Rows per raw object that a build reads (Athena/Trino dialect), to reconcile with the rows
-- ingest or import landed in each (state/raw_landed/): ingest_date partitions from raw_from
-- on, every partition when raw_from is NULL (a full build). "$path" is the object a row came
-- from (Athena's pseudo-column; the local reader gives the same): an object of one symbol and
-- one holding a whole market's session are told apart by it, not by the symbols in them.
-- parameters: raw_from, raw_from
SELECT
    "$path" AS raw_path,
    count(*) AS n
FROM raw_daily_prices
WHERE ? IS NULL OR ingest_date >= ?
GROUP BY "$path"
