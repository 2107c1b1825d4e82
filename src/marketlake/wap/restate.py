"""Which symbols' published history a change in their splits, dividends or earnings restates.

A published version records, per symbol, fingerprints of the splits, dividends and earnings
it applied (applied_actions). The next incremental build compares them with those in the lake
now (restated_symbols) and recomputes the symbols whose numbers changed:

- splits: adj_factor is the product of every later split's factor, so a split that is new,
  changed or gone changes every row of the symbol before it, and every window that reaches
  them: the symbol is recomputed from its first row.
- dividends: `dividend` on the ex-date and dividend_yield_ttm up to 365 days later read them,
  nothing before the ex-date does. Dividends added after the last one applied restate the
  symbol from the first added ex-date; any other change (an earlier one added, changed or
  gone) from its first row.
- earnings: a report counts only for sessions after its reported_date, so a report added,
  corrected or gone restates the symbol from Jan 1 of the earliest reported_date year whose
  fingerprint differs (lake/earnings.py `fingerprints`). A whole year rather than the exact
  day: an incremental build rewrites whole years from the first one it rebuilds anyway, and
  the weekly new quarter lands in the current year, which it rebuilds already.
A symbol restated for several reasons is recomputed from the earliest date among them.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd

from marketlake.lake import earnings

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
    symbol -> fingerprints of its splits and dividends, and its last dividend's ex-date, and
    (for a symbol with earnings) its earnings fingerprints by year of reported_date."""
    splits = _events(frames["corporate_splits"], "split_factor")
    dividends = _events(frames["corporate_dividends"], "amount")
    reported = _earnings(frames)
    applied: dict[str, dict] = {}
    for symbol in sorted(set(splits) | set(dividends) | set(reported)):
        paid = dividends.get(symbol, [])
        applied[symbol] = {
            "splits": _digest(splits.get(symbol, [])),
            "dividends": _digest(paid),
            "dividends_through": paid[-1][0].isoformat() if paid else None,
        }
        # Only where there are some: a symbol without earnings records what it did before
        # earnings were recorded, so those fingerprints stay comparable.
        if symbol in reported:
            applied[symbol]["earnings"] = reported[symbol]
    return applied


def _earnings(frames: dict[str, pd.DataFrame]) -> dict[str, dict[str, str]]:
    frame = frames.get(earnings.TABLE)
    return {} if frame is None else earnings.fingerprints(frame)


def _actions_part(entry: dict) -> dict:
    return {key: value for key, value in entry.items() if key != "earnings"}


def changed(recorded: dict[str, dict], applied: dict[str, dict]) -> dict[str, list[str]]:
    """symbol -> what changed of its actions between `recorded` and `applied` (both as
    applied_actions gives them): "splits or dividends", "earnings", or both."""
    out: dict[str, list[str]] = {}
    for symbol in sorted(set(recorded) | set(applied)):
        before, now = recorded.get(symbol, _NONE), applied.get(symbol, _NONE)
        kinds = []
        if _actions_part(before) != _actions_part(now):
            kinds.append("splits or dividends")
        if before.get("earnings", {}) != now.get("earnings", {}):
            kinds.append("earnings")
        if kinds:
            out[symbol] = kinds
    return out


def restated_symbols(
    recorded: dict[str, dict], frames: dict[str, pd.DataFrame]
) -> dict[str, dt.date]:
    """symbol -> the first date whose published numbers the actions in `frames` change, for
    each symbol whose actions differ from those `recorded` by the published version
    (FROM_FIRST_ROW: all of them)."""
    applied = applied_actions(frames)
    dividends = _events(frames["corporate_dividends"], "amount")
    restated = {}
    for symbol, kinds in changed(recorded, applied).items():
        before, now = recorded.get(symbol, _NONE), applied.get(symbol, _NONE)
        firsts = []
        if "earnings" in kinds:
            firsts.append(_earnings_from(before.get("earnings", {}), now.get("earnings", {})))
        if "splits or dividends" in kinds:
            firsts.append(_actions_from(before, dividends.get(symbol, []), now))
        restated[symbol] = min(firsts)
    return restated


def _earnings_from(before: dict[str, str], now: dict[str, str]) -> dt.date:
    """Jan 1 of the earliest year of reported_date whose reports differ."""
    years = [year for year in set(before) | set(now) if before.get(year) != now.get(year)]
    return dt.date(int(min(years)), 1, 1)


def _actions_from(before: dict, paid: list[tuple[dt.date, float]], now: dict) -> dt.date:
    if before["splits"] != now["splits"]:
        return FROM_FIRST_ROW
    through = before.get("dividends_through")
    kept = [(d, a) for d, a in paid if through is not None and d.isoformat() <= through]
    added = [d for d, _ in paid if through is None or d.isoformat() > through]
    if _digest(kept) == before["dividends"] and added:
        return added[0]
    return FROM_FIRST_ROW
