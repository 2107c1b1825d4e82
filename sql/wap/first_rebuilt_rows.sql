-- Each symbol's first recomputed row when splits or dividends changed (Athena/Trino
-- dialect): the earlier of its first new bar (new_firsts: sql/wap/first_new_bars.sql) and
-- the first published row the change reaches (restated_firsts: sql/wap/restated_firsts.sql).
SELECT
    symbol,
    min(first_new) AS first_new
FROM (
    SELECT
        symbol,
        first_new
    FROM new_firsts
    UNION ALL
    SELECT
        symbol,
        first_new
    FROM restated_firsts
) AS firsts
GROUP BY symbol
