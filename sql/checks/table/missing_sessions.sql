-- severity: warning
-- description: an NYSE session is missing inside a symbol's history (between its first and last bar)
-- Only symbols with fewer rows than sessions in their span are joined with the calendar:
-- the usual symbol has no gap, and joining every symbol's span with every session and then
-- with every row cost this check more than the rest of the audit.
WITH numbered AS (
    SELECT
        session,
        row_number() OVER (ORDER BY session) AS session_number
    FROM xnys_sessions
),

spans AS (
    SELECT
        symbol,
        min(trade_date) AS first_date,
        max(trade_date) AS last_date,
        count(*) AS bars
    FROM staging_daily_prices
    GROUP BY symbol
),

gapped AS (
    SELECT
        s.symbol,
        s.first_date,
        s.last_date
    FROM spans AS s
    INNER JOIN numbered AS f ON f.session = s.first_date
    INNER JOIN numbered AS l ON l.session = s.last_date
    WHERE l.session_number - f.session_number + 1 > s.bars
)

SELECT
    g.symbol,
    x.session AS missing_date
FROM gapped AS g
INNER JOIN xnys_sessions AS x
    ON x.session BETWEEN g.first_date AND g.last_date
LEFT JOIN staging_daily_prices AS d
    ON d.symbol = g.symbol AND d.trade_date = x.session
WHERE d.symbol IS NULL
