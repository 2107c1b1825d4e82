-- The newest session's 10 biggest gainers and 10 biggest losers: the symbols with a bar on
-- the newest trade_date of daily_prices (a symbol with none that day, stale or halted, is
-- not listed), by price_change_pct (percent, on split-adjusted closes; see market_breadth).
-- side 'gainer': price_change_pct above 1e-9, largest first; 'loser': below -1e-9, smallest
-- first; rank 1 to 10 within each side, ties broken by symbol (A before B), so the list is
-- the same on every engine and run. Unchanged symbols and first bars are on neither side, so
-- a symbol is never both (in a lake of few symbols a side can hold fewer than 10).
-- close is as traded (USD), volume in shares as traded.
WITH last_session AS (
    SELECT
        symbol,
        trade_date,
        price_change_pct,
        close,
        volume
    FROM daily_prices
    WHERE
        trade_date = (SELECT max(trade_date) FROM daily_prices)
        AND price_change_pct IS NOT NULL
),

ranked AS (
    SELECT
        symbol,
        trade_date,
        price_change_pct,
        close,
        volume,
        CAST('gainer' AS VARCHAR) AS side,
        row_number() OVER (ORDER BY price_change_pct DESC, symbol ASC) AS rank
    FROM last_session
    WHERE price_change_pct > 1e-9

    UNION ALL

    SELECT
        symbol,
        trade_date,
        price_change_pct,
        close,
        volume,
        CAST('loser' AS VARCHAR) AS side,
        row_number() OVER (ORDER BY price_change_pct ASC, symbol ASC) AS rank
    FROM last_session
    WHERE price_change_pct < -1e-9
)

SELECT
    rank,
    symbol,
    side,
    price_change_pct,
    close,
    volume,
    trade_date
FROM ranked
WHERE rank <= 10
