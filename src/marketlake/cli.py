"""The `marketlake` command: ingest, build, query and inspect the lake."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from marketlake.config import Settings
from marketlake.errors import MarketlakeError

if TYPE_CHECKING:  # the commands import these when they run: `--help` stays fast
    from marketlake.engines.duckdb import DuckDBEngine
    from marketlake.ingest.runner import IngestReport, SymbolResult
    from marketlake.lake.actions import ActionName
    from marketlake.wap.pipeline import BuildResult

# Wide enough for run ids and dates when output is piped (rich assumes 80 columns then).
out = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, highlight=False)

app = typer.Typer(
    name="marketlake",
    help=(
        "A stock-market data lakehouse. Locally, the lake is a directory (default ./lake) "
        "with raw CSV, curated Parquet and a DuckDB catalog (lake/catalog.duckdb); "
        "SQL is written in Athena's dialect and run on DuckDB."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Globals:
    home: Path | None = None
    debug: bool = False


GLOBALS = Globals()

TickersOpt = typer.Option(
    None, "--tickers", "-t", help="Comma-separated symbols. [env: MARKETLAKE_TICKERS]"
)
AsOfOpt = typer.Option(
    None,
    "--as-of",
    help="Pretend it is this moment: a date (after that day's close) or an ISO datetime "
    "with offset. Default: now.",
)
ProviderOpt = typer.Option(
    None,
    "--provider",
    help="synthetic or alphavantage. Default: alphavantage when ALPHAVANTAGE_API_KEY is set, "
    "else synthetic. [env: MARKETLAKE_PROVIDER]",
)
SeedOpt = typer.Option(
    None, "--seed", help="Seed of the synthetic market. [env: MARKETLAKE_SEED, default 42]"
)
ForceOpt = typer.Option(
    False, "--force", help="Build even when neither raw data nor SQL changed (a full build)."
)
FullOpt = typer.Option(
    False,
    "--full",
    help="Rebuild every year from the whole raw zone instead of only what new data touches.",
)


@app.callback()
def _root(
    home: Path | None = typer.Option(
        None, "--home", help="The lake directory. [env: MARKETLAKE_HOME, default ./lake]"
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    GLOBALS.home = home
    GLOBALS.debug = debug
    import os

    from marketlake import faults

    faults.arm(os.environ.get(faults.FAULT_ENV))  # crash tests only


def _settings(**overrides) -> Settings:
    return Settings.from_env(home=GLOBALS.home, **overrides)


def _fail(message: str) -> NoReturn:
    # Plain write: a console would wrap a long message over several lines.
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    raise typer.Exit(1)


def guarded(fn):
    """Errors become one line on stderr and exit 1; --debug shows the traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except MarketlakeError as exc:
            if GLOBALS.debug:
                raise
            _fail(str(exc))
        except KeyboardInterrupt:
            err.print("interrupted; nothing half-written was published")
            raise typer.Exit(130) from None
        except Exception as exc:
            if GLOBALS.debug:
                raise
            first = (str(exc).splitlines() or [""])[0]
            _fail(f"{type(exc).__name__}: {first} (rerun with --debug for the traceback)")

    return wrapper


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# -- ingest ------------------------------------------------------------------------------


class _IngestProgress:
    """The bar shows the current symbol, how many are done or deferred, and any wait for the
    rate limiter; retries and fallbacks are printed above it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("ingest", total=None, symbol="")
        self.current = ""
        self.done = 0
        self.deferred = 0

    def _show(self, symbol: str, note: str = "") -> None:
        deferred = f", {self.deferred} deferred" if self.deferred else ""
        self.progress.update(self.task, symbol=f"{symbol}{deferred}{note}")

    def started(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def symbol_started(self, symbol: str) -> None:
        self.current = symbol
        self._show(symbol)

    def symbol_done(self, result: SymbolResult) -> None:
        if result.status == "deferred":
            self.deferred += 1
        self.progress.advance(self.task)

    def waiting(self, seconds: float) -> None:
        if seconds >= 1:
            self._show(self.current, f"  (rate limit: waiting {seconds:.0f}s)")

    def event(self, kind: str, message: str) -> None:
        err.print(f"  {kind}: {_escape(message)}")


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[symbol]}"),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # a bar is for people; logs and pipes get the summary
    )


def _do_ingest(
    settings: Settings, as_of: str | None, refetch: tuple[str, ...] = ()
) -> IngestReport:
    from marketlake.ingest.runner import run_ingest
    from marketlake.lock import lake_lock
    from marketlake.sessions import parse_as_of
    from marketlake.storage import LocalStore

    moment = parse_as_of(as_of)
    with lake_lock(settings.home), _progress() as progress:
        store = LocalStore(settings.home)
        report = run_ingest(
            settings, store, None, moment, observer=_IngestProgress(progress), refetch=refetch
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
    fetched = report.with_status(FETCHED)
    if fetched:
        span = ", ".join(f"{r.symbol} {r.new_bars}" for r in fetched)
        out.print(f"  new bars: {report.new_bars} ({span})")
    current = report.with_status(UP_TO_DATE) + report.with_status(NO_NEW_BARS)
    if current:
        out.print(f"  already up to date: {', '.join(r.symbol for r in current)}")
    if report.quarantined:
        out.print(f"  quarantined: {report.quarantined} (see lake/quarantine/)")
    for r in report.with_status(INVALID):
        out.print(f"  skipped {r.symbol}: {_escape(r.message)}")
    deferred = report.with_status(DEFERRED)
    if deferred:
        out.print(
            f"  deferred to the next run (fetched first then): "
            f"{', '.join(r.symbol for r in deferred)} — {_escape(deferred[0].message)}"
        )
    for r in report.with_status(FAILED):
        err.print(f"  failed: {r.symbol}: {_escape(r.message)} (tried again next run)")
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
) -> None:
    """Fetch new daily bars into the raw zone (lake/raw/daily_prices/ingest_date=.../SYMBOL.csv).

    Incremental: each symbol's watermark (lake/state/ingest_state.json) makes a second run on
    the same day fetch nothing. Bars of a session that has not closed yet are not stored.
    """
    from marketlake.config import parse_tickers

    settings = _settings(tickers=tickers, provider=provider, seed=seed)
    report = _do_ingest(settings, as_of, tuple(parse_tickers(refetch)) if refetch else ())
    if any(r.status == "failed" for r in report.results):
        raise typer.Exit(1)


@app.command("import")
@guarded
def import_(
    files: list[Path] = typer.Argument(..., help="CSV files with daily bars.", show_default=False),
    symbol: str | None = typer.Option(
        None, "--symbol", "-s", help="The symbol of the bars. Default: from the file name."
    ),
    splits: bool = typer.Option(
        False, "--splits", help="The files hold splits: date,split_factor (10 for 10:1)."
    ),
    dividends: bool = typer.Option(
        False, "--dividends", help="The files hold dividends: date (ex-dividend),amount."
    ),
    replace: bool = typer.Option(
        False,
        "--replace",
        help="With --splits / --dividends: land a split_factor or amount that differs from "
        "the one already on record for its symbol and date (a correction). Without it such "
        "a file is refused and nothing lands. The next build restates the symbol.",
    ),
) -> None:
    """Import daily bars (or, with --splits / --dividends, corporate actions) from CSV files
    into the raw zone (source 'import').

    The header needs a date column named date or timestamp (any case) and open, high, low,
    close, volume; other columns (e.g. "Adj Close") are ignored and rows may come in any
    order. The symbol is --symbol or the file name (nvda.csv -> NVDA). Impossible bars go to
    quarantine. Use it to bring history older than the API's 100 compact sessions.
    """
    from marketlake.ingest.importer import run_import
    from marketlake.lock import lake_lock
    from marketlake.storage import LocalStore

    settings = _settings()
    if splits and dividends:
        raise MarketlakeError("--splits and --dividends: import one kind at a time")
    if replace and not (splits or dividends):
        raise MarketlakeError(
            "--replace corrects splits or dividends on record; add --splits or --dividends "
            "(bars need no flag: the latest copy of a bar wins)"
        )
    if splits or dividends:
        from marketlake.ingest.importer import run_import_actions

        kind: ActionName = "splits" if splits else "dividends"
        with lake_lock(settings.home):
            landed = run_import_actions(
                settings, LocalStore(settings.home), files, kind, symbol, replace=replace
            )
        for name, count, rejected in landed:
            extra = f"; {rejected} row(s) quarantined" if rejected else ""
            out.print(f"import: {name}: {count} {kind} row(s) landed{extra}")
        out.print("next: marketlake build")
        return
    with lake_lock(settings.home):
        report = run_import(settings, LocalStore(settings.home), files, symbol)
    for r in report.results:
        span = f" ({r.first_date} .. {r.last_written})" if r.new_bars else ""
        extra = f"; {r.message}" if r.message else ""
        out.print(f"import: {r.symbol}: {r.new_bars} bar(s) landed{span}{extra}")
    out.print("next: marketlake build")


# -- build -------------------------------------------------------------------------------


def _engine(settings: Settings) -> DuckDBEngine:
    from marketlake.engines.duckdb import DuckDBEngine

    return DuckDBEngine(
        settings.home,
        memory_limit=settings.duckdb_memory_limit,
        threads=settings.duckdb_threads,
    )


def _do_build(settings: Settings, force: bool, full: bool = False) -> BuildResult:
    from marketlake.lock import lake_lock
    from marketlake.storage import LocalStore
    from marketlake.wap.pipeline import BuildObserver, run_build

    class Steps(BuildObserver):
        def __init__(self, progress: Progress) -> None:
            self.progress = progress
            self.task = progress.add_task("build", total=3, symbol="")

        def step(self, name: str) -> None:
            done = {"write": 0, "audit": 1, "publish": 2}[name]
            self.progress.update(self.task, completed=done, symbol=name)

    with lake_lock(settings.home), _progress() as progress, _engine(settings) as engine:
        store = LocalStore(settings.home)
        result = run_build(
            settings, store, engine, full=full, force=force, observer=Steps(progress)
        )
    _print_build(result)
    return result


def _print_build(result: BuildResult) -> None:
    for warning in result.warnings:
        err.print(f"warning: {_escape(warning)}", soft_wrap=True)
    if result.status == "skipped":
        out.print(f"build: {result.message}")
        return
    from marketlake.lake.audit import check_counts

    passed, failed, warned = check_counts(result.checks)
    years = f"{result.years[0]}-{result.years[-1]}" if len(result.years) > 1 else result.years[0]
    out.print(
        f"build: run {result.run_id}, {result.message}: {result.rows_written} rows of year(s) "
        f"{years} published to daily_prices"
    )
    out.print(
        f"  checks: {passed} passed, {failed} failed, {warned} warning(s); "
        f"{result.rows_quarantined} of {result.new_rows} new rows quarantined"
    )
    for check in result.checks:
        if check.status == "fail":
            kind = "warning" if check.severity == "warning" else "excluded rows"
            if check.severity == "blocking":
                kind = "FAILED"
            out.print(f"  {kind}: {check.check_name} ({check.failing_rows} rows)")


@app.command()
@guarded
def build(force: bool = ForceOpt, full: bool = FullOpt) -> None:
    """Write, audit and publish daily_prices from the raw zone.

    Bars that fail a row check (price <= 0, high < low, not an NYSE session, ...) are left
    out and kept in the quarantined_rows table; the run blocks if they pass
    MARKETLAKE_MAX_BAD_ROW_PCT of its new rows. The new version is written under
    lake/curated/daily_prices/version=RUN_ID and audited; only if no blocking check fails is
    daily_prices switched to it. A blocked or failed run leaves the published data as it was
    and exits 1. Runs are incremental (the years new data touches) unless --full, or the SQL
    changed.
    """
    _do_build(_settings(), force, full)


@app.command()
@guarded
def rollback(
    to: str | None = typer.Option(
        None, "--to", help="The run id to switch to. Default: the version before the current."
    ),
) -> None:
    """Switch daily_prices back to an earlier published version (see `marketlake status`).

    The last MARKETLAKE_KEEP_VERSIONS versions are kept. The next build starts from the
    version rolled back to.
    """
    from marketlake.lock import lake_lock
    from marketlake.storage import LocalStore
    from marketlake.wap.pipeline import rollback as do_rollback

    settings = _settings()
    warnings: list[str] = []
    with lake_lock(settings.home), _engine(settings) as engine:
        target = do_rollback(settings, LocalStore(settings.home), engine, to, warnings=warnings)
    for warning in warnings:
        err.print(f"warning: {_escape(warning)}", soft_wrap=True)
    out.print(f"rollback: daily_prices now reads run {target.run_id} ({target.published_at})")


# -- run ---------------------------------------------------------------------------------


@app.command()
@guarded
def run(
    tickers: str | None = TickersOpt,
    as_of: str | None = AsOfOpt,
    provider: str | None = ProviderOpt,
    seed: int | None = SeedOpt,
    force: bool = ForceOpt,
    full: bool = FullOpt,
) -> None:
    """Ingest, then build, then render the dashboards; print what the lake holds and how to
    query it."""
    settings = _settings(tickers=tickers, provider=provider, seed=seed)
    report = _do_ingest(settings, as_of)
    result = _do_build(settings, force, full)
    _print_summary(settings, result)
    page = _render(settings)
    out.print(f"dashboards: {page.resolve()}  (open it in a browser; no network needed)")
    if any(r.status == "failed" for r in report.results):
        raise typer.Exit(1)


def _reader(settings: Settings, confined: bool = False) -> DuckDBEngine:
    """A read-only catalog whose daily_prices is what the version registry publishes;
    `confined`, it can open no file outside the lake's readable zones (query)."""
    from marketlake.engines.duckdb import DuckDBEngine
    from marketlake.storage import LocalStore, digest_cache_path
    from marketlake.wap.pipeline import follow_registry_read_only

    engine = DuckDBEngine(settings.home, read_only=True, confined=confined)
    try:
        store = LocalStore(settings.home, digest_cache_path(settings.home, os.environ))
        follow_registry_read_only(store, engine)
    except BaseException:
        engine.close()
        raise
    return engine


def _print_summary(settings: Settings, result: BuildResult) -> None:
    with _reader(settings) as engine:
        summary = engine.fetch_arrow(
            "SELECT symbol, count(*) AS n, min(trade_date) AS first_date, "
            "max(trade_date) AS last_date FROM daily_prices GROUP BY symbol ORDER BY symbol"
        ).to_pylist()
    out.print(f"daily_prices, version {result.version}:")
    table = Table()
    for column in ("symbol", "rows", "first", "last"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for row in summary:
        table.add_row(
            row["symbol"], str(row["n"]), _text(row["first_date"]), _text(row["last_date"])
        )
    out.print(table)
    home = settings.home
    prefix = "" if home == Path("lake") else f"--home {home} "
    out.print(f"lake: {home.resolve()}  (catalog: {home / 'catalog.duckdb'})")
    out.print("query it:")
    out.print(
        f'  .venv/bin/marketlake {prefix}query "SELECT symbol, trade_date, close, daily_return, '
        "avg_price, parkinson_vol_20d FROM daily_prices WHERE trade_date = "
        '(SELECT max(trade_date) FROM daily_prices) ORDER BY symbol"',
        soft_wrap=True,  # one line, so it pastes whole
    )


# -- dashboards --------------------------------------------------------------------------


def _day(text: str | None, flag: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        from marketlake.errors import ConfigError

        raise ConfigError(f"{flag} {text!r} is not a date like 2024-06-28") from None


@app.command()
@guarded
def dashboards(
    out_dir: Path | None = typer.Option(
        None, "--out", help="Where index.html goes. Default: LAKE/dashboards/."
    ),
    date_from: str | None = typer.Option(
        None, "--from", help="First day shown (YYYY-MM-DD). Default: 90 days before the newest."
    ),
    date_to: str | None = typer.Option(
        None, "--to", help="Last day shown (YYYY-MM-DD). Default: the newest data."
    ),
    symbols: list[str] | None = typer.Option(
        None, "--symbol", "-s", help="A symbol to show; repeat for more. Default: all."
    ),
) -> None:
    """Render the Grafana dashboards (grafana/dashboards/*.json) from the local lake.

    Every panel's Athena SQL is expanded the way Grafana's Athena plugin expands it
    ($__timeFilter, $__dateFilter, ${symbol:sqlstring}, ...), run on DuckDB, and drawn in
    one self-contained page (no network needed) that opens from disk in any browser.
    """
    settings = _settings()
    page = _render(settings, out_dir, _day(date_from, "--from"), _day(date_to, "--to"), symbols)
    out.print(f"dashboards: {page}")


def _render(
    settings: Settings,
    out_dir: Path | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    symbols: list[str] | None = None,
) -> Path:
    from marketlake.dashboards.render import render_dashboards

    return render_dashboards(settings.home, out_dir, date_from, date_to, symbols or None)


# -- query -------------------------------------------------------------------------------


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:  # NaN from a NULL in a float column
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if hasattr(value, "isoformat") and hasattr(value, "to_pydatetime"):
        return value.to_pydatetime().isoformat(sep=" ")
    return str(value)


@app.command()
@guarded
def query(
    sql: str = typer.Argument(..., help="One SQL statement in Athena (Trino) dialect."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    max_rows: int = typer.Option(
        100, "--max-rows", help="Rows shown by --format table (csv and json print all)."
    ),
) -> None:
    """Run Athena-dialect SQL against the lake (tables: daily_prices, raw_daily_prices,
    pipeline_runs, dq_results). csv and json go to stdout, so they can be piped.

    It only reads: SELECT, WITH, VALUES or DESCRIBE, and only the lake's curated, audit and
    raw files; anything else is refused. A relative path, as in
    read_parquet('curated/daily_prices/**/*.parquet') or glob('raw/**'), is read from the
    lake, whatever the working directory."""
    from marketlake.errors import QueryError

    if fmt not in ("table", "csv", "json"):
        raise QueryError(f"--format {fmt!r} is unknown; use table, csv or json")
    settings = _settings()
    with _reader(settings, confined=True) as engine:
        arrow = engine.fetch_read(sql)
    columns = arrow.column_names
    rows = [tuple(r.values()) for r in arrow.to_pylist()]
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(v) for v in row] for row in rows)
    elif fmt == "json":
        records = [dict(zip(columns, row)) for row in rows]
        sys.stdout.write(json.dumps(records, default=_text, allow_nan=False) + "\n")
    else:
        table = Table(*columns)
        for row in rows[:max_rows]:
            # People read 10 significant digits; csv and json keep every digit.
            table.add_row(*[f"{v:.10g}" if isinstance(v, float) else _text(v) for v in row])
        out.print(table)
        more = len(rows) - max_rows
        out.print(f"{len(rows)} row(s)" + (f"; {more} not shown (--max-rows)" if more > 0 else ""))


# -- verify ------------------------------------------------------------------------------


@app.command()
@guarded
def verify() -> None:
    """Check the whole lake against what was recorded when it was written: every raw object
    (bars, splits, dividends) against its landing record, every kept version's published
    files against the digests the registry holds, the registry, the audit and the state
    files. Prints each damaged object with what to run, and exits 1 if any is damaged."""
    from marketlake.storage import LocalStore
    from marketlake.wap.verify import verify_lake

    settings = _settings()
    if not settings.home.is_dir():
        _fail(f"no lake at {settings.home}; run `marketlake run` to build one")
    with _progress() as progress:
        progress.add_task("verifying the lake", total=None, symbol="")
        report = verify_lake(LocalStore(settings.home))
    checked = ", ".join(f"{n} {what}" for what, n in report.checked.items())
    out.print(f"verify: checked {checked}")
    for line in report.damaged:
        out.print(f"damaged: {_escape(line)}", soft_wrap=True)
    if not report.ok:
        out.print(f"{len(report.damaged)} damaged object(s); nothing was changed")
        raise typer.Exit(1)
    out.print("no damage found")


# -- status ------------------------------------------------------------------------------


@app.command()
@guarded
def status(
    runs: int = typer.Option(10, "--runs", help="How many recent runs to list."),
) -> None:
    """Show the last runs, the published versions, the latest check results and the
    ingest watermarks. Exits 1, naming the file, when a file of the current version is not
    what its build published."""
    from marketlake.status import show_status

    damaged = show_status(_settings().home, runs, out, err)
    if damaged is not None:
        _fail(damaged)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
