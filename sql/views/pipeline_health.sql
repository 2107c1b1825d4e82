-- One row per build run, newest first in dashboards: status, size, checks and duration.
SELECT
    run_id,
    started_at,
    finished_at,
    status,
    mode,
    rows_written,
    rows_quarantined,
    checks_passed,
    checks_failed,
    checks_warned,
    CAST(date_diff('millisecond', started_at, finished_at) AS DOUBLE) / 1000.0
        AS duration_seconds,
    message
FROM pipeline_runs
