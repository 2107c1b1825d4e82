-- Every bar kept out of the lake, newest first by quarantined_at, with the stage that kept it
-- out: 'build' (a row check left it out of daily_prices: one row per bar and failed check,
-- at the time of the build run), 'ingest' (an impossible bar or a non-session day in a
-- provider's answer) or 'import' (the same in an imported file). Values are text: an
-- ingest or import bar is kept as received, unparseable values too.
SELECT
    r.started_at AS quarantined_at,
    'build' AS stage,
    CAST(NULL AS VARCHAR) AS source,
    q.run_id,
    q.check_name,
    CASE
        WHEN q.reason IS NULL OR q.reason = '' THEN q.check_name
        ELSE q.check_name || ': ' || q.reason
    END AS reason,
    q.symbol,
    q.trade_date,
    CAST(q.open AS VARCHAR) AS open,
    CAST(q.high AS VARCHAR) AS high,
    CAST(q.low AS VARCHAR) AS low,
    CAST(q.close AS VARCHAR) AS close,
    CAST(q.volume AS VARCHAR) AS volume,
    q.raw_object AS quarantine_key
FROM quarantined_rows AS q
LEFT JOIN pipeline_runs AS r ON q.run_id = r.run_id
UNION ALL
SELECT
    i.quarantined_at,
    i.stage,
    i.source,
    CAST(NULL AS VARCHAR) AS run_id,
    CAST(NULL AS VARCHAR) AS check_name,
    i.reason,
    i.symbol,
    i.trade_date,
    i.open,
    i.high,
    i.low,
    i.close,
    i.volume,
    i.quarantine_key
FROM ingest_quarantine AS i
