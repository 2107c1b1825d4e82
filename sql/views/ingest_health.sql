-- One row per ingest run: API requests spent against the daily quota, and what landed.
SELECT
    run_id,
    started_at,
    finished_at,
    provider,
    session,
    requests_used,
    quota_date,
    quota_used,
    calls_per_day,
    new_bars,
    fetched,
    up_to_date,
    deferred,
    invalid,
    failed,
    quarantined
FROM ingest_runs
