"""`marketlake build`, `rollback` and `run`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import Progress
from rich.table import Table

from marketlake.cli.common import (
    AsOfOpt,
    ForceOpt,
    FullOpt,
    ProviderOpt,
    SeedOpt,
    TickersOpt,
    _escape,
    _progress,
    _reader,
    _render,
    _settings,
    _text,
    app,
    err,
    guarded,
    out,
)
from marketlake.cli.ingesting import _do_ingest
from marketlake.config import Settings
from marketlake.errors import MarketlakeError

if TYPE_CHECKING:  # the commands import these when they run: `--help` stays fast
    from marketlake.engines.duckdb import DuckDBEngine
    from marketlake.wap.pipeline import BuildResult


def _engine(settings: Settings) -> DuckDBEngine:
    from marketlake.engines.duckdb import DuckDBEngine

    return DuckDBEngine(
        settings.home,
        memory_limit=settings.duckdb_memory_limit,
        threads=settings.duckdb_threads,
    )


def build_steps(progress: Progress):
    """The build's bar: write, audit, publish."""
    from marketlake.wap.pipeline import BuildObserver

    class _Steps(BuildObserver):
        def __init__(self) -> None:
            self.task = progress.add_task("build", total=3, symbol="")

        def step(self, name: str) -> None:
            done = {"write": 0, "audit": 1, "publish": 2}[name]
            progress.update(self.task, completed=done, symbol=name)

    return _Steps()


def _do_build(settings: Settings, force: bool, full: bool = False) -> BuildResult:
    from marketlake.lock import lake_lock
    from marketlake.storage import LocalStore
    from marketlake.wap.pipeline import run_build

    with lake_lock(settings.home), _progress() as progress, _engine(settings) as engine:
        store = LocalStore(settings.home)
        result = run_build(
            settings, store, engine, full=full, force=force, observer=build_steps(progress)
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
def build(
    force: bool = ForceOpt,
    full: bool = FullOpt,
    here: bool = typer.Option(
        False,
        "--here",
        help="On an S3 lake: run the Glue job's code on this machine (Athena runs the SQL) "
        "instead of starting the job. Needs your credentials to use the job's build workgroup.",
    ),
) -> None:
    """Write, audit and publish daily_prices from the raw zone.

    Bars that fail a row check (price <= 0, high < low, not an NYSE session, ...) are left
    out and kept in the quarantined_rows table; the run blocks if they pass
    MARKETLAKE_MAX_BAD_ROW_PCT of its new rows. The new version is written under
    lake/curated/daily_prices/version=RUN_ID and audited; only if no blocking check fails is
    daily_prices switched to it. A blocked or failed run leaves the published data as it was
    and exits 1. Runs are incremental (the years new data touches) unless --full, or the SQL
    changed.

    On an S3 lake (--home s3://bucket) it starts the deployed Glue job and follows it to
    its end (--force and --full ask it for a full rebuild), or with --here runs the job's
    code from this machine.
    """
    settings = _settings(remote=True)
    if settings.lake_url is not None:
        from marketlake.cli import remote

        remote.build(settings, full or force, here)
        return
    if here:
        raise MarketlakeError(
            "--here is for an S3 lake (--home s3://bucket); a local build runs here"
        )
    _do_build(settings, force, full)


@app.command()
@guarded
def rollback(
    to: str | None = typer.Option(
        None, "--to", help="The run id to switch to. Default: the version before the current."
    ),
) -> None:
    """Switch daily_prices back to an earlier published version (see `marketlake status`).

    The last MARKETLAKE_KEEP_VERSIONS versions are kept. The next build starts from the
    version rolled back to. On an S3 lake it switches the Athena view and the registry from
    this machine, refused while a build or another command holds the lake.
    """
    from marketlake.lock import lake_lock
    from marketlake.storage import LocalStore
    from marketlake.wap.pipeline import rollback as do_rollback

    settings = _settings(remote=True)
    warnings: list[str] = []
    if settings.lake_url is not None:
        from marketlake.cli import remote

        target, warnings = remote.rollback(settings, to)
    else:
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
        "avg_price, parkinson_vol_20d, pe_ratio_ttm FROM daily_prices WHERE trade_date = "
        '(SELECT max(trade_date) FROM daily_prices) ORDER BY symbol"',
        soft_wrap=True,  # one line, so it pastes whole
    )


# -- dashboards --------------------------------------------------------------------------
