-- Of the symbols without history in bars (sql/wap/without_history.sql), those with a
-- published bar in an older year (Athena/Trino dialect): their windows and rsi_14's seed
-- need it. older_daily_prices: the published partitions the lookback did not read.
SELECT DISTINCT o.symbol
FROM older_daily_prices AS o
INNER JOIN firsts AS f ON o.symbol = f.symbol
WHERE
    o.trade_date < f.first_new
    AND NOT EXISTS (
        SELECT 1 FROM bars AS b
        WHERE b.symbol = f.symbol AND b.trade_date < f.first_new
    )
