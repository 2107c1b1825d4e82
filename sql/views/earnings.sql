-- One row per quarterly report of a symbol, as daily_prices applied it: the quarter
-- (fiscal_date_ending) and the day it was published (reported_date), its EPS (eps, USD per
-- share, a loss negative) and the trailing four quarters' (eps_ttm) on the share basis of
-- first_session, the first session after the report (the first the market traded on it: a
-- report counts from then, whatever its time of day), with that session's traded close, and
-- the P/E (pe_ratio_ttm = close / eps_ttm) and payout ratio (payout_ratio_ttm, a fraction)
-- of that day. eps_ttm is NULL without four consecutive known quarters, pe_ratio_ttm and
-- payout_ratio_ttm also when eps_ttm <= 0 (a loss has no meaningful P/E).
-- Derived from daily_prices, not from corporate_earnings (what landed in raw/earnings): that
-- can be ahead of the published version, e.g. a report that landed since the last build (the
-- next build restates its symbol) or after a rollback. daily_prices is what the audit passed
-- and the other panels show, so every row here is a report the published prices reflect.
-- * daily_prices fills eps_quarter, eps_quarter_end and eps_reported_date on the symbol's
--   first bar after each report (NULL on every other bar): a weekend or holiday report shows
--   on the next session; a report before the session preceding a symbol's first bar has no
--   row, though it still counts in eps_ttm (as a split before the first bar has none in
--   corporate_actions); two reports first seen on one bar (a backlog filed at once) show as
--   one row, the newer quarter's, and eps_ttm counts both.
-- * eps and eps_ttm are on first_session's share basis, as its traded close is, so the P/E
--   compares like with like: an EPS on another day's basis (a quarter reported before a
--   split, or a vendor's restated for a later one) is converted by the splits between.
-- A filter on symbol or first_session is pushed into the scan of daily_prices.
SELECT
    symbol,
    eps_quarter_end AS fiscal_date_ending,
    eps_reported_date AS reported_date,
    eps_quarter AS eps,
    eps_ttm,
    trade_date AS first_session,
    close,
    pe_ratio_ttm,
    payout_ratio_ttm
FROM daily_prices
WHERE eps_quarter IS NOT NULL
