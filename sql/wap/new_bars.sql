-- The bars of a full build (Athena/Trino dialect): every bar read, with no published rows.
SELECT
    symbol,
    trade_date,
    open,
    high,
    low,
    close,
    volume
FROM new_bars
