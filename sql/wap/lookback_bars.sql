-- The bars of an incremental build (Athena/Trino dialect): the new bars, and of each symbol
-- in firsts its published bars from its first new bar on (a new bar replaces the published
-- one of its day) plus the lookback_rows bars before it that its windows can reach.
-- previous_daily_prices: the published partitions from the years that lookback can reach.
-- Only the bar columns are read: Parquet skips the metric columns.
-- parameters: lookback_rows
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume
FROM new_bars
UNION ALL
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume
FROM (
    SELECT
        p.symbol,
        p.trade_date,
        p.open,
        p.high,
        p.low,
        p.close,
        p.volume,
        f.first_new,
        row_number() OVER (
            PARTITION BY p.symbol, p.trade_date < f.first_new
            ORDER BY p.trade_date DESC
        ) AS back
    FROM previous_daily_prices AS p
    INNER JOIN firsts AS f ON p.symbol = f.symbol
    WHERE NOT EXISTS (
        SELECT 1 FROM new_bars AS n
        WHERE n.symbol = p.symbol AND n.trade_date = p.trade_date
    )
) AS kept
WHERE trade_date >= first_new OR back <= ?
