"""`marketlake ingest` and `marketlake import`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from marketlake.cli.common import (
    AsOfOpt,
    ProviderOpt,
    SeedOpt,
    TickersOpt,
    _escape,
    _IngestProgress,
    _progress,
    _settings,
    app,
    err,
    guarded,
    out,
)
from marketlake.config import Settings
from marketlake.errors import MarketlakeError

if TYPE_CHECKING:  # the commands import these when they run: `--help` stays fast
    from contextlib import AbstractContextManager

    from marketlake.ingest.runner import IngestReport
    from marketlake.lake.actions import ActionName
    from marketlake.storage import ObjectStore


def _do_ingest(
    settings: Settings,
    as_of: str | None,
    refetch: tuple[str, ...] = (),
    refetch_days: tuple[dt.date, ...] = (),
    store: ObjectStore | None = None,
    locked: AbstractContextManager | None = None,
) -> IngestReport:
    """The ingest with its progress bar, under the lake's lock; `store` and `locked` are the
    deployed lake's (cli/remote.py), else the local lake's."""
    from marketlake.ingest.runner import run_ingest
    from marketlake.lock import lake_lock
    from marketlake.sessions import parse_as_of
    from marketlake.storage import LocalStore

    moment = parse_as_of(as_of)
    if store is None:
        store, locked = LocalStore(settings.home), lake_lock(settings.home)
    assert locked is not None
    with locked, _progress() as progress:
        report = run_ingest(
            settings,
            store,
            None,
            moment,
            observer=_IngestProgress(progress),
            refetch=refetch,
            refetch_days=refetch_days,
        )
    _print_ingest(report)
    return report


def _print_ingest(report: IngestReport) -> None:
    from marketlake.ingest.runner import (
        DEFERRED,
        FAILED,
        FETCHED,
        INVALID,
        NO_NEW_BARS,
        UP_TO_DATE,
    )
    from marketlake.sessions import EASTERN

    as_of = report.as_of.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M")
    out.print(
        f"ingest ({report.provider}): as of {as_of} US/Eastern, "
        f"last closed session {report.session}"
    )
    if report.requests:
        out.print(f"  requests: {report.requests}")
    fetched = report.with_status(FETCHED)
    if fetched:
        span = _some(f"{r.symbol} {r.new_bars}" for r in fetched)
        out.print(f"  new bars: {report.new_bars} ({span})")
    current = report.with_status(UP_TO_DATE) + report.with_status(NO_NEW_BARS)
    if current:
        out.print(f"  already up to date: {_some(r.symbol for r in current)}")
    if report.plan_history:
        out.print(f"  plan: {_escape(report.plan_history)}")
    if report.market_waiting:
        waiting = report.market_waiting
        span = waiting[0] if len(waiting) == 1 else f"{waiting[0]} .. {waiting[-1]}"
        line = (
            f"  {len(waiting)} session(s) wait for the next run ({span}): "
            f"{_escape(report.market_why)}"
        )
        (err if report.market_failed else out).print(line)
    if report.quarantined:
        out.print(f"  quarantined: {report.quarantined} (see lake/quarantine/)")
    for r in report.with_status(INVALID)[:SHOWN]:
        out.print(f"  skipped {r.symbol}: {_escape(r.message)}")
    deferred = report.with_status(DEFERRED)
    if deferred:
        out.print(
            f"  deferred to the next run (fetched first then): "
            f"{_some(r.symbol for r in deferred)} — {_escape(deferred[0].message)}"
        )
    for r in report.with_status(FAILED)[:SHOWN]:
        err.print(f"  failed: {r.symbol}: {_escape(r.message)} (tried again next run)")
    if report.actions_market:
        landed = ", ".join(f"{n} {k}" for k, n in sorted(report.actions_landed.items()))
        out.print(
            f"  splits and dividends: asked market-wide from {report.actions_market}, "
            f"new or changed: {landed or 'none'}"
        )
    if report.actions_asked:
        landed = ", ".join(f"{n} {k}" for k, n in sorted(report.actions_landed.items()))
        out.print(
            f"  splits and dividends: asked for {len(report.actions_asked)} symbol(s), "
            f"new or changed: {landed or 'none'}"
        )
    if report.actions_held:
        held = ", ".join(f"{n} {k}" for k, n in sorted(report.actions_held.items()))
        out.print(
            f"  not yet effective, not landed: {held} dated after {report.session} "
            "(landed by a fetch after their date)"
        )
    if report.actions_quarantined:
        bad = ", ".join(f"{n} {k}" for k, n in sorted(report.actions_quarantined.items()))
        out.print(f"  splits and dividends quarantined: {bad} (see lake/quarantine/)")
    if report.actions_off:
        out.print(f"  splits and dividends off this run: {_escape(report.actions_off)}")
    elif report.actions_waiting:
        out.print(
            "  splits and dividends wait for the next run: " + ", ".join(report.actions_waiting)
        )
    _print_earnings(report)


def _print_earnings(report: IngestReport) -> None:
    """What the run did with earnings (ingest/earnings.py): a line, and one for each of
    reports held back, quarters quarantined, and earnings off or waiting."""
    if report.earnings_asked:
        notes = [
            f"{n} {what}"
            for n, what in (
                (report.earnings_unreported, "listed without an EPS"),
                (len(report.earnings_none), "symbol(s) with none"),
            )
            if n
        ]
        out.print(
            f"  earnings: asked for {len(report.earnings_asked)} symbol(s), new or changed: "
            f"{report.earnings_landed} quarter(s)" + (f" ({', '.join(notes)})" if notes else "")
        )
    if report.earnings_held:
        out.print(
            f"  earnings reported after {report.session}, not landed: {report.earnings_held} "
            "(landed by a fetch after their date)"
        )
    if report.earnings_quarantined:
        out.print(f"  earnings quarantined: {report.earnings_quarantined} (see lake/quarantine/)")
    if report.earnings_off:
        out.print(f"  earnings: {_escape(report.earnings_off)}")
    elif report.earnings_waiting:
        out.print(f"  earnings wait for the next run: {_some(report.earnings_waiting)}")


# A whole-market run settles 10,000 symbols: the lines name the first few and count the rest.
SHOWN = 20


def _some(names) -> str:
    names = list(names)
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


@app.command()
@guarded
def ingest(
    tickers: str | None = TickersOpt,
    as_of: str | None = AsOfOpt,
    provider: str | None = ProviderOpt,
    seed: int | None = SeedOpt,
    refetch: str | None = typer.Option(
        None,
        "--refetch",
        help="Comma-separated symbols to ask for their whole window again (within the quota), "
        "landing every bar: the remedy when a build says a raw object lost rows.",
    ),
    refetch_days: str | None = typer.Option(
        None,
        "--refetch-days",
        help="Comma-separated days (2024-06-03) whose whole-market objects are asked again "
        "(polygon): every ticker's bars of the session, and the day's splits and dividends. "
        "The remedy when a build names a damaged market~DAY.csv object.",
    ),
) -> None:
    """Fetch new daily bars into the raw zone (lake/raw/daily_prices/ingest_date=.../SYMBOL.csv).

    Incremental: each symbol's watermark (lake/state/ingest_state.json) makes a second run on
    the same day fetch nothing. Bars of a session that has not closed yet are not stored.

    With polygon the run asks the fewest requests for what the lake lacks: one grouped-daily
    request per missing session (every ticker at once; one object
    lake/raw/daily_prices/ingest_date=.../market~SESSION.csv each), or one per-ticker request
    per symbol for any range, whichever is cheaper; splits and dividends are asked market-wide.
    Before a long backfill it prints the plan (requests, and time at the pace).

    On an S3 lake (--home s3://bucket) it lands in the bucket with the quota state the
    scheduled Lambda uses, with no Lambda time limit (a long backfill), then starts the
    deployed build.
    """
    import os

    from marketlake.config import parse_tickers

    settings = _settings(remote=True, tickers=tickers, provider=provider, seed=seed)
    symbols = tuple(parse_tickers(refetch)) if refetch else ()
    days = _days(refetch_days) if refetch_days else ()
    if settings.lake_url is not None:
        from marketlake.cli import remote

        chosen = bool(provider or os.environ.get("MARKETLAKE_PROVIDER"))
        report = remote.ingest(settings, as_of, symbols, days, provider_chosen=chosen)
    else:
        report = _do_ingest(settings, as_of, symbols, days)
    if any(r.status == "failed" for r in report.results):
        raise typer.Exit(1)


def _days(text: str) -> tuple[dt.date, ...]:
    days = []
    for part in text.split(","):
        try:
            days.append(dt.date.fromisoformat(part.strip()))
        except ValueError:
            raise MarketlakeError(
                f"--refetch-days: {part.strip()!r} is not a day like 2024-06-03"
            ) from None
    return tuple(days)


@app.command("import")
@guarded
def import_(
    files: list[Path] = typer.Argument(
        ..., help="CSV files with daily bars, or folders of them.", show_default=False
    ),
    symbol: str | None = typer.Option(
        None, "--symbol", "-s", help="The symbol of the bars. Default: from the file name."
    ),
    splits: bool = typer.Option(
        False,
        "--splits",
        help="The files hold splits: date,split_factor (10 for 10:1), or Yahoo's "
        "Date,Stock Splits (10:1).",
    ),
    dividends: bool = typer.Option(
        False,
        "--dividends",
        help="The files hold dividends: date (ex-dividend),amount, or Yahoo's Date,Dividends.",
    ),
    earnings: bool = typer.Option(
        False,
        "--earnings",
        help="The files hold quarterly earnings: fiscal_date_ending,reported_date,"
        "reported_eps (or Alpha Vantage's fiscalDateEnding,reportedDate,reportedEPS).",
    ),
    eps_as_of: str | None = typer.Option(
        None,
        "--eps-as-of",
        help="With --earnings: the day whose share basis the EPS are on (the download day "
        "of a vendor that restates past EPS for later splits, e.g. Alpha Vantage, Yahoo). "
        "Default: the EPS are as reported.",
    ),
    replace: bool = typer.Option(
        False,
        "--replace",
        help="With --splits / --dividends / --earnings: land a split_factor, amount or "
        "report that differs from the one already on record for its symbol and date or "
        "quarter (a correction). Without it such a file is refused and nothing lands. The "
        "next build restates the symbol.",
    ),
    build: bool = typer.Option(
        True,
        "--build/--no-build",
        help="On an S3 lake: start the deployed build (the Glue workflow) once the files "
        "have landed.",
    ),
) -> None:
    """Import daily bars (or, with --splits / --dividends, corporate actions; with
    --earnings, quarterly earnings) from CSV files, or folders of them (every .csv in it),
    into the raw zone (source 'import').

    The header needs a date column (date or timestamp, any case, or pandas' unnamed index)
    and open, high, low, close, volume; other columns (e.g. "Adj Close") are ignored and rows
    may come in any order. Read too: yfinance's history().to_csv() and one-ticker
    download().to_csv(), Nasdaq's download, thousands separators ("1,305.88"), and ; (with
    decimal commas) or tab separators.

    The symbol is --symbol, or the file name when it is a ticker (GOOG.csv, brk.b.csv),
    perhaps followed by daily, history, prices, eod, data, ... (NVDA_daily.csv,
    nvda-history.csv); any other name (daily_IBM.csv, HistoricalData_....csv, history.csv) is
    refused: pass --symbol.

    Bars are US equities' on the NYSE calendar: impossible bars and bars of days that are not
    NYSE sessions go to quarantine; bars before 2000-01-03, where the calendar starts, are
    left out. Use it to bring history older than the API's 100 compact sessions.

    Split-adjusted prices (Yahoo's) are restored as traded, or refused, at every split the
    lake knows (see docs/importing.md).

    --earnings refuses the whole import on any row that cannot land (a report before its
    quarter's end or after the last closed session, a quarter twice, an EPS that is not a
    number); a quarter without an EPS (empty, None) is not reported yet and is left out.

    On an S3 lake (--home s3://bucket) the files land in the bucket's raw zone under the same
    checks, then the deployed build is started (--no-build leaves it to you).
    """
    from marketlake.ingest.importer import run_import
    from marketlake.lock import lake_lock
    from marketlake.storage import LocalStore

    settings = _settings(remote=True)
    kinds = [f for f, on in (("--splits", splits), ("--dividends", dividends)) if on]
    if earnings:
        kinds.append("--earnings")
    if len(kinds) > 1:
        raise MarketlakeError(f"{' and '.join(kinds)}: import one kind at a time")
    if replace and not kinds:
        raise MarketlakeError(
            "--replace corrects splits, dividends or earnings on record; add --splits, "
            "--dividends or --earnings (bars need no flag: the latest copy of a bar wins)"
        )
    if eps_as_of is not None and not earnings:
        raise MarketlakeError(
            "--eps-as-of gives the share basis of the EPS in --earnings files; add --earnings"
        )
    if earnings:
        _import_earnings(settings, files, symbol, replace, eps_as_of, build)
        return
    if splits or dividends:
        from marketlake.ingest.importer import run_import_actions

        kind: ActionName = "splits" if splits else "dividends"

        def show(landed: list[tuple[str, int, int]]) -> None:
            for name, count, rejected in landed:
                extra = f"; {rejected} row(s) quarantined" if rejected else ""
                out.print(f"import: {name}: {count} {kind} row(s) landed{extra}")

        if settings.lake_url is not None:
            from marketlake.cli import remote

            remote.import_actions(settings, files, kind, symbol, replace, build, show)
            return
        with lake_lock(settings.home):
            landed = run_import_actions(
                settings, LocalStore(settings.home), files, kind, symbol, replace=replace
            )
        show(landed)
        out.print("next: marketlake build")
        return
    if settings.lake_url is not None:
        from marketlake.cli import remote

        remote.import_bars(settings, files, symbol, build, _print_imported)
        return
    with lake_lock(settings.home):
        report = run_import(settings, LocalStore(settings.home), files, symbol)
    _print_imported(report)
    out.print("next: marketlake build")


def _import_earnings(
    settings: Settings,
    files: list[Path],
    symbol: str | None,
    replace: bool,
    eps_as_of: str | None,
    build: bool,
) -> None:
    from marketlake.ingest.import_earnings import Imported, run_import_earnings
    from marketlake.lock import lake_lock
    from marketlake.storage import LocalStore

    basis = None
    if eps_as_of is not None:
        try:
            basis = dt.date.fromisoformat(eps_as_of.strip())
        except ValueError:
            raise MarketlakeError(
                f"--eps-as-of {eps_as_of!r}: not a day like 2024-06-03 (the day the EPS were "
                "downloaded)"
            ) from None

    def show(imported: list[Imported]) -> None:
        for one in imported:
            parts = [f"import: {one.symbol}: {one.landed} earnings report(s) landed"]
            if one.on_record:
                parts.append(f"{one.on_record} already on record")
            if one.unreported:
                parts.append(
                    f"{one.unreported} quarter(s) without an EPS left out (not reported yet)"
                )
            out.print("; ".join(parts))

    if settings.lake_url is not None:
        from marketlake.cli import remote

        remote.import_earnings(settings, files, symbol, replace, basis, build, show)
        return
    with lake_lock(settings.home):
        imported = run_import_earnings(
            settings, LocalStore(settings.home), files, symbol, replace=replace, eps_as_of=basis
        )
    show(imported)
    out.print("next: marketlake build")


def _print_imported(report: IngestReport) -> None:
    for r in report.results:
        span = f" ({r.first_date} .. {r.last_written})" if r.new_bars else ""
        extra = f"; {r.message}" if r.message else ""
        out.print(f"import: {r.symbol}: {r.new_bars} bar(s) landed{span}{extra}")


# -- build -------------------------------------------------------------------------------
