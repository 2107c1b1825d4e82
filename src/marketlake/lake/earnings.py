"""Quarterly earnings in the raw zone: one CSV object per (ingest day, symbol) under
raw/earnings/, laid out, recorded and merged like splits and dividends (lake/actions.py).

A row is one fiscal quarter of one symbol: fiscal_date_ending (the quarter's last day),
reported_date (the day the report was published: a report counts from the first session
after it, so a backtest never sees it before the market did), reported_eps (earnings per
share, a loss negative) and eps_basis_date: the day whose share basis reported_eps is on.
An EPS as the company reported it is on the basis of its reported_date; Alpha Vantage
restates every past quarter for later splits, so its values are on the basis of the day they
were fetched. The build puts each on the basis of the session it serves (the adj_factor
ratio, sql/staging/daily_prices.sql), so a split the lake learns later fixes every number.

The latest `ingested_at` copy of a (symbol, fiscal_date_ending) wins (current). A row lands
only when it says something new (same_report): a refetch whose EPS is the one on record, on
the record's basis or restated for the splits between, keeps the copy on record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd
import pyarrow as pa

from marketlake import fields
from marketlake.lake import actions, integrity
from marketlake.lake.state import record_landed
from marketlake.storage import ObjectStore


@dataclasses.dataclass(frozen=True)
class EarningsKind:
    """The raw layout of earnings, in the shape lake/actions.py reads (`stored`)."""

    name: str = "earnings"
    function: str = "EARNINGS"  # the Alpha Vantage function

    @property
    def prefix(self) -> str:
        return f"raw/{self.name}/"

    @property
    def columns(self) -> list[str]:
        return list(COLUMNS)

    def key(self, ingest_date: dt.date, symbol: str) -> str:
        return f"{self.prefix}ingest_date={ingest_date.isoformat()}/{symbol}.csv"

    def quarantine_key(self, ingest_date: dt.date, symbol: str, stamp: str) -> str:
        return f"quarantine/{self.name}/ingest_date={ingest_date.isoformat()}/{symbol}.{stamp}.csv"


COLUMNS = (
    "symbol",
    "fiscal_date_ending",
    "reported_date",
    "reported_eps",
    "eps_basis_date",
    "source",
    "ingested_at",
)
EARNINGS = EarningsKind()
# The raw zone's word, as integrity.RAW_ZONES and the remedies spell it.
ZONE = "earnings"
# The source an import lands with (ingest.importer.SOURCE); every other source is a vendor.
IMPORTED = "import"
# What a vendor says for a quarter without a number (Alpha Vantage: "None"): not reported.
UNREPORTED = {"", "none", "null", "nan", "-", "n/a"}


def empty_earnings() -> pd.DataFrame:
    """What a provider returns for one symbol: text `fiscal_date_ending`, `reported_date`,
    `reported_eps` as the vendor gave them, judged by `judge`."""
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in _VENDOR_COLUMNS})


_VENDOR_COLUMNS = ("fiscal_date_ending", "reported_date", "reported_eps")


def parse_eps(value: Any) -> float:
    """Earnings per share: any finite number (a loss is negative)."""
    return fields._finite("reported_eps", value)


@dataclasses.dataclass
class Judged:
    valid: pd.DataFrame  # fiscal (date), reported (date), eps (float), by fiscal
    rejected: pd.DataFrame  # the three vendor columns as text, and a reason
    unreported: int  # quarters the vendor lists without an EPS ("None"): not a number yet


def judge(rows: pd.DataFrame) -> Judged:
    """Check the vendor's rows (text `fiscal_date_ending`, `reported_date`, `reported_eps`).
    Both dates must be YYYY-MM-DD, the report on or after its quarter's end, the EPS a finite
    number. A quarter given twice with one value keeps one row; with different ones none is
    valid: which one the source meant is not ours to guess (an import refuses any repeated
    quarter first, see repeated_quarter). A quarter without an EPS ("None") is counted, not
    rejected: the vendor lists it before the number is known."""
    good: list[tuple[dt.date, dt.date, float, tuple[str, str, str]]] = []
    bad: list[tuple[str, str, str, str]] = []
    unreported = 0
    for fiscal_text, reported_text, eps_text in zip(*(rows[c] for c in _VENDOR_COLUMNS)):
        texts = (
            fields.as_text(fiscal_text),
            fields.as_text(reported_text),
            fields.as_text(eps_text),
        )
        reason = ""
        fiscal = fields.date_or_none(fiscal_text)
        reported = fields.date_or_none(reported_text)
        eps = math.nan
        if texts[2].strip().lower() in UNREPORTED:
            unreported += 1
            continue
        if fiscal is None:
            reason = f"fiscal_date_ending {texts[0][:40]!r} is not a date like 2024-06-30"
        elif reported is None:
            reason = f"reported_date {texts[1][:40]!r} is not a date like 2024-07-24"
        elif reported < fiscal:
            reason = f"reported_date {reported} is before its quarter's end {fiscal}"
        else:
            try:
                eps = parse_eps(eps_text)
            except fields.FieldError as exc:
                reason = str(exc)
        if reason or fiscal is None or reported is None:
            bad.append((*texts, reason))
        else:
            good.append((fiscal, reported, eps, texts))
    values: dict[dt.date, set[tuple[dt.date, float]]] = {}
    for fiscal, reported, eps, _ in good:
        values.setdefault(fiscal, set()).add((reported, eps))
    kept = []
    for fiscal, reported, eps, texts in good:
        if len(values[fiscal]) == 1:
            kept.append((fiscal, reported, eps))
            continue
        listed = "; ".join(f"{r} {actions.number_text(e)}" for r, e in sorted(values[fiscal]))
        bad.append((*texts, f"quarter {fiscal} is given with different reports ({listed})"))
    valid = pd.DataFrame(kept, columns=["fiscal", "reported", "eps"])
    if not kept:
        valid = _empty_valid()
    valid = valid.drop_duplicates(subset=["fiscal"], keep="last")
    valid = valid.sort_values("fiscal", kind="stable").reset_index(drop=True)
    rejected = pd.DataFrame(bad, columns=[*_VENDOR_COLUMNS, "reason"])
    return Judged(valid, rejected, unreported)


def _empty_valid() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "fiscal": pd.Series([], dtype=object),
            "reported": pd.Series([], dtype=object),
            "eps": pd.Series([], dtype=float),
        }
    )


def repeated_quarter(rows: pd.DataFrame) -> dt.date | None:
    """The first fiscal_date_ending that `rows` (vendor text columns) give twice, else None."""
    return actions.repeated_date(rows, "fiscal_date_ending")


# Two quarter ends closer than this are one quarter under two dates (a 52/53-week fiscal
# year's 2024-06-29 and a vendor's month-end 2024-06-30), not two quarters (~91 days apart).
NEAR_DAYS = 45


def near_quarters(valid: pd.DataFrame, known: Iterable[dt.date]) -> pd.DataFrame:
    """judge's rejected shape for the rows of `valid` whose quarter end lies within NEAR_DAYS
    of another quarter end, on record (`known`) or in `valid`: counted twice, one quarter
    would be half of a trailing year. Both are left out: which date is right is not ours to
    guess."""
    ends = sorted(set(known) | set(valid["fiscal"]))
    bad = []
    for fiscal, reported, eps in zip(valid["fiscal"], valid["reported"], valid["eps"]):
        other = next((e for e in ends if e != fiscal and abs((e - fiscal).days) < NEAR_DAYS), None)
        if other is not None:
            reason = (
                f"quarter {fiscal} is {abs((other - fiscal).days)} day(s) from quarter {other} "
                "(one quarter under two dates)"
            )
            bad.append((fiscal.isoformat(), reported.isoformat(), actions.number_text(eps), reason))
    return pd.DataFrame(bad, columns=[*_VENDOR_COLUMNS, "reason"])


def split_ratio(splits: pd.DataFrame, start: dt.date, end: dt.date) -> float:
    """Shares at `end` per share at `start`: the product of the split factors (`splits` as
    actions.current gives them) dated in (start, end], or its inverse when `end` is earlier."""
    low, high = sorted((start, end))
    ratio = math.prod(float(v) for d, v in zip(splits["date"], splits["value"]) if low < d <= high)
    return ratio if end >= start else 1.0 / ratio


def same_report(
    old: tuple[dt.date, float, dt.date], new: tuple[dt.date, float, dt.date], splits: pd.DataFrame
) -> bool:
    """Whether (reported_date, eps, basis) `new` says what `old` says. With no split between
    the two bases the EPS must be equal; across a split, `new` may be the vendor's rounded
    restatement of `old` (NVDA's 2006 EPS is 0.0038): equal to the number's last written
    decimal, at least to the cent. The same report keeps the copy on record, which is no
    less exact; one with another number lands, a basis that changes the number too."""
    (old_day, old_eps, old_basis), (day, eps, basis) = old, new
    if old_day != day:
        return False
    ratio = split_ratio(splits, old_basis, basis)
    if ratio == 1:
        return float(eps) == float(old_eps)
    decimals = max(_decimals(float(eps)), 2)
    return abs(float(eps) - old_eps / ratio) <= 0.5 * 10**-decimals + 1e-12


def _decimals(value: float) -> int:
    text = actions.number_text(value)
    return 12 if "e" in text.lower() else len(text.partition(".")[2])


def current(store: ObjectStore, symbol: str | None = None, strict: bool = False) -> pd.DataFrame:
    """The latest copy of each (symbol, fiscal_date_ending), of the symbol's vendor
    (`one_vendor`) and its imports: symbol, fiscal, reported and basis (datetime.date), eps
    (float), source. A row that does not parse (a hand-edited object) is left out; an object
    that cannot be read is skipped, or with `strict` (the build) stops the read
    (actions.stored)."""
    frame = actions.stored(store, EARNINGS, symbol, strict)
    frame = frame.sort_values(["ingested_at", "ingest_date"], kind="stable")
    frame = one_vendor(frame)
    frame = frame.drop_duplicates(subset=["symbol", "fiscal_date_ending"], keep="last")
    out = pd.DataFrame(
        {
            "symbol": frame["symbol"].astype(str).str.strip(),
            "fiscal": [fields.date_or_none(d) for d in frame["fiscal_date_ending"]],
            "reported": [fields.date_or_none(d) for d in frame["reported_date"]],
            "eps": [_eps_or_none(v) for v in frame["reported_eps"]],
            "basis": [fields.date_or_none(d) for d in frame["eps_basis_date"]],
            "source": frame["source"].astype(str).str.strip(),
        }
    )
    out = out.dropna()
    ordered = [r >= f for f, r in zip(out["fiscal"], out["reported"])]
    out = out.loc[pd.Series(ordered, index=out.index, dtype=bool)]
    return out.sort_values(["symbol", "fiscal"], kind="stable").reset_index(drop=True)


def one_vendor(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows (raw, oldest landing first) of each symbol's vendor, the one whose quarters
    landed last for it, and its imports. Vendors date one quarter differently (a 52/53-week
    year's 2024-06-29 is another's 2024-06-30) and give different EPS (Alpha Vantage the
    figure announced, Polygon the diluted figure filed), so a trailing year summed across two
    would be neither's: a lake that switches provider takes each symbol's earnings from the
    new one once it answers for that symbol."""
    source = frame["source"].astype(str).str.strip()
    symbol = frame["symbol"].astype(str).str.strip()
    vendors = source != IMPORTED
    if not vendors.any():
        return frame
    newest = source[vendors].groupby(symbol[vendors]).last()
    keep = ~vendors | (source == symbol.map(newest))
    return frame.loc[keep.to_numpy()]


def of_source(known: pd.DataFrame, source: str) -> pd.DataFrame:
    """The rows of `current` a landing from `source` is judged against: a vendor's own and
    the imports (not another vendor's, which its landing supersedes); an import, all."""
    if source == IMPORTED:
        return known
    return known.loc[known["source"].isin([source, IMPORTED]).to_numpy()]


def _eps_or_none(value: Any) -> float | None:
    try:
        return parse_eps(value)
    except fields.FieldError:
        return None


def land(
    store: ObjectStore,
    symbol: str,
    valid: pd.DataFrame,
    source: str,
    ingest_date: dt.date,
    ingested_at: str,
    basis: dt.date | None = None,
) -> int:
    """Land the quarters of `valid` (judge's) whose report is new or changed for `symbol`;
    returns how many. `basis`: the day the EPS are on the share basis of (the fetch day, for
    a vendor that restates for splits); None when they are as reported."""
    # A damaged object of the symbol would block every build: its rows land again below.
    integrity.set_aside_damaged(store, EARNINGS.prefix, symbol)
    known = of_source(current(store, symbol), source)
    on_record = {
        f: (r, e, b)
        for f, r, e, b in zip(known["fiscal"], known["reported"], known["eps"], known["basis"])
    }
    splits = actions.current(store, actions.SPLITS, symbol)
    fresh = [
        f not in on_record or not same_report(on_record[f], (r, float(e), basis or r), splits)
        for f, r, e in zip(valid["fiscal"], valid["reported"], valid["eps"])
    ]
    rows = valid[fresh]
    if not len(rows):
        return 0
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "fiscal_date_ending": [d.isoformat() for d in rows["fiscal"]],
            "reported_date": [d.isoformat() for d in rows["reported"]],
            "reported_eps": [actions.number_text(v) for v in rows["eps"]],
            "eps_basis_date": [(basis or reported).isoformat() for reported in rows["reported"]],
            "source": source,
            "ingested_at": ingested_at,
        },
        columns=list(COLUMNS),
    )
    key = EARNINGS.key(ingest_date, symbol)
    try:
        existing = actions._read(store.get_bytes(key), EARNINGS)
    except KeyError:
        existing = None
    if existing is not None:
        # A second landing that day merges into the day's object: the newer copy wins.
        frame = pd.concat([existing, frame], ignore_index=True)
        frame = frame.drop_duplicates(subset=["symbol", "fiscal_date_ending"], keep="last")
        frame = frame.sort_values("fiscal_date_ending", kind="stable")
    data = actions._to_csv(frame, EARNINGS)
    digest = store.put_bytes(key, data)
    # Recorded like the bars' objects: a build checks the object against it before reading.
    record_landed(store, key, data, frame["fiscal_date_ending"], digest)
    return len(rows)


def quarantine(
    store: ObjectStore,
    symbol: str,
    rejected: pd.DataFrame,
    source: str,
    ingest_date: dt.date,
    stamp: str,
) -> str:
    return actions.quarantine_actions(store, EARNINGS, symbol, rejected, source, ingest_date, stamp)


TABLE = "corporate_earnings"


def build_frame(store: ObjectStore, through: dt.date) -> pd.DataFrame:
    """What the build registers as corporate_earnings: one row per (symbol,
    fiscal_date_ending), the latest copy, of the reports published on or before `through`
    (the last closed session as of the build). A later one waits in raw, like a dividend
    declared ahead (actions.build_frames). Typed even when empty."""
    rows = current(store, strict=True)
    rows = rows.loc[pd.Series([day <= through for day in rows["reported"]], dtype=bool).values]

    def dates(column: str) -> pd.Series:
        return pd.Series(pd.to_datetime(list(rows[column])), dtype="datetime64[ns]")

    return pd.DataFrame(
        {
            "symbol": pd.Series(list(rows["symbol"]), dtype=pd.ArrowDtype(pa.string())),
            "fiscal_date_ending": dates("fiscal"),
            "reported_date": dates("reported"),
            "reported_eps": pd.Series(list(rows["eps"]), dtype="float64"),
            "eps_basis_date": dates("basis"),
        }
    )


def fingerprints(frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """symbol -> {year of reported_date: digest of that year's reports}, from build_frame's
    frame: what a version records of the earnings it applied (wap/restate.py compares them
    year by year, so a late or corrected report restates its symbol from that year on)."""
    by_year: dict[str, dict[str, list[str]]] = {}
    for symbol, fiscal, reported, eps, basis in zip(
        frame["symbol"],
        frame["fiscal_date_ending"],
        frame["reported_date"],
        frame["reported_eps"],
        frame["eps_basis_date"],
    ):
        day = pd.Timestamp(reported).date()
        line = f"{pd.Timestamp(fiscal).date()} {day} {float(eps)!r} {pd.Timestamp(basis).date()}"
        by_year.setdefault(str(symbol), {}).setdefault(str(day.year), []).append(line)
    return {
        symbol: {
            year: hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:16]
            for year, lines in sorted(years.items())
        }
        for symbol, years in by_year.items()
    }
