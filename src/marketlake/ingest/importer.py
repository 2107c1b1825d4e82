"""`marketlake import`: bring your own history from CSV files (e.g. older than the API's
100 compact sessions). The bars take the same validation and quarantine as any provider's."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import pandas as pd

from marketlake import fields
from marketlake.config import Settings, parse_tickers
from marketlake.errors import MarketlakeError
from marketlake.ingest import adjusted
from marketlake.ingest.csv_formats import read_actions_csv, read_bars_csv
from marketlake.ingest.landing import has_damaged_objects, settle_shortfalls
from marketlake.ingest.runner import (
    IngestReport,
    _claim_lake,
    bad_share,
    judge_bars,
    land_bars,
    quarantine_stamp,
    refuse_batch,
)
from marketlake.lake import actions
from marketlake.lake.raw import format_timestamp
from marketlake.lake.state import load_state, save_state
from marketlake.sessions import CALENDAR_START, eastern_date, last_closed_session
from marketlake.storage import ObjectStore

SOURCE = "import"

# The words a file name may add after its ticker (NVDA_daily.csv, nvda-history.csv): they say
# what the file holds, never which symbol. Alone, they (and a few other words a file is
# named) are no ticker: daily.csv, data.csv.
NAME_WORDS = (
    "daily", "eod", "history", "historical", "prices", "price", "quotes", "bars", "ohlc",
    "ohlcv", "data", "stock", "splits", "dividends", "divs", "earnings",
)  # fmt: skip
NOT_TICKERS = frozenset(NAME_WORDS) | {"file", "test", "table", "sheet", "temp", "tmp", "quote"}
# A ticker: 1 to 5 letters, then perhaps a class after . or - (brk.b, BF-B); then perhaps
# NAME_WORDS, each after _ - . or a space. No word is 1 or 2 letters: a name parses one way.
_NAMED = re.compile(
    rf"([A-Za-z]{{1,5}}(?:[.-][A-Za-z]{{1,2}})?)((?:[ _.-](?:{'|'.join(NAME_WORDS)}))*)\Z",
    re.IGNORECASE,
)
NAME_SUFFIXES = (".csv", ".tsv", ".txt")


def symbol_from_name(path: Path) -> str:
    """The symbol a file's name says, when it is a plausible ticker: NVDA.csv, brk.b.csv,
    BF-B.csv; NVDA_daily.csv, nvda-history.csv, AMD daily prices.csv -> NVDA, NVDA, AMD.
    Any other name (daily_IBM.csv, Alpha Vantage's; HistoricalData_1733412345678.csv,
    Nasdaq's; history.csv) is refused: a wrong guess would land a history under a symbol
    nobody asked for."""
    name = path.name
    stem = name[:-4] if name.lower().endswith(NAME_SUFFIXES) else name
    found = _NAMED.match(stem)
    if found and re.split(r"[.-]", found[1])[0].lower() not in NOT_TICKERS:
        return found[1].upper()
    raise MarketlakeError(
        f"{name}: the file name is not a ticker (NVDA.csv, brk.b.csv, NVDA_daily.csv), so "
        "the symbol is unknown; pass --symbol, or rename the file to its ticker"
    )


def one_symbol(text: str) -> str:
    """--symbol's value: one symbol (ALL is Allstate's, never the whole market)."""
    found = parse_tickers(text + ",") if text.strip(" ,") else ()
    if len(found) != 1:
        raise MarketlakeError(f"--symbol {text!r}: give one symbol, e.g. --symbol NVDA")
    return found[0]


def _csv_files(paths: Sequence[Path]) -> list[Path]:
    """The files given, a folder standing for every *.csv in it (by name; hidden files, such
    as macOS's ._NVDA.csv, left out)."""
    files = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(
            p
            for p in path.iterdir()
            if p.suffix.lower() == ".csv" and not p.name.startswith(".") and p.is_file()
        )
        if not found:
            raise MarketlakeError(
                f"{path}: no .csv file in this folder; nothing was imported. Give the files, "
                "or the folder that holds them"
            )
        files.extend(found)
    return files


def _read_files(paths: Sequence[Path], symbol: str | None) -> list[tuple[Path, str, bytes]]:
    """(path, symbol, bytes) of each file: the symbol from --symbol, else the file name."""
    files = _csv_files(paths)
    if symbol is not None and len(files) > 1:
        raise MarketlakeError(
            f"--symbol names one symbol and {len(files)} files are given; import one file at "
            "a time with it, or name each file after its ticker"
        )
    read = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MarketlakeError(f"{path}: cannot read ({exc.strerror})") from None
        name = one_symbol(symbol) if symbol else symbol_from_name(path)
        read.append((path, name, data))
    return read


def _named_by(symbol: str | None) -> str:
    return "--symbol" if symbol else "the file name"


def _advice(reason: str) -> str:
    """What to do about a file none of whose bars can land, by the first one's reason."""
    if "NYSE session" in reason:
        return "the lake keeps US equities on the NYSE calendar: each date must be a session"
    if "future" in reason or "has not closed" in reason:
        return "import bars of closed sessions only"
    if "trade_date" in reason and "more than once" not in reason:
        return "write the dates as YYYY-MM-DD, e.g. 2024-03-15"
    if "more than once" in reason:
        return "keep one row per date"
    if reason.startswith("volume"):
        return "write volume as a whole number of shares, 0 or more, e.g. 1234567"
    if " is below " in reason or " is above " in reason:
        return (
            "check that each column holds what its name says (high is the highest of open, "
            "high, low and close, low the lowest)"
        )
    return "write the prices as numbers above 0, e.g. 123.45"


def _none_usable(file_name: str, rejected: pd.DataFrame) -> MarketlakeError:
    """The refusal of a file none of whose bars can land: about the file (its first bar,
    what is wrong with it and what the column should hold), not the bad-batch gate."""
    first = rejected.iloc[0]
    reason = str(first["reason"])
    values = ", ".join(f"{c} {first[c]!r}" for c in ("open", "high", "low", "close", "volume"))
    advice = _advice(reason)
    return MarketlakeError(
        f"{file_name}: none of its {len(rejected)} bars can land; the first, "
        f"{first['trade_date']} ({values}): {reason}. Nothing was imported: {advice}"
    )


def _before_calendar(bars: pd.DataFrame) -> pd.Series:
    """Bars dated before the lake's NYSE calendar starts: no session can be told there."""
    days = bars["trade_date"].map(fields.date_or_none)
    return days.map(lambda d: d is not None and d.isoformat() < CALENDAR_START).astype(bool)


def _read_bars(
    paths: Sequence[Path], symbol: str | None
) -> list[tuple[Path, str, bytes, pd.DataFrame, int]]:
    """(path, symbol, bytes, bars, bars left out as before the calendar) of each file, every
    file read and checked."""
    loaded = []
    for path, name, data in _read_files(paths, symbol):
        bars = read_bars_csv(data, path.name, name, _named_by(symbol))
        early = _before_calendar(bars)
        if early.all():
            raise MarketlakeError(
                f"{path.name}: every bar is dated before {CALENDAR_START}, where the lake's "
                "NYSE calendar starts; nothing was imported"
            )
        loaded.append((path, name, data, bars[~early].reset_index(drop=True), int(early.sum())))
    seen: dict[str, Path] = {}
    for path, name, *_ in loaded:
        if name in seen:
            raise MarketlakeError(
                f"{seen[name].name} and {path.name} both hold {name}; nothing was imported. "
                "Import one of them (which copy of a day's bar should win is not ours to guess)"
            )
        seen[name] = path
    return loaded


def _recorded_splits(store: ObjectStore, symbol: str) -> list[adjusted.Split]:
    known = actions.current(store, actions.SPLITS, symbol)
    return [adjusted.Split(d, v) for d, v in zip(known["date"], known["value"])]


def _as_traded(
    store: ObjectStore, loaded: list[tuple[Path, str, bytes, pd.DataFrame, int]]
) -> tuple[list[tuple[Path, str, bytes, pd.DataFrame, int]], dict[str, str]]:
    """Each file's bars as traded (ingest.adjusted: a split adjustment its own Stock Splits
    column explains is undone), or the refusal of a file whose prices are adjusted; the note
    of what was undone, per symbol."""
    out, notes = [], {}
    for path, name, data, bars, early in loaded:
        traded, note = adjusted.as_traded(data, path.name, bars, _recorded_splits(store, name))
        out.append((path, name, data, traded, early))
        if note:
            notes[name] = note
    return out, notes


def run_import(
    settings: Settings,
    store: ObjectStore,
    files: Sequence[Path],
    symbol: str | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> IngestReport:
    """Land the daily bars of CSV files (or folders of them): the symbol from `symbol`, else
    each file's name (symbol_from_name); the formats csv_formats reads. Bars dated before the
    NYSE calendar starts are left out (and counted in the file's line); impossible bars and
    bars of days that are not NYSE sessions go to quarantine with their reason. Adjusted
    prices never land as traded (ingest.adjusted)."""
    # Read and check every file before anything lands, so a bad file leaves nothing behind.
    loaded, notes = _as_traded(store, _read_bars(files, symbol))
    moment = now()
    report = IngestReport(SOURCE, moment, last_closed_session(moment), eastern_date(moment))
    state = load_state(store)
    _claim_lake(state, SOURCE, settings)
    judged = [judge_bars(bars, report, strict=True) for _, _, _, bars, _ in loaded]
    for (path, *_), (valid, rejected) in zip(loaded, judged):
        if not len(valid):
            raise _none_usable(path.name, rejected)
    # The bad-batch gate, for every file before any lands: a file with too many impossible
    # bars would publish a history full of holes. It goes whole to quarantine instead.
    refused = []
    for (path, name, data, _, _), (valid, rejected) in zip(loaded, judged):
        if bad_share(valid, rejected) > settings.max_bad_row_pct:
            refused.append(
                refuse_batch(
                    store,
                    report,
                    name,
                    valid,
                    rejected,
                    SOURCE,
                    moment,
                    data,
                    path.name,
                    settings.max_bad_row_pct,
                )
            )
    if refused:
        others = " Nothing of the other file(s) was imported either." if len(loaded) > 1 else ""
        raise MarketlakeError(" ".join(str(e) for e in refused) + others)
    for _, name, _, bars, early in loaded:
        # A re-import is a remedy for a damaged raw object of the symbol: its bars land again
        # even where they are on record as landed (that copy is what was damaged).
        damaged = has_damaged_objects(store, name)
        result = land_bars(
            store,
            state,
            name,
            bars,
            SOURCE,
            report,
            now(),
            land_unknown=True,
            strict=True,
            force=damaged,
        )
        left_out = (
            f"{early} bar(s) before {CALENDAR_START} left out (the NYSE calendar starts there)"
            if early
            else ""
        )
        result.message = "; ".join(filter(None, [result.message, notes.get(name), left_out]))
        report.results.append(result)
        settle_shortfalls(store, name, result)
        save_state(store, state)
    return report


def _judge_action_file(
    settings: Settings,
    action: actions.ActionKind,
    rows: pd.DataFrame,
    name: str,
    session: dt.date,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid, rejected) rows of one file, or the one-line refusal of the whole file."""
    what = "split" if action is actions.SPLITS else "dividend"
    repeated = actions.repeated_date(rows)
    if repeated is not None:
        # Two factors (or amounts) for one date: either one landing alone would be a guess.
        raise MarketlakeError(
            f"{name}: {repeated} is given more than once; nothing was imported. Keep one "
            f"row per date (two {what}s on one date: write their combined {action.value_column})"
        )
    valid, rejected = actions.judge_actions(action, rows)
    total = len(valid) + len(rejected)
    if total and not len(valid):
        expected = (
            "a split_factor as new shares per old share (10, or 10:1, for a 10-for-1 split)"
            if action is actions.SPLITS
            else "an amount in dollars per share (0.24)"
        )
        raise MarketlakeError(
            f"{name}: none of its {total} rows is usable (the first: "
            f"{rejected['reason'].iloc[0]}); nothing was imported. Each row needs a date "
            f"(YYYY-MM-DD) and {expected}"
        )
    if total and 100.0 * len(rejected) / total > settings.max_bad_row_pct:
        raise MarketlakeError(
            f"{name}: {len(rejected)} of {total} rows are unusable (first: "
            f"{rejected['reason'].iloc[0]}), more than MARKETLAKE_MAX_BAD_ROW_PCT="
            f"{settings.max_bad_row_pct:g}%; nothing was imported. Fix the file"
        )
    ahead = [d for d in valid["date"] if d > session]
    if ahead:
        # An action counts from its date on, as a bar does: a future split landed now would
        # rescale every published price before it has happened.
        raise MarketlakeError(
            f"{name}: the {what} dated {ahead[0]} is after the last closed NYSE session "
            f"({session}); nothing was imported. Remove the row, and import it after the "
            f"close of {ahead[0]}"
        )
    return valid, rejected


def _check_changes(
    store: ObjectStore,
    action: actions.ActionKind,
    loaded: list[tuple[str, str, pd.DataFrame, pd.DataFrame]],
) -> None:
    """A value that differs from the one on record for its (symbol, date), or from another
    file of this import, is refused: a mistyped factor would otherwise silently rewrite a
    symbol's whole history (the latest copy wins in the build)."""
    known = actions.current(store, action)
    on_record = {(s, d): v for s, d, v in zip(known["symbol"], known["date"], known["value"])}
    what = "split_factor" if action is actions.SPLITS else "amount"
    for file_name, symbol, valid, _ in loaded:
        for day, value in zip(valid["date"], valid["value"]):
            old = on_record.get((symbol, day))
            if old is not None and old != float(value):
                before, after = actions.number_text(old), actions.number_text(value)
                raise MarketlakeError(
                    f"{file_name}: {symbol} {day} has {what} {before} on record, this file "
                    f"says {after}; nothing was imported. Pass --replace if the new one is right"
                )
            on_record[(symbol, day)] = float(value)


def run_import_actions(
    settings: Settings,
    store: ObjectStore,
    files: Sequence[Path],
    kind: actions.ActionName,
    symbol: str | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    replace: bool = False,
) -> list[tuple[str, int, int]]:
    """Land splits or dividends from CSV files; (symbol, rows landed, rows quarantined) per
    file. Every file is read and checked before anything lands: no repeated date, nothing
    dated after the last closed session, no symbol column that contradicts the symbol, and
    (unless `replace`) no value that differs from the one on record for its date."""
    action = actions.SPLITS if kind == "splits" else actions.DIVIDENDS
    moment = now()
    session = last_closed_session(moment)
    loaded = []
    for path, name, data in _read_files(files, symbol):
        file_name = Path(path).name
        rows = read_actions_csv(data, file_name, kind, name, _named_by(symbol))
        if action is actions.DIVIDENDS:
            # Yahoo's amounts are split-adjusted: as paid, or refused (ingest.adjusted).
            rows = adjusted.dividends_as_paid(data, file_name, rows, _recorded_splits(store, name))
        valid, rejected = _judge_action_file(settings, action, rows, file_name, session)
        loaded.append((file_name, name, valid, rejected))
    if not replace:
        _check_changes(store, action, loaded)
    ingest_date = eastern_date(moment)
    state = load_state(store)
    _claim_lake(state, SOURCE, settings)
    save_state(store, state)
    out = []
    for _, name, valid, rejected in loaded:
        if len(rejected):
            actions.quarantine_actions(
                store, action, name, rejected, SOURCE, ingest_date, quarantine_stamp(moment)
            )
        landed = actions.land_actions(
            store, action, name, valid, SOURCE, ingest_date, format_timestamp(moment)
        )
        out.append((name, landed, len(rejected)))
    return out
