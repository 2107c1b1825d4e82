-- Average price per symbol over the 90 calendar days up to the newest bar in the table.
SELECT
    symbol,
    trade_date,
    avg_price,
    close
FROM daily_prices
WHERE trade_date > date_add('day', -90, (SELECT max(trade_date) FROM daily_prices))
