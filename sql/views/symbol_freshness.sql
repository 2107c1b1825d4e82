-- Each symbol's newest bar against the last closed NYSE session at the time of the build.
WITH last_session AS (
    SELECT max(session) AS session FROM xnys_sessions
),

latest AS (
    SELECT
        symbol,
        max(trade_date) AS last_trade_date
    FROM daily_prices
    GROUP BY symbol
)

SELECT
    l.symbol,
    l.last_trade_date,
    s.session AS last_session,
    (
        SELECT count(*)
        FROM xnys_sessions AS x
        WHERE x.session > l.last_trade_date AND x.session <= s.session
    ) AS sessions_behind
FROM latest AS l
CROSS JOIN last_session AS s
