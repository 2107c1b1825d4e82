-- The symbols an incremental build rebuilds that have no bar before their first new one in
-- bars (Athena/Trino dialect): new tickers, or symbols whose last published bar is older
-- than the years the lookback read.
SELECT f.symbol
FROM firsts AS f
WHERE NOT EXISTS (
    SELECT 1 FROM bars AS b
    WHERE b.symbol = f.symbol AND b.trade_date < f.first_new
)
