-- severity: warning
-- description: close moved 40% or more in one session with no split recorded for that day: a likely missing split (marketlake import --splits FILE, or wait for the weekly SPLITS refresh)
-- price_change_pct is computed on split-adjusted closes, so a session whose move a recorded
-- split explains never shows here (nor in price_jump); what is left is a move no split
-- explains, which on real listings is most often a split the vendor has not reported yet.
SELECT
    symbol,
    trade_date,
    close,
    price_change_pct
FROM staging_daily_prices
WHERE abs(price_change_pct) >= 40
