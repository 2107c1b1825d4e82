"""Which symbols' published history a change in their splits or dividends restates.

A published version records, per symbol, fingerprints of the splits and dividends it applied
(applied_actions). The next incremental build compares them with the actions in the lake now
(restated_symbols) and recomputes the symbols whose numbers changed:

- splits: adj_factor is the product of every later split's factor, so a split that is new,
  changed or gone changes every row of the symbol before it, and every window that reaches
  them: the symbol is recomputed from its first row.
- dividends: `dividend` on the ex-date and dividend_yield_ttm up to 365 days later read them,
  nothing before the ex-date does. Dividends added after the last one applied restate the
  symbol from the first added ex-date; any other change (an earlier one added, changed or
  gone) from its first row.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd

# "From the symbol's first row": a date before any bar (sessions start in 2000).
FROM_FIRST_ROW = dt.date(1900, 1, 1)
_NONE = {"splits": "", "dividends": "", "dividends_through": None}


def _events(frame: pd.DataFrame, value: str) -> dict[str, list[tuple[dt.date, float]]]:
    """symbol -> [(ex_date, value)] in date order, from a frame of actions.build_frames."""
    events: dict[str, list[tuple[dt.date, float]]] = {}
    for symbol, ex_date, number in zip(frame["symbol"], frame["ex_date"], frame[value]):
        events.setdefault(str(symbol), []).append((pd.Timestamp(ex_date).date(), float(number)))
    return {symbol: sorted(rows) for symbol, rows in events.items()}


def _digest(rows: list[tuple[dt.date, float]]) -> str:
    if not rows:
        return ""
    text = "\n".join(f"{day.isoformat()} {number!r}" for day, number in rows)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def applied_actions(frames: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """What a version records of the actions it applied (frames: actions.build_frames):
    symbol -> fingerprints of its splits and dividends, and its last dividend's ex-date."""
    splits = _events(frames["corporate_splits"], "split_factor")
    dividends = _events(frames["corporate_dividends"], "amount")
    applied = {}
    for symbol in sorted(set(splits) | set(dividends)):
        paid = dividends.get(symbol, [])
        applied[symbol] = {
            "splits": _digest(splits.get(symbol, [])),
            "dividends": _digest(paid),
            "dividends_through": paid[-1][0].isoformat() if paid else None,
        }
    return applied


def restated_symbols(
    recorded: dict[str, dict], frames: dict[str, pd.DataFrame]
) -> dict[str, dt.date]:
    """symbol -> the first date whose published numbers the actions in `frames` change, for
    each symbol whose actions differ from those `recorded` by the published version
    (FROM_FIRST_ROW: all of them)."""
    applied = applied_actions(frames)
    dividends = _events(frames["corporate_dividends"], "amount")
    restated = {}
    for symbol in sorted(set(recorded) | set(applied)):
        before, now = recorded.get(symbol, _NONE), applied.get(symbol, _NONE)
        if before == now:
            continue
        if before["splits"] != now["splits"]:
            restated[symbol] = FROM_FIRST_ROW
            continue
        through = before.get("dividends_through")
        paid = dividends.get(symbol, [])
        kept = [(d, a) for d, a in paid if through is not None and d.isoformat() <= through]
        added = [d for d, _ in paid if through is None or d.isoformat() > through]
        if _digest(kept) == before["dividends"] and added:
            restated[symbol] = added[0]
        else:
            restated[symbol] = FROM_FIRST_ROW
    return restated
