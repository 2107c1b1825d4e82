-- severity: row
-- description: trade_date is an NYSE (XNYS) session that has closed by the time of the build
-- xnys_sessions holds every closed session up to the build's time, from exchange_calendars.
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume
FROM bars
WHERE
    trade_date IS NOT NULL
    AND trade_date NOT IN (SELECT session FROM xnys_sessions)
