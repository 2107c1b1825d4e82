"""`marketlake status`: the last runs, the versions kept, the latest checks and the ingest
watermarks. It only reads, and it reads a damaged lake too: what it cannot read (a registry
whose current version is gone, an audit file that is not Parquet) becomes a warning line
naming the file and the remedy, and the rest is shown."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from marketlake.engines.duckdb import DuckDBEngine
from marketlake.errors import MarketlakeError
from marketlake.lake.audit import AUDIT_TABLES
from marketlake.lake.state import load_state
from marketlake.lakes import RemoteLake
from marketlake.storage import LocalStore, ObjectStore, digest_cache_path
from marketlake.wap.build import TABLE
from marketlake.wap.verify import published_damage
from marketlake.wap.versions import DamagedRegistry, load_registry, published_version

RUNS_SQL = (
    "SELECT run_id, started_at, status, mode, rows_written, rows_quarantined, "
    "checks_passed, checks_failed, checks_warned, message FROM pipeline_runs "
    "ORDER BY started_at DESC, run_id DESC LIMIT ?"
)
CHECKS_SQL = (
    "SELECT run_id, check_name, severity, status, failing_rows FROM dq_results "
    "WHERE run_id = (SELECT max(run_id) FROM dq_results) ORDER BY severity, check_name"
)


def read_audit(
    engine: DuckDBEngine, name: str, sql: str, params: list, warnings: list[str]
) -> pd.DataFrame | None:
    """`sql` over the audit table `name`, or None if the catalog has no such table. An
    object of the table that cannot be read is left out (a warning names it): status is a
    reader, so it moves nothing; the next build sets the object aside to quarantine/."""
    if not engine.has_relation(name):
        return None
    try:
        return engine.fetch_native(sql, params)
    except MarketlakeError:
        prefix = AUDIT_TABLES[name][0]
        unreadable = engine.unreadable_files(prefix)
        if not unreadable:
            raise
    for key, why in unreadable.items():
        warnings.append(
            f"{key} cannot be read ({why}); status leaves it out of {name}, and the next "
            f"`marketlake build` moves it to quarantine/{key}"
        )
    folder = engine.path(prefix)
    readable = [
        "'" + str(p).replace("'", "''") + "'"
        for p in sorted(folder.glob("*.parquet"))
        if p.relative_to(engine.root).as_posix() not in unreadable
    ]
    if not readable:
        return None
    # A session view shadows the catalog's for this read only: the catalog is not changed.
    files = ", ".join(readable)
    engine.execute_native(
        f"CREATE OR REPLACE TEMP VIEW {name} AS "
        f"SELECT * FROM read_parquet([{files}], union_by_name = true)"
    )
    return engine.fetch_native(sql, params)


def show_status(home: Path, runs: int, out: Console, err: Console) -> str | None:
    """Print the lake's status. Returns the error line when the current version's files are
    not what its build published (the caller exits 1 with it): the runs, versions and
    watermarks are still shown, since none of them is read from those files."""
    store = LocalStore(home, digest_cache_path(home, os.environ))
    warnings: list[str] = []
    with DuckDBEngine(home, read_only=True) as engine:
        recent = read_audit(engine, "pipeline_runs", RUNS_SQL, [runs], warnings)
        checks = read_audit(engine, "dq_results", CHECKS_SQL, [], warnings)
    return _report(str(home.resolve()), store, recent, checks, warnings, out, err)


def show_remote_status(lake: RemoteLake, runs: int, out: Console, err: Console) -> str | None:
    """show_status of the deployed lake: the registry, state and file listing from S3, the
    audit tables from Athena (two small queries, each billed Athena's 10 MB minimum)."""
    lake.require_lake()
    warnings: list[str] = []
    with lake.engine() as engine:
        recent, checks = (
            engine.fetch_df(sql) if engine.has_relation(name) else None
            for name, sql in (
                ("pipeline_runs", RUNS_SQL.replace("LIMIT ?", f"LIMIT {int(runs)}")),
                ("dq_results", CHECKS_SQL),
            )
        )
    return _report(str(lake.url), lake.store, recent, checks, warnings, out, err)


def _report(
    where: str,
    store: ObjectStore,
    recent: pd.DataFrame | None,
    checks: pd.DataFrame | None,
    warnings: list[str],
    out: Console,
    err: Console,
) -> str | None:
    registry = load_registry(store, TABLE)
    damaged = False
    unreadable = None
    try:
        published = published_version(store, registry)
    except DamagedRegistry as exc:
        damaged = True
        warnings.insert(0, str(exc))  # first, as before the audit tables' warnings
    else:
        unreadable = published_damage(store, published) if published is not None else None
    state = load_state(store)

    for warning in warnings:
        err.print(f"warning: {escape(warning)}", soft_wrap=True)
    out.print(f"lake: {where}")
    table = Table(title="runs (newest first)", title_justify="left")
    for column in ("run_id", "started (UTC)", "status", "mode", "rows", "quarantined"):
        table.add_column(column, no_wrap=True)
    table.add_column("checks ok/fail/warn", no_wrap=True)
    table.add_column("message", overflow="fold")
    for row in [] if recent is None else recent.itertuples(index=False):
        table.add_row(
            row.run_id,
            str(row.started_at)[:19],
            row.status,
            row.mode or "",
            str(row.rows_written),
            str(row.rows_quarantined),
            f"{row.checks_passed}/{row.checks_failed}/{row.checks_warned}",
            escape(row.message or ""),
        )
    out.print(table)

    table = Table(title="versions of daily_prices kept (newest first)", title_justify="left")
    for column in ("run_id", "published (UTC)", "mode", "years", "current"):
        table.add_column(column)
    for version in reversed(registry.versions):
        years = sorted(version.partitions)
        span = f"{years[0]}-{years[-1]}" if years else ""
        current = ""
        if version.run_id == registry.current:
            current = "DAMAGED (files gone)" if damaged else "yes"
            current = "DAMAGED (a file changed)" if unreadable is not None else current
        table.add_row(version.run_id, version.published_at, version.mode, span, current)
    if damaged and registry.find(registry.current or "") is None:
        table.add_row(registry.current, "", "", "", "DAMAGED (not listed)")
    out.print(table)

    if checks is not None and len(checks):
        table = Table(title=f"checks of run {checks['run_id'].iloc[0]}", title_justify="left")
        for column in ("check", "severity", "status", "failing rows"):
            table.add_column(column)
        for row in checks.itertuples(index=False):
            table.add_row(row.check_name, row.severity, row.status, str(row.failing_rows))
        out.print(table)

    if len(state.symbols) > WATERMARKS_LISTED:
        _watermarks_by_day(out, state)
    else:
        table = Table(title="ingest watermarks", title_justify="left")
        for column in ("symbol", "last trade_date", "source", "last ingest (UTC)"):
            table.add_column(column)
        for symbol, entry in sorted(state.symbols.items()):
            table.add_row(
                symbol, entry.watermark or "", entry.source or "", entry.last_ingest or ""
            )
        out.print(table)
    if state.quota_date:
        deferred = f"; {len(state.deferred)} symbol(s) deferred" if state.deferred else ""
        out.print(
            f"provider requests used on {state.quota_date} (US/Eastern): "
            f"{state.quota_used}{deferred}"
        )
    for label, value in (
        ("whole market landed through", state.market_through),
        ("splits and dividends asked market-wide through", state.actions_through),
        ("the provider's plan serves history from", state.plan_edge),
    ):
        if value:
            out.print(f"{label} {value}")
    return None if unreadable is None else str(unreadable)


# Past this many symbols (a whole-market lake holds 10,000) the watermarks are counted by
# day, the stalest named, instead of one row each.
WATERMARKS_LISTED = 50


def _watermarks_by_day(out, state) -> None:
    by_day: dict[str, list[str]] = {}
    for symbol, entry in state.symbols.items():
        by_day.setdefault(entry.watermark or "never", []).append(symbol)
    table = Table(
        title=f"ingest watermarks of {len(state.symbols):,} symbols, by last trade_date",
        title_justify="left",
    )
    for column in ("last trade_date", "symbols", "for example"):
        table.add_column(column)
    days = sorted(by_day, reverse=True)
    shown = days if len(days) <= 6 else [*days[:5], "…", days[-1]]
    for day in shown:
        if day == "…":
            table.add_row("…", f"{sum(len(by_day[d]) for d in days[5:-1]):,}", "")
            continue
        names = sorted(by_day[day])
        table.add_row(
            day, f"{len(names):,}", ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
        )
    out.print(table)
