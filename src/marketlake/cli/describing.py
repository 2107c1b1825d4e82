"""`marketlake describe`: a table's columns with their types (from the lake: the local
catalog, or Glue on an S3 lake) and their units and definitions (marketlake.columns)."""

from __future__ import annotations

import csv
import json
import sys

import typer
from rich.table import Table

from marketlake.cli.common import _reader, _settings, app, guarded, out
from marketlake.columns import declared
from marketlake.errors import ConfigError, MarketlakeError, QueryError

FORMATS = ("table", "csv", "json")
HEADER = ["column", "type", "unit", "definition", "note"]
BUILT = "daily_prices"  # what a build makes: its absence means nothing is built yet


@app.command()
@guarded
def describe(
    table: str = typer.Argument(BUILT, help="The table or view to describe."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
) -> None:
    """List a table's columns with their type, unit and definition.

    E.g. daily_return is in dollars per share, price_change_pct in percent, log_return a
    fraction, parkinson_vol daily and the *_20d volatilities annualised. Types come from the
    lake (on an S3 lake, from the Glue catalog); units and definitions from
    marketlake/columns.py, which also gives the Glue column comments Athena shows. Columns
    with no declaration (every table but daily_prices) show only their type."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    settings = _settings(remote=True)
    types = _remote_types(settings, table) if settings.lake_url else _local_types(settings, table)
    declaration = declared(table)
    rows = []
    for name, kind in types:
        meaning = declaration.get(name)
        unit, definition, note = meaning if meaning else ("", "", "")
        rows.append([name, kind, unit, definition, note])
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    elif fmt == "json":
        sys.stdout.write(json.dumps([dict(zip(HEADER, r)) for r in rows], indent=2) + "\n")
    else:
        shown = Table(*HEADER, title=table, title_justify="left")
        for row in rows:
            shown.add_row(*row)
        out.print(shown)


def _nothing_built(where: str) -> MarketlakeError:
    return MarketlakeError(
        f"nothing built yet at {where}: run `marketlake build` (or `marketlake run`) first; "
        "describe reads the built table's column types"
    )


def _local_types(settings, table: str) -> list[tuple[str, str]]:
    from marketlake.engines.confined import Show
    from marketlake.engines.duckdb_show import lake_relations, show_local

    if not (settings.home / "catalog.duckdb").is_file():
        raise _nothing_built(str(settings.home))
    with _reader(settings, confined=True) as engine:
        if table.lower() == BUILT and BUILT not in lake_relations(engine):
            raise _nothing_built(str(settings.home))
        described = show_local(engine, Show(None, table))
    return list(zip(*(described.column(c).to_pylist() for c in ("column_name", "data_type"))))


def _remote_types(settings, table: str) -> list[tuple[str, str]]:
    """From the Glue catalog, as `query "SHOW COLUMNS ..."` reads it: no Athena query."""
    from marketlake.engines.confined import Show
    from marketlake.lakes import open_remote

    lake = open_remote(settings.lake_url)
    lake.require_lake()
    try:
        frame = lake.query("", None, Show(None, table))
    except QueryError:
        if table.lower() == BUILT:
            raise _nothing_built(str(settings.lake_url)) from None
        raise
    return list(zip(frame["column_name"].astype(str), frame["data_type"].astype(str)))
