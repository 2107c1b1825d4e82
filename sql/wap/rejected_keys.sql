-- The keys of the bars one row check rejects (Athena/Trino dialect): failing_bars is bound to
-- each query of sql/checks/rows in turn, and the build takes the UNION of them all.
SELECT
    symbol,
    trade_date
FROM failing_bars
