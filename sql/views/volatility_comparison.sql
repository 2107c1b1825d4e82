-- Range-based estimators next to close-to-close volatility, all annualised over ~1 month.
SELECT
    symbol,
    trade_date,
    parkinson_vol_20d,
    garman_klass_vol_20d,
    rogers_satchell_vol_20d,
    yang_zhang_vol_20d,
    hv_30d
FROM daily_prices
WHERE parkinson_vol_20d IS NOT NULL OR hv_30d IS NOT NULL
