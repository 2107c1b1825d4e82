-- Market breadth per session, over every symbol of daily_prices (the whole market when the
-- lake holds it): how many closed above (advancing), below (declining) or at (unchanged)
-- their previous close, and how many were compared (symbols = the three together).
-- The move is price_change_pct: 100 * (adj_close / previous adj_close - 1), on
-- split-adjusted closes, so a split is no move. The previous close is the symbol's previous
-- bar in daily_prices (after a gap, the bar before it). A symbol's first bar has none
-- (price_change_pct NULL): it counts as neither, and is not in symbols.
-- Unchanged is |price_change_pct| <= 1e-9 (percent), not = 0: adj_factor is exp(sum(ln())),
-- so a close unchanged across a split comes out ~1e-14 % away from 0, while a real move is
-- never that small (a cent on a $1,000,000 share is 1e-6 %). top_movers uses the same bound.
-- count(CASE ...), not sum: BIGINT on both engines (DuckDB's sum of integers is HUGEINT).
-- Grafana's $__dateFilter(trade_date) is on the GROUP BY key: pushed below the aggregation.
SELECT
    trade_date,
    count(CASE WHEN price_change_pct > 1e-9 THEN 1 END) AS advancing,
    count(CASE WHEN price_change_pct < -1e-9 THEN 1 END) AS declining,
    count(CASE WHEN abs(price_change_pct) <= 1e-9 THEN 1 END) AS unchanged,
    count(*) AS symbols
FROM daily_prices
WHERE price_change_pct IS NOT NULL
GROUP BY trade_date
