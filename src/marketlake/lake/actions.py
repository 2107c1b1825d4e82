"""Corporate actions in the raw zone: splits and dividends, one CSV object per (ingest day,
symbol) under raw/splits/ and raw/dividends/, laid out and merged like the bars.

A split is (effective_date, split_factor): new shares per old share, 10 for a 10:1 split,
0.25 for a 1:4 reverse split. A dividend is (ex_dividend_date, amount): cash per share as
declared. A row lands only when it is new or its value changed; the latest `ingested_at` copy
of a (symbol, date) wins when the build reads them (current).

An action counts from its date on, like a bar: the build applies only those dated on or
before the last closed session as of the build (build_frames), so a declared future dividend
or split changes no published number before it is effective.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from typing import Any, Callable, Literal, Protocol

import pandas as pd
import pyarrow as pa

from marketlake import fields
from marketlake.errors import MarketlakeError
from marketlake.lake import integrity
from marketlake.lake.raw import MARKET_OBJECT, is_market_object
from marketlake.lake.state import record_landed
from marketlake.sessions import last_closed_session
from marketlake.storage import ObjectStore

# The raw prefix and the CLI's word of each kind of corporate action.
ActionName = Literal["splits", "dividends"]


@dataclasses.dataclass(frozen=True)
class ActionKind:
    name: ActionName
    function: str  # the Alpha Vantage function
    date_column: str
    value_column: str
    parse_value: Callable[[Any], float]  # raises fields.FieldError, naming the value

    @property
    def prefix(self) -> str:
        return f"raw/{self.name}/"

    @property
    def columns(self) -> list[str]:
        return ["symbol", self.date_column, self.value_column, "source", "ingested_at"]

    def key(self, ingest_date: dt.date, symbol: str) -> str:
        return f"{self.prefix}ingest_date={ingest_date.isoformat()}/{symbol}.csv"

    def market_key(self, ingest_date: dt.date) -> str:
        """The day's object of market-wide actions (Polygon asks them by date, not symbol)."""
        day = ingest_date.isoformat()
        return f"{self.prefix}ingest_date={day}/{MARKET_OBJECT}{day}.csv"

    def quarantine_key(self, ingest_date: dt.date, symbol: str, stamp: str) -> str:
        return f"quarantine/{self.name}/ingest_date={ingest_date.isoformat()}/{symbol}.{stamp}.csv"


class RawKind(Protocol):
    """What reading, writing and quarantining a raw zone's objects needs of its kind: an
    ActionKind, or lake/earnings.py's EarningsKind."""

    @property
    def name(self) -> str: ...

    @property
    def prefix(self) -> str: ...

    @property
    def columns(self) -> list[str]: ...

    def quarantine_key(self, ingest_date: dt.date, symbol: str, stamp: str) -> str: ...


SPLITS = ActionKind("splits", "SPLITS", "effective_date", "split_factor", fields.parse_split_factor)
DIVIDENDS = ActionKind("dividends", "DIVIDENDS", "ex_dividend_date", "amount", fields.parse_amount)
KINDS = (SPLITS, DIVIDENDS)


def empty_actions() -> pd.DataFrame:
    """What a provider returns for one kind: `date` (datetime.date), `value` (float)."""
    return pd.DataFrame({"date": pd.Series([], dtype=object), "value": pd.Series([], dtype=float)})


def judge_actions(kind: ActionKind, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid rows as `date`, `value`; rejected rows as text with a `reason`). A date must be
    YYYY-MM-DD; a split factor a finite number > 0; a dividend a finite number >= 0. A date
    given twice with one value keeps one row; with different values none of its rows is
    valid: which one the source meant is not ours to guess (an import refuses any repeated
    date before this, see repeated_date)."""
    good: list[tuple[dt.date, float, str, str]] = []
    bad = []
    for date_value, value in zip(rows["date"], rows["value"]):
        reason = ""
        day = fields.date_or_none(date_value)
        if day is None:
            reason = f"{kind.date_column} {str(date_value)[:40]!r} is not a date like 2024-06-10"
        else:
            try:
                number = kind.parse_value(value)
            except fields.FieldError as exc:
                reason = str(exc)
        if reason or day is None:
            bad.append((str(date_value), str(value), reason))
        else:
            good.append((day, number, str(date_value), str(value)))
    values: dict[dt.date, set[float]] = {}
    for day, number, _, _ in good:
        values.setdefault(day, set()).add(number)
    kept = []
    for day, number, date_text, value_text in good:
        if len(values[day]) == 1:
            kept.append((day, number))
            continue
        listed = ", ".join(number_text(v) for v in sorted(values[day]))
        reason = f"{kind.date_column} {day} is given with different {kind.value_column}s ({listed})"
        bad.append((date_text, value_text, reason))
    valid = pd.DataFrame(kept, columns=["date", "value"]) if kept else empty_actions()
    valid = valid.drop_duplicates(subset=["date"], keep="last")
    valid = valid.sort_values("date", kind="stable").reset_index(drop=True)
    rejected = pd.DataFrame(bad, columns=[kind.date_column, kind.value_column, "reason"])
    return valid, rejected


def repeated_date(rows: pd.DataFrame, column: str = "date") -> dt.date | None:
    """The first date that `rows` (text `date`, `value`) give more than once in `column`,
    else None."""
    seen: set[dt.date] = set()
    for date_value in rows[column]:
        day = fields.date_or_none(date_value)
        if day is None:
            continue
        if day in seen:
            return day
        seen.add(day)
    return None


def _stored_value(kind: ActionKind, value) -> float | None:
    try:
        return kind.parse_value(value)
    except fields.FieldError:
        return None  # a hand-edited raw object: that row is not read


def number_text(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _read(data: bytes, kind: RawKind) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    return frame[kind.columns]


def _to_csv(frame: pd.DataFrame, kind: RawKind) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(kind.columns)
    writer.writerows(frame[kind.columns].itertuples(index=False, name=None))
    return out.getvalue().encode("utf-8")


def stored(
    store: ObjectStore, kind: RawKind, symbol: str | None = None, strict: bool = False
) -> pd.DataFrame:
    """Every raw row of `kind` (of `symbol`), text columns plus ingest_date. An object that
    cannot be read is skipped, or with `strict` (the build) stops the read: a split the build
    cannot see would restate a symbol's whole history without it."""
    frames = []
    for info in store.list_objects(kind.prefix):
        market = is_market_object(info.key)
        if symbol is not None and not (market or info.key.endswith(f"/{symbol}.csv")):
            continue
        day = info.key[len(kind.prefix) :].split("/", 1)[0].split("=", 1)[-1]
        try:
            frame = _read(store.get_bytes(info.key), kind)
        except KeyError:
            continue  # deleted since the listing
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            if strict:
                reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
                raise MarketlakeError(
                    f"{info.key} cannot be read ({reason}); nothing was built. Delete it "
                    f"and land its {kind.name} again (`marketlake import --{kind.name} FILE`, "
                    "or the next ingest fetches them)"
                ) from None
            continue  # the ingest compares with what it can read, and lands the rest again
        if market and symbol is not None:
            frame = frame[frame["symbol"] == symbol]
        frames.append(frame.assign(ingest_date=day))
    if not frames:
        return pd.DataFrame(columns=[*kind.columns, "ingest_date"], dtype=object)
    return pd.concat(frames, ignore_index=True)


def current(
    store: ObjectStore, kind: ActionKind, symbol: str | None = None, strict: bool = False
) -> pd.DataFrame:
    """The latest copy of each (symbol, date): symbol, date (datetime.date), value (float)."""
    frame = stored(store, kind, symbol, strict)
    frame = frame.sort_values(["ingested_at", "ingest_date"], kind="stable")
    frame = frame.drop_duplicates(subset=["symbol", kind.date_column], keep="last")
    out = pd.DataFrame(
        {
            # As landed: ingest and import spell symbols as the vendor does (Polygon has
            # lowercase letters in some, KIMpL), and the bars carry the same spelling.
            "symbol": frame["symbol"].astype(str).str.strip(),
            "date": [fields.date_or_none(d) for d in frame[kind.date_column]],
            "value": [_stored_value(kind, v) for v in frame[kind.value_column]],
        }
    )
    out = out.dropna()
    return out.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


def land_actions(
    store: ObjectStore,
    kind: ActionKind,
    symbol: str,
    valid: pd.DataFrame,
    source: str,
    ingest_date: dt.date,
    ingested_at: str,
) -> int:
    """Land the rows of `valid` that are new or changed for `symbol`; returns how many."""
    # A damaged object of the symbol would block every build: its rows land again below.
    integrity.set_aside_damaged(store, kind.prefix, symbol)
    known = current(store, kind, symbol)
    on_record = {d: v for d, v in zip(known["date"], known["value"])}
    fresh = [on_record.get(d) != float(v) for d, v in zip(valid["date"], valid["value"])]
    rows = valid[fresh]
    if not len(rows):
        return 0
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            kind.date_column: [d.isoformat() for d in rows["date"]],
            kind.value_column: [number_text(v) for v in rows["value"]],
            "source": source,
            "ingested_at": ingested_at,
        },
        columns=kind.columns,
    )
    key = kind.key(ingest_date, symbol)
    try:
        existing = _read(store.get_bytes(key), kind)
    except KeyError:
        existing = None
    if existing is not None:
        # A second landing that day merges into the day's object: the newer copy wins.
        frame = pd.concat([existing, frame], ignore_index=True)
        frame = frame.drop_duplicates(subset=["symbol", kind.date_column], keep="last")
        frame = frame.sort_values(kind.date_column, kind="stable")
    data = _to_csv(frame, kind)
    digest = store.put_bytes(key, data)
    # Recorded like the bars' objects: a build checks the object against it before reading.
    record_landed(store, key, data, frame[kind.date_column], digest)
    return len(rows)


def land_market_actions(
    store: ObjectStore,
    kind: ActionKind,
    rows: pd.DataFrame,
    source: str,
    ingest_date: dt.date,
    ingested_at: str,
) -> int:
    """Land the valid rows (`symbol`, `date`, `value`) of many symbols that are new or
    changed, as the day's one market-wide object of `kind`; returns how many."""
    known = current(store, kind)
    on_record = {(s, d): v for s, d, v in zip(known["symbol"], known["date"], known["value"])}
    fresh = [
        on_record.get((s, d)) != float(v)
        for s, d, v in zip(rows["symbol"], rows["date"], rows["value"])
    ]
    rows = rows[fresh]
    if not len(rows):
        return 0
    frame = pd.DataFrame(
        {
            "symbol": list(rows["symbol"]),
            kind.date_column: [d.isoformat() for d in rows["date"]],
            kind.value_column: [number_text(v) for v in rows["value"]],
            "source": source,
            "ingested_at": ingested_at,
        },
        columns=kind.columns,
    )
    key = kind.market_key(ingest_date)
    try:
        existing = _read(store.get_bytes(key), kind)
    except KeyError:
        existing = None
    if existing is not None:
        frame = pd.concat([existing, frame], ignore_index=True)
        frame = frame.drop_duplicates(subset=["symbol", kind.date_column], keep="last")
    frame = frame.sort_values(["symbol", kind.date_column], kind="stable")
    data = _to_csv(frame, kind)
    digest = store.put_bytes(key, data)
    record_landed(store, key, data, frame[kind.date_column], digest)
    return len(rows)


def quarantine_actions(
    store: ObjectStore,
    kind: RawKind,
    symbol: str,
    rejected: pd.DataFrame,
    source: str,
    ingest_date: dt.date,
    stamp: str,
) -> str:
    key = kind.quarantine_key(ingest_date, symbol, stamp)
    body = rejected.assign(source=source)
    body.insert(0, "symbol", symbol)
    store.put_bytes(key, body.to_csv(index=False).encode())
    return key


def _utcnow() -> dt.datetime:
    # build_frames' default clock, one place for tests to set while callers pass no time.
    return dt.datetime.now(dt.timezone.utc)


def build_frames(store: ObjectStore, as_of: dt.datetime | None = None) -> dict[str, pd.DataFrame]:
    """What the build registers as corporate_splits, corporate_dividends and
    corporate_earnings (lake/earnings.py's build_frame). Splits and dividends: one row per
    (symbol, ex_date), the latest copy, of the actions dated on or before the last closed
    session as of `as_of` (the build's start; default now). A later one (an announced
    dividend, or a row an older version landed) waits in raw: once its date has passed, the
    next build sees it as new and restates its symbol (wap/restate.py). Typed even when empty
    (Glue and DuckDB need a type)."""
    through = last_closed_session(as_of if as_of is not None else _utcnow())
    frames = {}
    for kind, table, column in (
        (SPLITS, "corporate_splits", "split_factor"),
        (DIVIDENDS, "corporate_dividends", "amount"),
    ):
        rows = current(store, kind, strict=True)
        rows = rows.loc[pd.Series([day <= through for day in rows["date"]], dtype=bool).values]
        frames[table] = pd.DataFrame(
            {
                # Arrow's string (not pandas' "string", which becomes large_string in
                # Parquet): Athena's table says string, and an empty column keeps its type.
                "symbol": pd.Series(list(rows["symbol"]), dtype=pd.ArrowDtype(pa.string())),
                "ex_date": pd.Series(pd.to_datetime(list(rows["date"])), dtype="datetime64[ns]"),
                column: pd.Series(list(rows["value"]), dtype="float64"),
            }
        )
    from marketlake.lake import earnings  # it reads its raw zone through this module

    frames[earnings.TABLE] = earnings.build_frame(store, through)
    return frames
