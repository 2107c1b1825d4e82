"""What every command of `marketlake` shares: the Typer app and its global options, the
consoles, one-line errors (guarded), progress, settings, and the read-only lake reader."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from marketlake.config import Settings
from marketlake.errors import MarketlakeError

if TYPE_CHECKING:  # the commands import these when they run: `--help` stays fast
    from marketlake.engines.duckdb import DuckDBEngine
    from marketlake.ingest.runner import SymbolResult

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
    home: str | None = None  # as typed: a directory, or s3://bucket[/prefix]
    debug: bool = False


# What does not run on the deployed lake (--home s3://...), and what to do instead; it is
# refused before it touches anything.
LOCAL_ONLY = {
    "run": "on the deployed lake the scheduled Lambda ingests and the Glue workflow builds; "
    "`marketlake --home {home} ingest` lands a backfill and starts the build",
    "dashboards": "the deployed lake's dashboards are in Grafana (`terraform -chdir=terraform "
    "output grafana_url`); `marketlake dashboards` renders a local lake's",
}


GLOBALS = Globals()

TickersOpt = typer.Option(
    None,
    "--tickers",
    "-t",
    help="Comma-separated symbols, or ALL: every ticker of the US market (polygon only; one "
    "request a session). Allstate alone is `ALL,`. \\[env: MARKETLAKE_TICKERS]",
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
    help="synthetic, alphavantage or polygon. Default: alphavantage when ALPHAVANTAGE_API_KEY "
    "is set, else polygon when POLYGON_API_KEY is set, else synthetic. "
    "\\[env: MARKETLAKE_PROVIDER]",
)
SeedOpt = typer.Option(
    None, "--seed", help="Seed of the synthetic market. \\[env: MARKETLAKE_SEED, default 42]"
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
    ctx: typer.Context,
    # A str, not a Path: Path("s3://b") is the folder "s3:/b".
    home: str | None = typer.Option(
        None,
        "--home",
        # No [/prefix] here: help text is rich markup, where that is a closing tag.
        help="The lake: a directory, or s3://bucket (or s3://bucket/prefix) for the deployed "
        "lake (every command but run and dashboards). "
        "\\[env: MARKETLAKE_HOME, default ./lake]",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    GLOBALS.home = home
    GLOBALS.debug = debug
    if ctx.invoked_subcommand is not None:
        _refuse_remote(ctx.invoked_subcommand)

    from marketlake import faults

    faults.arm(os.environ.get(faults.FAULT_ENV))  # crash tests only


def _refuse_remote(command: str) -> None:
    """One line, before anything is touched, for a home that is another URL scheme, or an S3
    lake given to a command that runs only on a local lake."""
    from marketlake.config import S3Lake, parse_home

    try:
        home = parse_home(GLOBALS.home or os.environ.get("MARKETLAKE_HOME") or None)
    except MarketlakeError as exc:
        _fail(str(exc))
    if isinstance(home, S3Lake) and command in LOCAL_ONLY:
        _fail(
            f"`marketlake {command}` runs on a local lake, not on {home}: "
            + LOCAL_ONLY[command].format(home=home)
        )


def _settings(remote: bool = False, **overrides) -> Settings:
    """The settings of a command; `remote`, it may be given an S3 lake (settings.lake_url)."""
    settings = Settings.from_env(home=GLOBALS.home, **overrides)
    if settings.lake_url is not None and not remote:
        # The root callback refused already; a command called some other way is refused too.
        import click

        ctx = click.get_current_context(silent=True)
        _refuse_remote(ctx.info_name if ctx and ctx.info_name else "this command")
    return settings


def reflow_help(typer_app: typer.Typer) -> None:
    """Each command's help as paragraphs: Typer (0.29) keeps a docstring's line breaks after
    its first paragraph, so a terminal narrower than the source wrapped each line raggedly.
    A blank line still starts a paragraph."""
    import inspect

    for info in typer_app.registered_commands:
        text = info.help or inspect.getdoc(info.callback) or ""
        if text:
            info.help = "\n\n".join(" ".join(part.split()) for part in text.split("\n\n"))
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            reflow_help(group.typer_instance)


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


def _render(
    settings: Settings,
    out_dir: Path | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    symbols: list[str] | None = None,
) -> Path:
    from marketlake.dashboards.render import render_dashboards

    # The configured tickers are the watchlist: the symbols the dashboards select by default
    # (none with --tickers ALL: then the most traded); not given, the lake's own.
    if not settings.tickers_given:
        from marketlake.lake.state import load_state
        from marketlake.lake.universe import universe
        from marketlake.storage import LocalStore

        own = universe(load_state(LocalStore(settings.home)))
        settings = dataclasses.replace(settings, tickers=tuple(own or settings.tickers))
    watchlist = () if settings.whole_market else settings.tickers
    return render_dashboards(
        settings.home, out_dir, date_from, date_to, symbols or None, watchlist=watchlist
    )


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
