-- The bars that pass every row check (Athena/Trino dialect): bars without the keys in
-- rejected_keys. A bar without a key fails keys_not_null, so it never passes.
SELECT b.*
FROM bars AS b
WHERE
    b.symbol IS NOT NULL
    AND b.trade_date IS NOT NULL
    AND NOT EXISTS (
        SELECT 1 FROM rejected_keys AS r
        WHERE r.symbol = b.symbol AND r.trade_date = b.trade_date
    )
