"""What each column of daily_prices means and in which unit, declared once: `marketlake
describe`, the Glue column comments Athena shows (engines.athena) and the column table of
docs/columns.md all come from DAILY_PRICES. The definitions restate
sql/staging/daily_prices.sql, which computes them; tests hold the two to the same columns.

Names are not changed to match units (a rename breaks every query, view, dashboard and
deployed table): where a name misleads, `note` says so, and docs/columns.md lists it.

Stays importable on Python 3.9: the Glue job imports engines.athena, which reads this."""

from __future__ import annotations

from typing import NamedTuple

GLUE_COMMENT_LIMIT = 255  # characters: Glue's Column.Comment length constraint


class Column(NamedTuple):
    unit: str
    definition: str
    note: str = ""  # where the name says something the unit does not

    def comment(self) -> str:
        """Unit, definition and note as one line of at most GLUE_COMMENT_LIMIT characters."""
        text = f"{self.unit}: {self.definition}"
        if self.note:
            text = f"{text} NOTE: {self.note}"
        text = " ".join(text.split())  # Glue refuses newlines in a comment
        if len(text) > GLUE_COMMENT_LIMIT:
            text = text[: GLUE_COMMENT_LIMIT - 1].rstrip() + "…"
        return text


USD = "USD per share"
FRACTION = "fraction (0.05 = 5 %)"
ANNUALISED = "fraction, annualised (×√252)"

# Windows count one symbol's rows in trade_date order; a window not yet full is NULL.
# "adjusted" = split-adjusted: the traded price / adj_factor (volume × adj_factor).
DAILY_PRICES: dict[str, Column] = {
    "symbol": Column("text", "Ticker symbol."),
    "trade_date": Column("date", "The NYSE session of the bar."),
    "open": Column(USD, "Opening price as traded (not split-adjusted)."),
    "high": Column(USD, "Highest price as traded (not split-adjusted)."),
    "low": Column(USD, "Lowest price as traded (not split-adjusted)."),
    "close": Column(USD, "Closing price as traded (not split-adjusted)."),
    "volume": Column("shares", "Shares traded in the session, as traded (not split-adjusted)."),
    "adj_factor": Column(
        "ratio (new shares per old share)",
        "Product of the split factors of every split after this session; 1 after the last.",
    ),
    "adj_open": Column(USD, "Split-adjusted open: open / adj_factor."),
    "adj_high": Column(USD, "Split-adjusted high: high / adj_factor."),
    "adj_low": Column(USD, "Split-adjusted low: low / adj_factor."),
    "adj_close": Column(USD, "Split-adjusted close: close / adj_factor."),
    "adj_volume": Column("shares", "Split-adjusted volume: volume × adj_factor (a double)."),
    "dividend": Column(
        USD, "Cash dividend going ex on this session, as declared (not split-adjusted); else 0."
    ),
    "dividend_yield_ttm": Column(
        FRACTION,
        "Dividends gone ex in the trailing 365 calendar days, split-adjusted like adj_close, "
        "divided by adj_close.",
        "a fraction, not a percent.",
    ),
    # Earnings: a report counts from the first session after its reported_date (point in
    # time), each EPS put on this session's share basis (× adj_factor / adj_factor of the
    # day its EPS were on), so it compares with close as traded.
    "eps_ttm": Column(
        USD,
        "Sum of the EPS of the 4 latest quarters reported before this session, at this "
        "session's share basis (like close, not adj_close); NULL unless the 4 are consecutive "
        "and the newest ended within 365 days.",
    ),
    "pe_ratio_ttm": Column(
        "ratio (price / earnings)",
        "close / eps_ttm, both as traded; NULL when eps_ttm is NULL or <= 0 (a loss).",
    ),
    "payout_ratio_ttm": Column(
        FRACTION,
        "Dividends gone ex in the trailing 365 calendar days (as in dividend_yield_ttm) / "
        "eps_ttm, both at this session's share basis; NULL when eps_ttm is NULL or <= 0.",
        "a fraction (0.4 = 40 % of earnings paid out), not a percent.",
    ),
    "eps_quarter": Column(
        USD,
        "On the symbol's first session after a report: that quarter's EPS at this session's "
        "share basis; else NULL.",
    ),
    "eps_quarter_end": Column(
        "date", "On the first session after a report: its fiscal quarter's last day; else NULL."
    ),
    "eps_reported_date": Column(
        "date", "On the first session after a report: the day it was published; else NULL."
    ),
    "daily_return": Column(
        USD,
        "close - open as traded: the session's open-to-close move.",
        "in dollars per share, not a fraction: the percent change is price_change_pct.",
    ),
    "avg_price": Column(USD, "(open + high + low + close) / 4 as traded."),
    "price_change_pct": Column(
        "percent (5.0 = 5 %)",
        "100 × (adj_close / previous adj_close - 1): close-to-close; NULL on the first row.",
    ),
    "log_return": Column(
        FRACTION,
        "ln(adj_close / previous adj_close): close-to-close; NULL on the first row.",
    ),
    "parkinson_vol": Column(
        "fraction, daily (not annualised)",
        "This session's Parkinson estimate: |ln(adj_high / adj_low)| / √(4 ln 2).",
        "daily, one session: unlike the *_20d estimators it is neither windowed nor annualised.",
    ),
    "parkinson_vol_20d": Column(
        ANNUALISED,
        "Parkinson volatility over the last 20 rows: √(252 / (4 ln 2) × mean(ln(h/l)²)), "
        "adjusted prices.",
    ),
    "garman_klass_vol_20d": Column(
        ANNUALISED,
        "Garman-Klass volatility over the last 20 rows: √(252 × mean(½ ln(h/l)² - "
        "(2 ln 2 - 1) ln(c/o)²)), adjusted prices.",
    ),
    "rogers_satchell_vol_20d": Column(
        ANNUALISED,
        "Rogers-Satchell volatility over the last 20 rows: √(252 × mean(ln(h/c) ln(h/o) + "
        "ln(l/c) ln(l/o))), adjusted prices.",
    ),
    "yang_zhang_vol_20d": Column(
        ANNUALISED,
        "Yang-Zhang volatility over the last 20 rows (21 with the previous close): "
        "√(252 × (var(ln(o/prev c)) + k var(ln(c/o)) + (1 - k) mean(Rogers-Satchell))), "
        "k = 0.34 / (1.34 + 21/19), sample variances, adjusted prices.",
    ),
    "hv_30d": Column(
        ANNUALISED,
        "Historical volatility: sample standard deviation of the last 30 log_return values "
        "(31 rows) × √252.",
    ),
    "sma_5": Column(USD, "Mean adj_close of the last 5 rows."),
    "sma_20": Column(USD, "Mean adj_close of the last 20 rows."),
    "sma_50": Column(USD, "Mean adj_close of the last 50 rows."),
    "rsi_14": Column(
        "0-100",
        "Wilder's 14-session RSI on adj_close: 100 × avg gain / (avg gain + avg loss); 50 when "
        "both are 0; NULL for the first 14 rows.",
    ),
    "rsi_avg_gain_14": Column(
        USD, "Wilder's smoothed average gain per session behind rsi_14 (adjusted close)."
    ),
    "rsi_avg_loss_14": Column(
        USD, "Wilder's smoothed average loss per session behind rsi_14 (adjusted close)."
    ),
    "volume_surge_ratio": Column(
        "ratio (1.0 = the average)",
        "adj_volume / mean adj_volume of the 7 sessions before this one; NULL until row 8.",
    ),
    "candle_type": Column(
        "text",
        "Shape of the traded bar: flat, doji, hammer, shooting_star, bullish or bearish.",
    ),
    "is_market_up": Column(
        "boolean",
        "close > open as traded: this symbol's bar closed above its open.",
        "this symbol's session, not the market's.",
    ),
    "year": Column("year", "Year of trade_date: the partition key."),
}

TABLES: dict[str, dict[str, Column]] = {"daily_prices": DAILY_PRICES}


def declared(table: str) -> dict[str, Column]:
    """The declared columns of `table` (matched case-insensitively); empty when none are."""
    return TABLES.get(table.lower(), {})


# -- the docs: docs/columns.md's table and README's exceptions, between these markers --------

DOC_START, DOC_END = "<!-- columns:start -->", "<!-- columns:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def markdown_table(columns: dict[str, Column] = DAILY_PRICES) -> str:
    """The columns as a Markdown table: name, unit, definition (and the note, in bold)."""
    lines = ["| column | unit | definition |", "|---|---|---|"]
    for name, column in columns.items():
        meaning = _cell(column.definition)
        if column.note:
            meaning += f" **Note: {_cell(column.note)}**"
        lines.append(f"| `{name}` | {_cell(column.unit)} | {meaning} |")
    return "\n".join(lines)


def markdown_exceptions(columns: dict[str, Column] = DAILY_PRICES) -> str:
    """The columns whose name misleads about their unit, one bullet each."""
    return "\n".join(
        f"- `{name}`: {_cell(column.unit)}; {_cell(column.note)}"
        for name, column in columns.items()
        if column.note
    )


def between_markers(text: str) -> str:
    """What a document holds between DOC_START and DOC_END (stripped), or '' without them."""
    if DOC_START not in text or DOC_END not in text:
        return ""
    return text.split(DOC_START, 1)[1].split(DOC_END, 1)[0].strip()
