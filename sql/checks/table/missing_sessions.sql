-- severity: warning
-- description: an NYSE session is missing inside a symbol's history (between its first and last bar)
WITH spans AS (
    SELECT
        symbol,
        min(trade_date) AS first_date,
        max(trade_date) AS last_date
    FROM staging_daily_prices
    GROUP BY symbol
)

SELECT
    s.symbol,
    x.session AS missing_date
FROM spans AS s
INNER JOIN xnys_sessions AS x
    ON x.session BETWEEN s.first_date AND s.last_date
LEFT JOIN staging_daily_prices AS d
    ON d.symbol = s.symbol AND d.trade_date = x.session
WHERE d.symbol IS NULL
