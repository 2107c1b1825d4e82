"""`marketlake import`: bring your own history from CSV files (e.g. older than the API's
100 compact sessions). The bars take the same validation and quarantine as any provider's."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import pandas as pd

from marketlake import fields
from marketlake.config import Settings, parse_tickers
from marketlake.errors import MarketlakeError
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
from marketlake.providers.base import BAR_COLUMNS
from marketlake.sessions import eastern_date, last_closed_session
from marketlake.storage import ObjectStore

SOURCE = "import"
DATE_COLUMNS = ("date", "timestamp")


def _read_text_csv(data: bytes, name: str) -> tuple[pd.DataFrame, dict]:
    """Every value as text, and the columns by their lower-cased, stripped names."""
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise MarketlakeError(f"{name}: not a readable CSV file ({first})") from None
    return frame, {c.strip().lower(): c for c in frame.columns}


def read_bars_csv(data: bytes, name: str) -> pd.DataFrame:
    """Daily bars from CSV text: a date column named date or timestamp (any case), open,
    high, low, close, volume; other columns ignored; rows in any order. Values stay text."""
    frame, columns = _read_text_csv(data, name)
    date_column = next((columns[c] for c in DATE_COLUMNS if c in columns), None)
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in columns]
    if date_column is None or missing:
        wanted = (["date or timestamp"] if date_column is None else []) + missing
        raise MarketlakeError(
            f"{name}: missing column(s) {', '.join(wanted)}; the header needs "
            "date (or timestamp), open, high, low, close, volume"
        )
    bars = pd.DataFrame(
        {
            "trade_date": frame[date_column].str.strip(),
            **{
                c: frame[columns[c]].str.strip() for c in ("open", "high", "low", "close", "volume")
            },
        },
        columns=BAR_COLUMNS,
    )
    dates = bars["trade_date"]
    if len(dates) and dates.map(fields.date_or_none).isna().all():
        raise MarketlakeError(
            f"{name}: no date in column {date_column!r} reads as YYYY-MM-DD (the first is "
            f"{dates.iloc[0]!r}); write the dates as YYYY-MM-DD, e.g. 2024-03-15"
        )
    return bars.sort_values("trade_date", kind="stable").reset_index(drop=True)


def symbol_from_name(path: Path) -> str:
    # "nvda.csv", "NVDA_daily.csv", "nvda-history.csv" -> NVDA
    stem = re.split(r"[_\s]|-(?=[a-z]{3,})", path.stem, maxsplit=1)[0]
    try:
        return parse_tickers(stem)[0]
    except MarketlakeError:
        raise MarketlakeError(
            f"{path.name}: cannot tell the symbol from the file name; pass --symbol"
        ) from None


def _read_files(files: Sequence[Path], symbol: str | None) -> list[tuple[Path, str, bytes]]:
    """(path, symbol, bytes) of each file: the symbol from --symbol, else the file name."""
    if symbol is not None and len(files) > 1:
        raise MarketlakeError("--symbol names one symbol; import one file at a time with it")
    read = []
    for path in files:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise MarketlakeError(f"{path}: cannot read ({exc.strerror})") from None
        name = parse_tickers(symbol)[0] if symbol else symbol_from_name(Path(path))
        read.append((path, name, data))
    return read


def run_import(
    settings: Settings,
    store: ObjectStore,
    files: Sequence[Path],
    symbol: str | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> IngestReport:
    # Read and check every file before anything lands, so a bad file leaves nothing behind.
    loaded, sources = [], []
    for path, name, data in _read_files(files, symbol):
        loaded.append((name, read_bars_csv(data, Path(path).name)))
        sources.append((path, data))

    moment = now()
    report = IngestReport(SOURCE, moment, last_closed_session(moment), eastern_date(moment))
    state = load_state(store)
    _claim_lake(state, SOURCE, settings)
    # The bad-batch gate, for every file before any lands: a file with too many impossible
    # bars would publish a history full of holes. It goes whole to quarantine instead.
    refused = []
    for (name, bars), (path, data) in zip(loaded, sources):
        valid, rejected = judge_bars(bars, report, strict=True)
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
                    Path(path).name,
                    settings.max_bad_row_pct,
                )
            )
    if refused:
        others = " Nothing of the other file(s) was imported either." if len(loaded) > 1 else ""
        raise MarketlakeError(" ".join(str(e) for e in refused) + others)
    for name, bars in loaded:
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
        report.results.append(result)
        settle_shortfalls(store, name, result)
        save_state(store, state)
    return report


ACTION_VALUE_COLUMNS: dict[actions.ActionName, str] = {
    "splits": "split_factor",
    "dividends": "amount",
}


def read_actions_csv(data: bytes, name: str, kind: actions.ActionName) -> pd.DataFrame:
    """Splits (date,split_factor) or dividends (date,amount) from CSV text: any case, other
    columns ignored. Values stay text: judge_actions decides."""
    value = ACTION_VALUE_COLUMNS[kind]
    frame, columns = _read_text_csv(data, name)
    missing = [c for c in ("date", value) if c not in columns]
    if missing:
        raise MarketlakeError(
            f"{name}: missing column(s) {', '.join(missing)}; --{kind} files need the header "
            f"date,{value}"
        )
    return pd.DataFrame(
        {"date": frame[columns["date"]].str.strip(), "value": frame[columns[value]].str.strip()}
    )


def run_import_actions(
    settings: Settings,
    store: ObjectStore,
    files: Sequence[Path],
    kind: actions.ActionName,
    symbol: str | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> list[tuple[str, int, int]]:
    """Land splits or dividends from CSV files; (symbol, rows landed, rows quarantined) per
    file. Every file is read and checked before anything lands."""
    action = actions.SPLITS if kind == "splits" else actions.DIVIDENDS
    loaded = []
    for path, name, data in _read_files(files, symbol):
        valid, rejected = actions.judge_actions(
            action, read_actions_csv(data, Path(path).name, kind)
        )
        total = len(valid) + len(rejected)
        if total and 100.0 * len(rejected) / total > settings.max_bad_row_pct:
            raise MarketlakeError(
                f"{Path(path).name}: {len(rejected)} of {total} rows are unusable (first: "
                f"{rejected['reason'].iloc[0]}), more than MARKETLAKE_MAX_BAD_ROW_PCT="
                f"{settings.max_bad_row_pct:g}%; nothing was imported. Fix the file"
            )
        loaded.append((name, valid, rejected))
    moment = now()
    ingest_date = eastern_date(moment)
    state = load_state(store)
    _claim_lake(state, SOURCE, settings)
    save_state(store, state)
    out = []
    for name, valid, rejected in loaded:
        if len(rejected):
            actions.quarantine_actions(
                store, action, name, rejected, SOURCE, ingest_date, quarantine_stamp(moment)
            )
        landed = actions.land_actions(
            store, action, name, valid, SOURCE, ingest_date, format_timestamp(moment)
        )
        out.append((name, landed, len(rejected)))
    return out
