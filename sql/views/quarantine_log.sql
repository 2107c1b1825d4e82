-- Bars a row check left out of daily_prices, one row per (bar, failed check), with the time
-- of the build run that quarantined them.
SELECT
    q.run_id,
    r.started_at,
    q.check_name,
    q.symbol,
    q.trade_date,
    q.open,
    q.high,
    q.low,
    q.close,
    q.volume
FROM quarantined_rows AS q
LEFT JOIN pipeline_runs AS r ON q.run_id = r.run_id
