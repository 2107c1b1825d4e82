-- severity: blocking
-- description: every published (symbol, trade_date) of the rebuilt years is still there (purged symbols aside)
-- published_daily_prices is the published table restricted to the years this run rebuilds;
-- purged_symbols, the symbols `marketlake tickers remove --purge` took out of the table.
SELECT
    p.symbol,
    p.trade_date
FROM published_daily_prices AS p
LEFT JOIN staging_daily_prices AS s
    ON p.symbol = s.symbol AND p.trade_date = s.trade_date
WHERE
    s.symbol IS NULL
    AND p.symbol NOT IN (SELECT symbol FROM purged_symbols)
