"""`marketlake dashboards`, `query`, `verify` and `status`: the commands that read the lake."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from marketlake.cli.common import (
    _escape,
    _fail,
    _progress,
    _reader,
    _render,
    _settings,
    app,
    err,
    guarded,
    out,
)

if TYPE_CHECKING:  # the commands import these when they run: `--help` stays fast
    pass


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
        None,
        "--symbol",
        "-s",
        help="A symbol to show; repeat for more. Default: the watchlist (MARKETLAKE_TICKERS) "
        "symbols in the lake, else the 10 most traded on the last session.",
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


@app.command()
@guarded
def query(
    sql: str = typer.Argument(..., help="One SQL statement in Athena (Trino) dialect."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or parquet."),
    out_file: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Write the result to this file instead of stdout (csv, json; required for "
        "parquet). An existing file is replaced whole, never left half-written.",
    ),
    max_rows: int = typer.Option(
        100, "--max-rows", help="Rows shown by --format table (csv, json and parquet hold all)."
    ),
) -> None:
    """Run Athena-dialect SQL against the lake (tables: daily_prices, raw_daily_prices,
    pipeline_runs, dq_results; `SHOW TABLES` lists them all, `SHOW COLUMNS FROM t` a
    table's columns and types). On an S3 lake (--home s3://bucket) it runs on Athena, in the
    deployment's workgroup (SHOW reads the Glue catalog).

    It only reads: SELECT, WITH, VALUES, DESCRIBE, SHOW TABLES or SHOW COLUMNS, and only the
    lake's curated, audit and raw files; anything else is refused. A relative path, as in
    read_parquet('curated/daily_prices/**/*.parquet') or glob('raw/**'), is read from the
    lake, whatever the working directory.

    table shows every header whole (a row per block when they cannot fit the terminal). csv
    and json go to stdout, so they can be piped (a reader that stops, as `| head`, ends it
    quietly). NULL and NaN are empty in csv and null in json; infinity is inf / -inf in csv
    and null in json, which has no infinity. parquet keeps the column types (dates, decimals,
    doubles) and needs --out."""
    from marketlake.cli.query_output import (
        check_output,
        quiet_when_the_reader_stops,
        render_table,
        write_csv,
        write_file,
        write_json,
    )

    check_output(fmt, out_file)
    settings = _settings(remote=True)
    remote = settings.lake_url is not None
    result = _athena_result(settings, sql) if remote else _local(settings, sql)
    if out_file is not None:
        write_file(out_file, fmt, result)
        out.print(f"query: {len(result.rows)} row(s) written to {_escape(str(out_file))}")
        return
    with quiet_when_the_reader_stops():
        if fmt == "csv":
            write_csv(sys.stdout, result.columns, result.rows)
        elif fmt == "json":
            write_json(sys.stdout, result.columns, result.rows)
        else:
            sys.stdout.write(render_table(out, result.columns, result.rows, max_rows))


def _local(settings, sql: str):
    from marketlake.cli.query_output import Result
    from marketlake.engines.confined import shown
    from marketlake.engines.duckdb_show import show_local

    show = shown(sql)
    with _reader(settings, confined=True) as engine:
        arrow = engine.fetch_read(sql) if show is None else show_local(engine, show)
    rows = [tuple(r.values()) for r in arrow.to_pylist()]
    return Result(arrow.column_names, rows, lambda: arrow)


def _athena_result(settings, sql: str):
    """`sql` on the deployed lake's Athena, after the same read-only check as locally (before
    the bucket or Athena is reached); a NULL is None, as in the local rows."""
    from marketlake.cli.query_output import Result
    from marketlake.engines.confined import athena_read, described_table, shown
    from marketlake.lakes import open_remote

    statement, described, show = athena_read(sql), described_table(sql), shown(sql)
    lake = open_remote(settings.lake_url)
    lake.require_lake()
    frame = lake.query(statement, described, show)
    values = frame.astype(object).where(frame.notna(), None)

    def arrow():
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        # pandas' pyarrow-backed strings are large_string; DuckDB's (the local lake) string.
        schema = pa.schema(
            [
                f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f
                for f in table.schema
            ]
        )
        return table.cast(schema)

    rows = [tuple(row) for row in values.itertuples(index=False)]
    return Result([str(c) for c in frame.columns], rows, arrow)


# -- verify ------------------------------------------------------------------------------


@app.command()
@guarded
def verify() -> None:
    """Check the whole lake against what was recorded when it was written: every raw object
    (bars, splits, dividends) against its landing record, every kept version's published
    files against the digests the registry holds, the registry, the audit and the state
    files. Prints each damaged object with what to run, and exits 1 if any is damaged. On an
    S3 lake it reads every object once (S3 GETs, no Athena)."""
    from marketlake.storage import LocalStore, ObjectStore
    from marketlake.wap.verify import verify_lake

    settings = _settings(remote=True)
    store: ObjectStore
    if settings.lake_url is not None:
        from marketlake.lakes import open_remote

        lake = open_remote(settings.lake_url)
        lake.require_lake()
        store = lake.store
    elif not settings.home.is_dir():
        _fail(f"no lake at {settings.home}; run `marketlake run` to build one")
    else:
        store = LocalStore(settings.home)
    with _progress() as progress:
        progress.add_task("verifying the lake", total=None, symbol="")
        report = verify_lake(store)
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
    from marketlake.status import show_remote_status, show_status

    settings = _settings(remote=True)
    if settings.lake_url is not None:
        from marketlake.lakes import open_remote

        damaged = show_remote_status(open_remote(settings.lake_url), runs, out, err)
    else:
        damaged = show_status(settings.home, runs, out, err)
    if damaged is not None:
        _fail(damaged)
