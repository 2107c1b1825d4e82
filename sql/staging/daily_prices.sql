-- Metrics of daily_prices (Athena/Trino dialect; DuckDB runs it via sqlglot).
-- Input: bars (symbol, trade_date, open, high, low, close, volume, rsi_avg_gain_seed,
-- rsi_avg_loss_seed, rsi_seeded), one row per (symbol, trade_date), every bar valid: the build
-- supplies the bars that passed sql/checks/rows (keys present, 0 < low <= open, close <= high,
-- volume present and >= 0). The three rsi_* columns are NULL, NULL, FALSE in a full build; an
-- incremental one seeds rsi_14 with them (see rsi_14 below).
-- The exact definitions are those of issue 4 ("Metrics: table daily_prices").
-- Corporate actions (issue 14): splits (symbol, ex_date, split_factor: new shares per old
-- share) and dividends (symbol, ex_date, amount: cash per share as declared), one row per
-- (symbol, ex_date), registered by the build from raw/splits and raw/dividends.
--
-- Split adjustment. adj_factor = the product of the split_factors of every split after the
-- bar's date (a split's ex_date is the first session at the new scale), 1 after the last one;
-- the product is exp(sum(ln)), exact to ~1e-16. adj_open/high/low/close = price / adj_factor,
-- adj_volume = volume * adj_factor (DOUBLE). Every price-based metric reads the adjusted bar:
-- price_change_pct, log_return, the volatility estimators, hv_30d, the SMAs, rsi_14, and
-- volume_surge_ratio (on adj_volume), so a 10:1 split is no jump. open..volume stay as traded.
-- daily_return (close - open) and avg_price ((o+h+l+c)/4) stay in traded prices, as the
-- design card defines them; candle_type and is_market_up read the traded bar (one bar's shape
-- does not depend on its scale, and the traded values avoid a rounding flip at a boundary).
-- dividend: the cash dividend going ex on that session (as declared), else 0.
-- dividend_yield_ttm: the dividends gone ex in the trailing 365 calendar days (ex_date in
-- (trade_date - 365 days, trade_date]) / close. Each dividend is first put at this bar's share
-- scale (amount * adj_factor(bar) / adj_factor(its ex_date)): with no split in the window that
-- is the plain sum / close; across a split, shares and dividend stay comparable.
-- A split or dividend on a day with no bar is still honoured (adj_factor compares dates).
-- Non-session days: a split dated on a weekend or holiday takes effect at the next session
-- (adj_factor compares dates, so that session is the first at the new scale); a dividend so
-- dated goes ex on the next NYSE session likewise (dividend_events, from xnys_sessions): its
-- `dividend` row, its place in dividend_yield_ttm and its corporate_actions row are all that
-- session's. Two dividends that land on one session (a Saturday's and the Monday's) sum:
-- both go ex there.
-- Earnings (issue 24): corporate_earnings (symbol, fiscal_date_ending, reported_date,
-- reported_eps, eps_basis_date), one row per (symbol, quarter), registered by the build from
-- raw/earnings (lake/earnings.py): reported_eps is on the share basis of eps_basis_date (the
-- reported_date when as reported; the day it was fetched from a vendor that restates past
-- quarters for later splits, as Alpha Vantage does).
-- A report counts from the first session after its reported_date, whatever the time of day
-- it came out: a session t knows the reports with reported_date < t (t is a session, so that
-- is the first session after it on). eps_ttm(t) = the sum of the EPS of the four latest
-- quarters (by fiscal_date_ending) known at t, each put on t's share basis: EPS *
-- adj_factor(t) / adj_factor(its eps_basis_date), as the dividends are. NULL unless four are
-- known, they are consecutive (their quarter ends span 240 to 300 days: three quarters are
-- ~273, with a missing one ~365, with one quarter under two dates ~183) and the newest ended
-- within 365 days before t (reports that stopped coming leave no stale number); a sum within
-- 1e-9 of 0 is 0. pe_ratio_ttm = close / eps_ttm and
-- payout_ratio_ttm = dividends gone ex in the trailing 365 days (dividend_yield_ttm's, at t's
-- scale) / eps_ttm: NULL when eps_ttm is NULL or <= 0 (a loss has no meaningful P/E).
-- eps_quarter, eps_quarter_end, eps_reported_date: on the symbol's first bar after a report
-- (the session the market first traded on it), that report's EPS at the session's share
-- basis, its quarter end and its reported_date; NULL on other rows. Two reports first seen on
-- one bar (a backlog filed at once) show the newer quarter; eps_ttm counts both.
-- Each report's state is computed once per (symbol, reported_date) and joined to the bars as
-- a range (earnings_states), not per bar: bars x reports would be ~100 times the rows.
--
-- No ORDER BY: the build writes Parquet partitions, which promise readers no order (Athena's
-- CTAS writes files in parallel anyway); sorting 5M wide rows added ~10% to the write step.
--
-- Windows count rows of one symbol in trade_date order. Every input row is valid, so a window
-- holds all of its inputs exactly when the row number rn reaches the window's length: each
-- windowed metric is NULL until then (rn >= n, or n + 1 where an input needs the previous
-- close), never a partial value. Counting inputs per window instead (count() over the same
-- frame) would add seven window aggregates, a third of the window work, to say the same.
--
-- Portability: only constructs that mean the same on Athena (Trino) and DuckDB.
-- * Divisions are on DOUBLE: Trino's BIGINT / BIGINT truncates (volume is BIGINT), and a
--   decimal literal divided by a decimal literal (13.0 / 14.0) is DECIMAL arithmetic on Trino,
--   so every constant ratio starts from CAST(... AS DOUBLE).
-- * A divisor that can be 0 is guarded (CASE): Trino gives Infinity/NaN, not NULL.
-- * ln() only ever sees positive arguments (CASE): Trino gives NaN/-Infinity, DuckDB raises.
--   With valid bars the guards never fire; they keep a stray bad bar from failing the query.
-- * Every window is spelled out in full (Athena's support for a named WINDOW clause is
--   unclear). lag() and row_number() take no frame: both engines ignore frames for them.
-- * sqrt() of a window mean that is mathematically >= 0 goes through greatest(x, 0.0): Trino
--   may compute sliding sums by adding and removing rows, which can leave -1e-20 where the
--   true value is 0, and sqrt of that is NaN. greatest() is only used on non-NULL arguments:
--   Trino's greatest() is NULL on any NULL argument, DuckDB's skips NULLs.
-- * var_samp/stddev_samp are the sample (n - 1) forms on both (sqlglot writes var_samp as
--   DuckDB's VARIANCE, which is the sample variance).
-- * Every GROUP BY sum of doubles names its order (sum(x ORDER BY ...), Trino syntax): a
--   plain sum() adds in the order threads hand rows over, so two builds of the same lake
--   could differ in the last bit. DuckDB (local builds) honours the order; Trino (Athena)
--   parses it but drops it for sum (PruneOrderByInAggregation), so there the trailing
--   dividends and adj_factor may still differ in the last bit from build to build.
--   eps_ttm adds its four quarters by position instead, which holds on both.
--
-- Metrics that needed a dialect workaround: volume_surge_ratio (BIGINT division),
-- garman_klass_vol_20d / rogers_satchell_vol_20d / yang_zhang_vol_20d / hv_30d /
-- parkinson_vol_20d (sqrt of a rounded-below-zero mean), yang_zhang_vol_20d (k as DOUBLE,
-- not DECIMAL), rsi_14 (no recursion, bounded powers; see below).
--
-- Each distinct logarithm is taken once per row (8 of them): the Garman-Klass term is built
-- from ln(high/low) and ln(close/open). Garman-Klass and Rogers-Satchell terms are >= 0 on a
-- consistent bar (0 < low <= open, close <= high), which is what makes the clamp above exact.
--
-- rsi_14 (Wilder). Let a = 13/14, g_j the gain of row j (row numbers rn from 1 per symbol;
-- row 1 has no change). The seed at row 15 is the plain mean of g_2..g_15; afterwards
-- avg_t = a * avg_(t-1) + g_t / 14. Unrolled, for t >= 15:
--     avg_t = (1/14) * sum over j = 2..t of a^(t - q_j) * g_j,   q_j = max(j, 15),
-- so the seed rows all carry the weight of row 15. SQL keeps only the last B = 500 rows
-- (j > t - B). What is dropped is a^B * (avg_gain + avg_loss at row t - B) (or less, while
-- the seed rows are dropped, t - B < 15). With a^500 = 8.2e-17, below double rounding, the
-- RSI moves by at most 100 * 8.2e-17 * S(t-B) / S(t), where S = avg_gain + avg_loss: within
-- 1e-6 unless the average absolute change fell more than 1e8-fold in 500 rows, e.g. after
-- 250+ identical closes, where TA-Lib itself reports 0 once S < 1e-8. A 10:1 split changes S
-- some tens-fold. (L = 300 would not do: a^300 = 2.2e-10 leaves ~1e-6 at 300 rows after a
-- 10:1 split.) An incremental build does not read B rows back: it seeds the sums (below).
-- A window sum cannot see the current row's rn, and a^(t - j) = a^t * a^-j overflows after
-- ~9,600 rows. So rows are cut into blocks of B by q: block end c_j, position p_j = (q_j - 1)
-- mod B. Each row contributes x_j = a^(c_j - q_j) * g_j (a weight in [a^(B-1), 1]), summed
-- separately for even and odd blocks. A frame of B rows spans at most two blocks, the
-- current one and the one before, of different parity, so
--     sum a^(t - q_j) g_j = a^(p_t - (B - 1)) * sum(x, own parity) + a^(p_t + 1) * sum(x, other)
-- with every power in [a^B, a^-(B-1)] = [8e-17, 1.1e16]: no overflow, no underflow, and the
-- factorization keeps full relative precision (all terms are >= 0).
-- RSI = 100 * avg_gain / (avg_gain + avg_loss): 100 when avg_loss = 0; 50 when both are 0
-- (TA-Lib gives 0 there). NULL for the first 14 rows.
-- rsi_avg_gain_14 / rsi_avg_loss_14 publish avg_gain and avg_loss (adjusted prices), so an
-- incremental build continues Wilder's recursion instead of re-reading B rows: its bars carry,
-- on the last published row before a symbol's recomputed ones (the seed row), that row's
-- published averages (rsi_avg_*_seed), and rsi_seeded = TRUE on the seed row and every
-- earlier row of the symbol. Such rows contribute 14 * seed as the seed row's gain and 0
-- before it, so for t after the seed row s: avg_t = a^(t - s) * avg_s + (1/14) * sum over
-- j = s+1..t of a^(t - j) * g_j, which is the recursion itself (the seed row is never in
-- the seed period: its averages are not NULL). The rows the other windows need before the
-- first recomputed row (50) are then all the history an incremental build reads; the
-- build's lookback leaves out the four RSI sums (wap/pipeline.py, RSI_SEEDED_WINDOWS).
WITH split_events AS (
    SELECT symbol, CAST(ex_date AS DATE) AS ex_date, split_factor FROM corporate_splits
),

dividend_dates AS (
    -- Each dividend with the first session on or after its date. xnys_sessions holds every
    -- closed session up to the build's time, and the build applies no action dated after
    -- the last of them (actions.build_frames), so one is found within a few days (the
    -- longest NYSE closure since 2000 is four sessions). A date before the calendar's start
    -- (2000) finds none and keeps its date: no bar is that old.
    SELECT
        d.symbol,
        CAST(d.ex_date AS DATE) AS declared_date,
        d.amount,
        min(x.session) AS next_session
    FROM corporate_dividends AS d
    LEFT JOIN xnys_sessions AS x
        ON
            x.session >= CAST(d.ex_date AS DATE)
            AND x.session < date_add('day', 10, CAST(d.ex_date AS DATE))
    GROUP BY d.symbol, CAST(d.ex_date AS DATE), d.amount
),

dividend_events AS (
    -- One row per (symbol, session it goes ex on): dividends landing on one session sum.
    SELECT
        symbol,
        coalesce(next_session, declared_date) AS ex_date,
        sum(amount ORDER BY declared_date, amount) AS amount
    FROM dividend_dates
    GROUP BY symbol, coalesce(next_session, declared_date)
),

split_products AS (
    -- Each split with the product of its own and every later factor: the adj_factor of the
    -- bars before it.
    SELECT
        s.symbol,
        s.ex_date,
        exp(sum(ln(l.split_factor) ORDER BY l.ex_date)) AS factor_before
    FROM split_events AS s
    INNER JOIN split_events AS l ON l.symbol = s.symbol AND l.ex_date >= s.ex_date
    WHERE s.split_factor > 0 AND l.split_factor > 0
    GROUP BY s.symbol, s.ex_date
),

split_steps AS (
    -- ... back to the previous split's ex_date: the bars in [previous_ex_date, ex_date).
    SELECT
        a.symbol,
        a.ex_date,
        a.factor_before,
        max(p.ex_date) AS previous_ex_date
    FROM split_products AS a
    LEFT JOIN split_events AS p
        ON p.symbol = a.symbol AND p.ex_date < a.ex_date AND p.split_factor > 0
    GROUP BY a.symbol, a.ex_date, a.factor_before
),

adjusted_dividends AS (
    -- Each dividend at the share scale after the last split: amount / adj_factor(ex_date).
    SELECT
        d.symbol,
        d.ex_date,
        d.amount,
        d.amount / coalesce(f.factor_before, 1.0) AS adj_amount
    FROM dividend_events AS d
    LEFT JOIN split_steps AS f
        ON
            f.symbol = d.symbol
            AND d.ex_date < f.ex_date
            AND (f.previous_ex_date IS NULL OR d.ex_date >= f.previous_ex_date)
),

trailing_dividends AS (
    SELECT
        b.symbol,
        b.trade_date,
        sum(d.adj_amount ORDER BY d.ex_date) AS adj_dividends_365d
    FROM bars AS b
    INNER JOIN adjusted_dividends AS d
        ON
            d.symbol = b.symbol
            AND d.ex_date <= b.trade_date
            AND d.ex_date > date_add('day', -365, b.trade_date)
    GROUP BY b.symbol, b.trade_date
),

earnings_reports AS (
    -- Each report with its EPS at the share scale after the last split (adj_eps, as
    -- adjusted_dividends' adj_amount): reported_eps / adj_factor(eps_basis_date).
    SELECT
        e.symbol,
        CAST(e.fiscal_date_ending AS DATE) AS fiscal_date_ending,
        CAST(e.reported_date AS DATE) AS reported_date,
        e.reported_eps / coalesce(f.factor_before, 1.0) AS adj_eps
    FROM corporate_earnings AS e
    LEFT JOIN split_steps AS f
        ON
            f.symbol = e.symbol
            AND CAST(e.eps_basis_date AS DATE) < f.ex_date
            AND (
                f.previous_ex_date IS NULL
                OR CAST(e.eps_basis_date AS DATE) >= f.previous_ex_date
            )
),

earnings_known AS (
    -- At each date a symbol published a report, the quarters known then (every report
    -- published on or before it), newest quarter first.
    SELECT
        k.symbol,
        k.reported_date AS known_from,
        q.fiscal_date_ending,
        q.adj_eps,
        row_number() OVER (
            PARTITION BY k.symbol, k.reported_date ORDER BY q.fiscal_date_ending DESC
        ) AS recency
    FROM (SELECT DISTINCT symbol, reported_date FROM earnings_reports) AS k
    INNER JOIN earnings_reports AS q
        ON q.symbol = k.symbol AND q.reported_date <= k.reported_date
),

earnings_counts AS (
    -- The four latest quarters known from known_from on, their EPS added oldest first in
    -- a fixed order on either engine (a NULL sum when fewer than four: no TTM then).
    SELECT
        symbol,
        known_from,
        count(*) AS quarters,
        max(CASE WHEN recency = 4 THEN adj_eps END)
        + max(CASE WHEN recency = 3 THEN adj_eps END)
        + max(CASE WHEN recency = 2 THEN adj_eps END)
        + max(CASE WHEN recency = 1 THEN adj_eps END) AS adj_eps_4q,
        max(fiscal_date_ending) AS newest_quarter_end,
        min(fiscal_date_ending) AS oldest_quarter_end
    FROM earnings_known
    WHERE recency <= 4
    GROUP BY symbol, known_from
),

earnings_states AS (
    -- ... for the sessions in (known_from, known_until]: known_until is the symbol's next
    -- reporting date (a self-join, not lead(): the build's lookback analysis refuses windows
    -- that read later rows, and a symbol has only some hundred reports).
    SELECT
        s.symbol,
        s.known_from,
        min(n.known_from) AS known_until,
        s.quarters,
        s.adj_eps_4q,
        s.newest_quarter_end,
        s.oldest_quarter_end
    FROM earnings_counts AS s
    LEFT JOIN earnings_counts AS n ON n.symbol = s.symbol AND n.known_from > s.known_from
    GROUP BY
        s.symbol,
        s.known_from,
        s.quarters,
        s.adj_eps_4q,
        s.newest_quarter_end,
        s.oldest_quarter_end
),

bar_earnings AS (
    -- adj_eps_ttm: the four quarters' EPS at the adjusted scale, where they make a TTM.
    SELECT
        b.symbol,
        b.trade_date,
        CASE
            WHEN
                s.quarters = 4
                AND date_diff('day', s.oldest_quarter_end, s.newest_quarter_end)
                BETWEEN 240 AND 300
                AND s.newest_quarter_end >= date_add('day', -365, b.trade_date)
                -- A sum within 1e-9 of 0 is 0: 0.1 + 0.2 - 0.3 is 5.6e-17 in doubles, a P/E
                -- of 1e18 otherwise (and its sign would follow the summation order).
                THEN CASE WHEN abs(s.adj_eps_4q) < 1e-9 THEN 0.0 ELSE s.adj_eps_4q END
        END AS adj_eps_ttm
    FROM bars AS b
    INNER JOIN earnings_states AS s
        ON
            s.symbol = b.symbol
            AND s.known_from < b.trade_date
            AND (s.known_until IS NULL OR b.trade_date <= s.known_until)
),

report_bars AS (
    -- Each report on the symbol's first bar after it: the bar whose previous bar is on or
    -- before reported_date (on the symbol's first bar: a report on or after the session
    -- before it).
    SELECT
        symbol,
        trade_date,
        fiscal_date_ending,
        reported_date,
        adj_eps
    FROM (
        SELECT
            b.symbol,
            b.trade_date,
            r.fiscal_date_ending,
            r.reported_date,
            r.adj_eps,
            row_number() OVER (
                PARTITION BY b.symbol, b.trade_date ORDER BY r.fiscal_date_ending DESC
            ) AS pick
        FROM (
            SELECT
                symbol,
                trade_date,
                lag(trade_date) OVER (PARTITION BY symbol ORDER BY trade_date) AS previous_date
            FROM bars
        ) AS b
        LEFT JOIN (
            SELECT
                session,
                lag(session) OVER (ORDER BY session) AS previous_session
            FROM xnys_sessions
        ) AS x ON x.session = b.trade_date
        INNER JOIN earnings_reports AS r
            ON
                r.symbol = b.symbol
                AND r.reported_date < b.trade_date
                AND r.reported_date >= coalesce(b.previous_date, x.previous_session, b.trade_date)
    ) AS picked
    WHERE pick = 1
),

adjusted AS (
    SELECT
        b.symbol,
        b.trade_date,
        b.open AS traded_open,
        b.high AS traded_high,
        b.low AS traded_low,
        b.close AS traded_close,
        b.volume AS traded_volume,
        b.rsi_avg_gain_seed,
        b.rsi_avg_loss_seed,
        b.rsi_seeded,
        coalesce(f.factor_before, 1.0) AS adj_factor,
        coalesce(d.amount, 0.0) AS dividend,
        coalesce(t.adj_dividends_365d, 0.0) AS adj_dividends_365d,
        e.adj_eps_ttm,
        r.adj_eps AS adj_eps_quarter,
        r.fiscal_date_ending AS eps_quarter_end,
        r.reported_date AS eps_reported_date
    FROM bars AS b
    LEFT JOIN split_steps AS f
        ON
            f.symbol = b.symbol
            AND b.trade_date < f.ex_date
            AND (f.previous_ex_date IS NULL OR b.trade_date >= f.previous_ex_date)
    LEFT JOIN adjusted_dividends AS d ON d.symbol = b.symbol AND d.ex_date = b.trade_date
    LEFT JOIN trailing_dividends AS t ON t.symbol = b.symbol AND t.trade_date = b.trade_date
    LEFT JOIN bar_earnings AS e ON e.symbol = b.symbol AND e.trade_date = b.trade_date
    LEFT JOIN report_bars AS r ON r.symbol = b.symbol AND r.trade_date = b.trade_date
),

base AS (
    -- open..close and volume below are the split-adjusted bar; traded_* as traded.
    SELECT
        *,
        traded_open / adj_factor AS open,
        traded_high / adj_factor AS high,
        traded_low / adj_factor AS low,
        traded_close / adj_factor AS close,
        CAST(traded_volume AS DOUBLE) * adj_factor AS volume,
        lag(traded_close / adj_factor) OVER (PARTITION BY symbol ORDER BY trade_date) AS prev_close,
        row_number() OVER (PARTITION BY symbol ORDER BY trade_date) AS rn
    FROM adjusted
),

logs AS (
    SELECT
        *,
        CASE WHEN high > 0 AND low > 0 THEN ln(high / low) END AS ln_hl,
        CASE WHEN close > 0 AND open > 0 THEN ln(close / open) END AS ln_co,
        CASE WHEN open > 0 AND prev_close > 0 THEN ln(open / prev_close) END AS ln_o_prev,
        CASE WHEN close > 0 AND prev_close > 0 THEN ln(close / prev_close) END AS log_return,
        CASE
            WHEN low > 0 AND low <= open AND low <= close AND high >= open AND high >= close
                THEN ln(high / close) * ln(high / open) + ln(low / close) * ln(low / open)
        END AS rs_term,
        -- NULL, not 0, where there is no change (the first row). A seeded row: see rsi_14.
        CASE
            WHEN rsi_seeded THEN 14 * coalesce(rsi_avg_gain_seed, 0.0)
            WHEN close > prev_close THEN close - prev_close
            WHEN close <= prev_close THEN 0.0
        END AS gain,
        CASE
            WHEN rsi_seeded THEN 14 * coalesce(rsi_avg_loss_seed, 0.0)
            WHEN close < prev_close THEN prev_close - close
            WHEN close >= prev_close THEN 0.0
        END AS loss,
        -- Position in the block of 500 (seed rows 1..15 all sit at row 15) and the block's parity.
        (CASE WHEN rn < 15 THEN 15 ELSE rn END - 1) % 500 AS rsi_pos,
        (CASE WHEN rn < 15 THEN 15 ELSE rn END - 1) % 1000 < 500 AS rsi_even
    FROM base
),

terms AS (
    SELECT
        *,
        CASE
            WHEN rs_term IS NOT NULL
                THEN 0.5 * ln_hl * ln_hl - (2.0 * ln(2.0) - 1.0) * ln_co * ln_co
        END AS gk_term,
        power(CAST(13 AS DOUBLE) / 14, 499 - rsi_pos) * gain AS x_gain,
        power(CAST(13 AS DOUBLE) / 14, 499 - rsi_pos) * loss AS x_loss
    FROM logs
),

windowed AS (
    SELECT
        *,
        avg(ln_hl * ln_hl) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
        ) AS mean_hl2_20,
        avg(gk_term) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
        ) AS mean_gk_20,
        avg(rs_term) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
        ) AS mean_rs_20,
        var_samp(ln_o_prev) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
        ) AS var_o_prev_20,
        var_samp(ln_co) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
        ) AS var_co_20,
        stddev_samp(log_return) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 29 PRECEDING AND CURRENT ROW
        ) AS sd_lr_30,
        avg(close) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 4 PRECEDING AND CURRENT ROW
        ) AS mean_close_5,
        avg(close) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 19 PRECEDING AND CURRENT ROW
        ) AS mean_close_20,
        avg(close) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 49 PRECEDING AND CURRENT ROW
        ) AS mean_close_50,
        avg(CAST(volume AS DOUBLE)) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 7 PRECEDING AND 1 PRECEDING
        ) AS mean_volume_prev_7,
        sum(CASE WHEN rsi_even THEN x_gain END) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 499 PRECEDING AND CURRENT ROW
        ) AS x_gain_even,
        sum(CASE WHEN NOT rsi_even THEN x_gain END) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 499 PRECEDING AND CURRENT ROW
        ) AS x_gain_odd,
        sum(CASE WHEN rsi_even THEN x_loss END) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 499 PRECEDING AND CURRENT ROW
        ) AS x_loss_even,
        sum(CASE WHEN NOT rsi_even THEN x_loss END) OVER (
            PARTITION BY symbol ORDER BY trade_date ROWS BETWEEN 499 PRECEDING AND CURRENT ROW
        ) AS x_loss_odd
    FROM terms
),

wilder AS (
    SELECT
        *,
        CASE
            WHEN rn >= 15
                THEN (
                    power(CAST(13 AS DOUBLE) / 14, rsi_pos - 499)
                    * coalesce(CASE WHEN rsi_even THEN x_gain_even ELSE x_gain_odd END, 0.0)
                    + power(CAST(13 AS DOUBLE) / 14, rsi_pos + 1)
                    * coalesce(CASE WHEN rsi_even THEN x_gain_odd ELSE x_gain_even END, 0.0)
                ) / 14
        END AS avg_gain,
        CASE
            WHEN rn >= 15
                THEN (
                    power(CAST(13 AS DOUBLE) / 14, rsi_pos - 499)
                    * coalesce(CASE WHEN rsi_even THEN x_loss_even ELSE x_loss_odd END, 0.0)
                    + power(CAST(13 AS DOUBLE) / 14, rsi_pos + 1)
                    * coalesce(CASE WHEN rsi_even THEN x_loss_odd ELSE x_loss_even END, 0.0)
                ) / 14
        END AS avg_loss
    FROM windowed
)

SELECT
    symbol,
    trade_date,
    traded_open AS open,
    traded_high AS high,
    traded_low AS low,
    traded_close AS close,
    traded_volume AS volume,
    adj_factor,
    open AS adj_open,
    high AS adj_high,
    low AS adj_low,
    close AS adj_close,
    volume AS adj_volume,
    dividend,
    CASE WHEN close > 0 THEN adj_dividends_365d / close END AS dividend_yield_ttm,
    adj_eps_ttm * adj_factor AS eps_ttm,
    CASE WHEN adj_eps_ttm > 0 THEN traded_close / (adj_eps_ttm * adj_factor) END AS pe_ratio_ttm,
    CASE WHEN adj_eps_ttm > 0 THEN adj_dividends_365d / adj_eps_ttm END AS payout_ratio_ttm,
    adj_eps_quarter * adj_factor AS eps_quarter,
    eps_quarter_end,
    eps_reported_date,
    traded_close - traded_open AS daily_return,
    (traded_open + traded_high + traded_low + traded_close) / 4.0 AS avg_price,
    CASE WHEN prev_close <> 0 THEN 100.0 * (close / prev_close - 1.0) END AS price_change_pct,
    log_return,
    abs(ln_hl) / sqrt(4.0 * ln(2.0)) AS parkinson_vol,
    CASE
        WHEN rn >= 20 THEN sqrt(252.0 / (4.0 * ln(2.0)) * greatest(mean_hl2_20, 0.0))
    END AS parkinson_vol_20d,
    CASE WHEN rn >= 20 THEN sqrt(252.0 * greatest(mean_gk_20, 0.0)) END AS garman_klass_vol_20d,
    CASE WHEN rn >= 20 THEN sqrt(252.0 * greatest(mean_rs_20, 0.0)) END AS rogers_satchell_vol_20d,
    -- 20 overnight moves need 21 rows. k = 0.34 / (1.34 + (n + 1) / (n - 1)) with n = 20, as
    -- DOUBLE (DECIMAL on Trino otherwise).
    CASE
        WHEN rn >= 21
            THEN sqrt(252.0 * greatest(
                var_o_prev_20
                + CAST(0.34 AS DOUBLE) / (CAST(1.34 AS DOUBLE) + CAST(21 AS DOUBLE) / 19)
                * var_co_20
                + (1.0 - CAST(0.34 AS DOUBLE) / (CAST(1.34 AS DOUBLE) + CAST(21 AS DOUBLE) / 19))
                * mean_rs_20,
                0.0
            ))
    END AS yang_zhang_vol_20d,
    -- 30 log returns need 31 rows.
    CASE WHEN rn >= 31 THEN sd_lr_30 * sqrt(252.0) END AS hv_30d,
    CASE WHEN rn >= 5 THEN mean_close_5 END AS sma_5,
    CASE WHEN rn >= 20 THEN mean_close_20 END AS sma_20,
    CASE WHEN rn >= 50 THEN mean_close_50 END AS sma_50,
    CASE
        WHEN avg_gain + avg_loss = 0 THEN 50.0
        ELSE 100.0 * avg_gain / (avg_gain + avg_loss)
    END AS rsi_14,
    avg_gain AS rsi_avg_gain_14,
    avg_loss AS rsi_avg_loss_14,
    CASE
        WHEN rn >= 8 AND mean_volume_prev_7 <> 0
            THEN CAST(volume AS DOUBLE) / mean_volume_prev_7
    END AS volume_surge_ratio,
    CASE
        WHEN traded_high - traded_low = 0 THEN 'flat'
        WHEN abs(traded_close - traded_open) <= 0.1 * (traded_high - traded_low) THEN 'doji'
        WHEN
            (CASE WHEN traded_open < traded_close THEN traded_open ELSE traded_close END) - traded_low >= 2.0 * abs(traded_close - traded_open)
            AND traded_high - (CASE WHEN traded_open > traded_close THEN traded_open ELSE traded_close END) <= abs(traded_close - traded_open)
            THEN 'hammer'
        WHEN
            traded_high - (CASE WHEN traded_open > traded_close THEN traded_open ELSE traded_close END) >= 2.0 * abs(traded_close - traded_open)
            AND (CASE WHEN traded_open < traded_close THEN traded_open ELSE traded_close END) - traded_low <= abs(traded_close - traded_open)
            THEN 'shooting_star'
        WHEN traded_close > traded_open THEN 'bullish'
        WHEN traded_high IS NOT NULL AND traded_low IS NOT NULL AND traded_close IS NOT NULL AND traded_open IS NOT NULL
            THEN 'bearish'
    END AS candle_type,
    traded_close > traded_open AS is_market_up,
    year(trade_date) AS year
FROM wilder
