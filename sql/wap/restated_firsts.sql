-- Of each symbol whose splits or dividends changed since the published version, the first
-- published row the change reaches (Athena/Trino dialect). restated_symbols (symbol,
-- restate_from) comes from marketlake.wap.restate; published_history is the published
-- partitions from the earliest restate_from's year on. A symbol with no published row from
-- its restate_from on has nothing to recompute, and no row here.
SELECT
    p.symbol,
    min(p.trade_date) AS first_new
FROM published_history AS p
INNER JOIN restated_symbols AS r ON p.symbol = r.symbol
WHERE p.trade_date >= CAST(r.restate_from AS DATE)
GROUP BY p.symbol
