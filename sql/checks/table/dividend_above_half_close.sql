-- severity: warning
-- description: a dividend above 50% of the close of the session it goes ex on: most likely a mistyped amount (correct it with marketlake import --dividends FILE --replace)
-- The close compared is that same session's traded close: `dividend` is cash per share as
-- declared, at the traded scale of its ex-session, and so is that row's close. The previous
-- close would be the textbook base, but a split going ex on the same session puts it at the
-- old scale. Real special dividends above half the share price are rare enough to look at.
SELECT
    symbol,
    trade_date,
    dividend,
    close
FROM staging_daily_prices
WHERE dividend > 0.5 * close
