"""`marketlake import --earnings`: quarterly earnings from CSV files into raw/earnings/
(lake/earnings.py), read and checked like `import --splits` / `--dividends` (importer.py).

A file has fiscal_date_ending, reported_date and reported_eps (any case; Alpha Vantage's
fiscalDateEnding, reportedDate, reportedEPS too; other columns ignored). Unlike the action
imports, ANY row that cannot land refuses the whole import: a quarter left out (to
quarantine) would leave its symbol's trailing-twelve-month EPS wrong or missing for a year
of sessions, without a word. A quarter without an EPS (empty, "None", "null": how Alpha
Vantage lists one not reported yet) is not a row to fix: it is left out and counted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import pandas as pd

from marketlake.config import Settings
from marketlake.errors import MarketlakeError
from marketlake.ingest.csv_formats import check_symbol, date_texts, number_texts, read_table
from marketlake.ingest.importer import SOURCE, _named_by, _read_files
from marketlake.ingest.runner import _claim_lake
from marketlake.lake import actions, earnings
from marketlake.lake.raw import format_timestamp
from marketlake.lake.state import load_state, save_state
from marketlake.sessions import eastern_date, last_closed_session, sessions_between
from marketlake.storage import ObjectStore

# Each column: our name, then Alpha Vantage's (its JSON keys, as a CSV made of them has),
# both lower-cased as read_table finds them.
COLUMNS = {
    "fiscal_date_ending": "fiscaldateending",
    "reported_date": "reporteddate",
    "reported_eps": "reportedeps",
}
# An EPS that says "no number yet". Narrower than earnings.UNREPORTED: in a file someone
# hands us, "nan" or "-" is more likely a broken number than a quarter to come.
NOT_REPORTED = {"", "none", "null"}
_FORMAT = (
    "each row needs fiscal_date_ending and reported_date as YYYY-MM-DD (the report on or "
    "after the quarter's end) and reported_eps as a number (-0.12 for a loss)"
)


@dataclasses.dataclass
class Imported:
    """What one file did: its symbol, the reports landed, those already on record (the
    same report), and the quarters left out as not reported yet."""

    symbol: str
    landed: int
    on_record: int
    unreported: int


def read_earnings_csv(
    data: bytes, name: str, symbol: str | None = None, named_by: str = "the file name"
) -> pd.DataFrame:
    """The file's rows as text columns fiscal_date_ending, reported_date, reported_eps
    (dates as YYYY-MM-DD where they read as a day; numbers with thousands separators or
    decimal commas made plain: csv_formats). A `symbol` column must agree with `symbol`."""
    table = read_table(data, name)
    keys = {
        ours: next((k for k in (ours, av) if table.has(k)), None) for ours, av in COLUMNS.items()
    }
    missing = [ours for ours, key in keys.items() if key is None]
    if missing:
        raise MarketlakeError(
            f"{name}: missing column(s) {', '.join(missing)}; --earnings files need the "
            "header fiscal_date_ending,reported_date,reported_eps (or Alpha Vantage's "
            "fiscalDateEnding,reportedDate,reportedEPS)"
        )
    check_symbol(table, symbol, named_by)
    if not len(table.frame):
        raise MarketlakeError(
            f"{name}: no rows under its header; nothing was imported. Add a row per quarter: "
            "fiscal_date_ending,reported_date,reported_eps"
        )
    fiscal, reported, eps = (keys[c] for c in COLUMNS)
    assert fiscal and reported and eps
    return pd.DataFrame(
        {
            "fiscal_date_ending": date_texts(table, fiscal),
            "reported_date": date_texts(table, reported),
            "reported_eps": number_texts(table, [eps])[eps],
        }
    )


def _advice(reason: str) -> str:
    if "is before its quarter's end" in reason:
        return (
            "reported_date is the day the report was published, on or after the quarter's "
            "end (fiscal_date_ending): check the two columns"
        )
    if reason.startswith("reported_eps"):
        return (
            "write reported_eps as a number (-0.12 for a loss), or leave it empty for a "
            "quarter not reported yet"
        )
    if "given with different reports" in reason:
        return "keep one row per quarter"
    return "write the dates as YYYY-MM-DD, e.g. 2024-06-30"


def _judge_file(
    rows: pd.DataFrame, name: str, session: dt.date, eps_as_of: dt.date | None
) -> tuple[pd.DataFrame, int]:
    """(valid rows as earnings.judge gives them, quarters not reported yet) of one file, or
    the one-line refusal of the whole file."""
    repeated = earnings.repeated_quarter(rows)
    if repeated is not None:
        # Two reports of one quarter: either one landing alone would be a guess.
        raise MarketlakeError(
            f"{name}: the quarter ending {repeated} (fiscal_date_ending) is given more than "
            "once; nothing was imported. Keep one row per quarter"
        )
    blank = rows["reported_eps"].str.strip().str.lower().isin(NOT_REPORTED)
    if blank.all():
        raise MarketlakeError(
            f"{name}: none of its {len(rows)} quarters has a reported_eps (empty or None: "
            "not reported yet); nothing was imported. Import it once they are reported"
        )
    reported = rows[~blank].reset_index(drop=True)
    # judge counts these as not reported (a vendor's words); here they are broken numbers.
    broken = reported["reported_eps"].str.strip().str.lower().isin(earnings.UNREPORTED)
    judged = earnings.judge(reported[~broken])
    rejected = judged.rejected
    for _, row in reported[broken].iterrows():
        reason = f"reported_eps {row['reported_eps']!r} is not a finite number"
        rejected = pd.concat([rejected, pd.DataFrame([{**row.to_dict(), "reason": reason}])])
    total = len(reported)
    if len(rejected):
        first = rejected.iloc[0]
        quarter = f"the quarter ending {first['fiscal_date_ending']!r}"
        if not len(judged.valid):
            head = f"none of its {total} rows is usable (the first, {quarter}: {first['reason']})"
            advice = _FORMAT
        else:
            head = f"{len(rejected)} of its {total} rows cannot land ({quarter}: {first['reason']})"
            advice = _advice(str(first["reason"]))
        raise MarketlakeError(f"{name}: {head}; nothing was imported. Fix the file: {advice}")
    valid = judged.valid
    ahead = [(f, r) for f, r in zip(valid["fiscal"], valid["reported"]) if r > session]
    if ahead:
        # A report counts from the first session after it, as the build applies it: one
        # dated ahead is a date mistyped, or a number nobody could have known yet.
        fiscal, day = ahead[0]
        # Reported on a weekend or holiday: it counts once the next session has closed.
        close = next(iter(sessions_between(day, day + dt.timedelta(days=14))), day)
        raise MarketlakeError(
            f"{name}: the quarter ending {fiscal} is reported on {day}, after the last closed "
            f"NYSE session ({session}); nothing was imported. Remove the row, and import it "
            f"after the close of {close}"
        )
    if eps_as_of is not None:
        late = [(f, r) for f, r in zip(valid["fiscal"], valid["reported"]) if r > eps_as_of]
        if late:
            fiscal, day = late[0]
            raise MarketlakeError(
                f"{name}: the quarter ending {fiscal} was reported on {day}, after --eps-as-of "
                f"{eps_as_of}: its EPS cannot be on the share basis of a day before it was "
                "known; nothing was imported. Give the day the file was downloaded"
            )
    return valid, int(blank.sum())


def _refuse_near_quarters(store: ObjectStore, loaded: list[tuple[str, str, pd.DataFrame, int]]):
    """A quarter end within earnings.NEAR_DAYS of another of the symbol's, in the file or on
    record, is refused: one quarter counted twice would be half of a trailing year."""
    for file_name, symbol, valid, _ in loaded:
        known = earnings.current(store, symbol)
        near = earnings.near_quarters(valid, known["fiscal"])
        if len(near):
            first = near.iloc[0]
            raise MarketlakeError(
                f"{file_name}: {symbol}'s {first['reason']}; nothing was imported. Write the "
                "quarter with the fiscal_date_ending already on record (or keep one row of "
                "the two in the file)"
            )


def _check_changes(
    store: ObjectStore,
    loaded: list[tuple[str, str, pd.DataFrame, int]],
    eps_as_of: dt.date | None,
) -> None:
    """A report that differs from the one on record for its quarter is refused: a mistyped
    EPS would otherwise silently rewrite a year of its symbol's P/E (the latest copy wins).
    The EPS are compared on one share basis, through the splits the lake records."""
    for file_name, symbol, valid, _ in loaded:
        known = earnings.current(store, symbol)
        on_record = {
            f: (r, e, b)
            for f, r, e, b in zip(known["fiscal"], known["reported"], known["eps"], known["basis"])
        }
        splits = actions.current(store, actions.SPLITS, symbol)
        for fiscal, day, eps in zip(valid["fiscal"], valid["reported"], valid["eps"]):
            if fiscal not in on_record:
                continue
            old_day, old_eps, old_basis = on_record[fiscal]
            basis = eps_as_of or day
            if earnings.same_report(on_record[fiscal], (day, float(eps), basis), splits):
                continue
            ratio = earnings.split_ratio(splits, old_basis, basis)
            restated = old_eps / ratio
            before = f"reported {old_day}, EPS {actions.number_text(old_eps)}"
            hint = ""
            if ratio != 1:
                shown = actions.number_text(round(restated, 10))
                before += f" ({shown} on the share basis of {basis})"
            if eps_as_of is None and earnings.split_ratio(splits, day, dt.date.max) != 1:
                # The lake knows a split after the report: the file may be a restated download.
                hint = (
                    "; or, if the file's EPS are restated for later splits, pass "
                    "--eps-as-of with the day it was downloaded"
                )
            after = f"reported {day}, EPS {actions.number_text(eps)}"
            raise MarketlakeError(
                f"{file_name}: {symbol}'s quarter ending {fiscal} is on record as {before}, "
                f"this file says {after}; nothing was imported. Pass --replace if the new "
                f"one is right{hint}"
            )


def run_import_earnings(
    settings: Settings,
    store: ObjectStore,
    files: Sequence[Path],
    symbol: str | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    replace: bool = False,
    eps_as_of: dt.date | None = None,
) -> list[Imported]:
    """Land quarterly earnings from CSV files (or folders of them), one Imported per file.
    `eps_as_of`: the day whose share basis the files' EPS are on (a vendor that restates
    past EPS for later splits: the download day); None when they are as reported. Every
    file is read and checked before anything lands (see the module's docstring); with
    `replace`, a report that differs from the one on record lands as a correction."""
    moment = now()
    session = last_closed_session(moment)
    if eps_as_of is not None and eps_as_of > session:
        raise MarketlakeError(
            f"--eps-as-of {eps_as_of} is after the last closed NYSE session ({session}); "
            "nothing was imported. Give the day the files' EPS were downloaded"
        )
    loaded = []
    seen: dict[str, str] = {}
    for path, name, data in _read_files(files, symbol):
        file_name = Path(path).name
        rows = read_earnings_csv(data, file_name, name, _named_by(symbol))
        if name in seen:
            raise MarketlakeError(
                f"{seen[name]} and {file_name} both hold {name}; nothing was imported. Import "
                "one of them (which copy of a quarter should win is not ours to guess)"
            )
        seen[name] = file_name
        valid, unreported = _judge_file(rows, file_name, session, eps_as_of)
        loaded.append((file_name, name, valid, unreported))
    _refuse_near_quarters(store, loaded)
    if not replace:
        _check_changes(store, loaded, eps_as_of)
    state = load_state(store)
    _claim_lake(state, SOURCE, settings)
    save_state(store, state)
    ingest_date, stamp = eastern_date(moment), format_timestamp(moment)
    out = []
    for _, name, valid, unreported in loaded:
        landed = earnings.land(store, name, valid, SOURCE, ingest_date, stamp, basis=eps_as_of)
        out.append(Imported(name, landed, len(valid) - landed, unreported))
    return out
