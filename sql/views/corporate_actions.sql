-- One row per split or cash dividend of a symbol, as daily_prices publishes it: kind 'split'
-- (split_factor: new shares per old share, 10 for a 10:1 split, 0.25 for a 1:4 reverse split)
-- or 'dividend' (dividend: cash per share as declared), with the session's traded close and
-- the close of the session before it.
-- Derived from daily_prices, not from corporate_splits / corporate_dividends (what landed in
-- raw/splits and raw/dividends): those can be ahead of the published version, e.g. an action
-- that landed since the last build (the next build restates its symbol) or after a rollback.
-- daily_prices is what the audit passed and the other panels show, so every row here is an
-- action the published prices reflect.
-- * A split is where adj_factor steps from one session to the next (adj_factor is the product
--   of the later splits' factors): split_factor = previous adj_factor / adj_factor, rounded to
--   9 decimals to drop the exp(sum(ln())) noise of adj_factor (~1e-16). ex_date is the first
--   published session at the new scale; two splits between two sessions show as one row with
--   their product. A split before a symbol's first bar changes no published price: no row.
-- * A dividend is a session with dividend > 0, which daily_prices fills on the session it
--   goes ex on: its date, or the next NYSE session when that date is no session (a weekend,
--   a holiday), as a split's; two that land on one session show as one row with their sum.
--   One going ex on a session with no published bar (e.g. a quarantined one) counts in
--   dividend_yield_ttm but has no row here.
-- The window reads every bar of the selected symbols (a time filter on ex_date cannot be
-- pushed below lag()); symbol filters are pushed into the scan.
WITH sessions AS (
    SELECT
        symbol,
        trade_date,
        close,
        adj_factor,
        dividend,
        lag(adj_factor) OVER (PARTITION BY symbol ORDER BY trade_date) AS previous_adj_factor,
        lag(close) OVER (PARTITION BY symbol ORDER BY trade_date) AS previous_close
    FROM daily_prices
)

SELECT
    symbol,
    trade_date AS ex_date,
    CAST('split' AS VARCHAR) AS kind,
    round(previous_adj_factor / adj_factor, 9) AS split_factor,
    CAST(NULL AS DOUBLE) AS dividend,
    previous_close,
    close
FROM sessions
WHERE abs(previous_adj_factor / adj_factor - 1.0) > 1e-9

UNION ALL

SELECT
    symbol,
    trade_date AS ex_date,
    CAST('dividend' AS VARCHAR) AS kind,
    CAST(NULL AS DOUBLE) AS split_factor,
    dividend,
    previous_close,
    close
FROM sessions
WHERE dividend > 0
