-- One row per (build run, data-quality check): each result with the time of its run.
SELECT
    d.run_id,
    r.started_at,
    r.status AS run_status,
    d.check_name,
    d.severity,
    d.status,
    d.failing_rows,
    d.description
FROM dq_results AS d
LEFT JOIN pipeline_runs AS r ON d.run_id = r.run_id
