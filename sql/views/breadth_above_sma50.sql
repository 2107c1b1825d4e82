-- Per session, the share of symbols whose close is above their 50-day simple moving average,
-- over every symbol of daily_prices. Only a symbol with a full 50-session window that day
-- counts: sma_50 is NULL before a symbol's 50th bar (never a partial window).
-- above: adj_close above sma_50, both split-adjusted (sma_50 averages adj_close), by more
-- than 1e-9 % (as market_breadth's unchanged): the mean of 50 adjusted closes carries
-- rounding noise, and a symbol flat for 50 sessions is not above its average.
-- counted: the symbols with an sma_50 that day. share_above = above / counted, a fraction
-- from 0 to 1 (Grafana unit percentunit). A day on which no symbol has a full window has no
-- row. count(), not sum: BIGINT on both engines; the division is on DOUBLE (Trino's BIGINT
-- division truncates).
SELECT
    trade_date,
    count(CASE WHEN adj_close > sma_50 * (1 + 1e-11) THEN 1 END) AS above,
    count(*) AS counted,
    CAST(count(CASE WHEN adj_close > sma_50 * (1 + 1e-11) THEN 1 END) AS DOUBLE)
    / count(*) AS share_above
FROM daily_prices
WHERE sma_50 IS NOT NULL
GROUP BY trade_date
