-- severity: warning
-- description: a symbol's last bar is more than 5 sessions behind the newest bar of the table
WITH latest AS (
    SELECT
        symbol,
        max(trade_date) AS last_date
    FROM staging_daily_prices
    GROUP BY symbol
),

newest AS (
    SELECT max(last_date) AS newest_date FROM latest
)

SELECT
    l.symbol,
    l.last_date,
    count(x.session) AS sessions_behind
FROM latest AS l
CROSS JOIN newest AS n
INNER JOIN xnys_sessions AS x
    ON x.session > l.last_date AND x.session <= n.newest_date
GROUP BY l.symbol, l.last_date
HAVING count(x.session) > 5
