-- The rebuilt years of an incremental build (Athena/Trino dialect), years from first_year on:
-- each symbol in firsts recomputed from its first_new on, every other row copied from the
-- published version, so published values never flicker from one run to the next.
-- recomputed: sql/staging/daily_prices.sql over the run's bars; published: the published
-- partitions, as the same columns in the same order.
-- parameters: first_year, first_year
SELECT r.*
FROM recomputed AS r
WHERE
    r.year >= ?
    AND r.trade_date >= (SELECT f.first_new FROM firsts AS f WHERE f.symbol = r.symbol)
UNION ALL
SELECT p.*
FROM published AS p
WHERE
    p.year >= ?
    AND NOT coalesce(
        p.trade_date >= (SELECT f.first_new FROM firsts AS f WHERE f.symbol = p.symbol), FALSE
    )
