"""`marketlake tickers list|add|remove`: the lake's own tickers (lake/universe.py), kept in
its ingest state, which a run without --tickers or MARKETLAKE_TICKERS fetches."""

from __future__ import annotations

import typer
from rich.table import Table

from marketlake.cli.common import _settings, app, guarded, out

tickers_app = typer.Typer(
    name="tickers",
    help="The lake's own tickers: what `run` and `ingest` fetch when no --tickers or "
    "MARKETLAKE_TICKERS is given. The first run sets them; add and remove change them. On "
    "an S3 lake they are what `ingest --home s3://...` fetches (the scheduled Lambda "
    "fetches Terraform's `tickers`), and a purge holds for the Glue build too.",
    no_args_is_help=True,
)
app.add_typer(tickers_app)

SymbolsArg = typer.Argument(
    ...,
    help="Symbols (NVDA AMD, or NVDA,AMD), checked as --tickers checks them.",
    show_default=False,
)


def _parse(symbols: list[str]) -> tuple[str, ...]:
    from marketlake.config import parse_tickers

    return parse_tickers(",".join(symbols))


def _lake(command: str):
    """(the lake's store, its lock, the --home to name in advice): the local lake, or the
    deployed one (--home s3://...) under the lock in its bucket."""
    import contextlib

    from marketlake.lock import lake_lock, store_lock
    from marketlake.storage import LocalStore

    settings = _settings(remote=True)
    if settings.lake_url is None:
        return LocalStore(settings.home), lambda: lake_lock(settings.home), ""
    from marketlake.cli.remote import holder, open_lake

    lake = open_lake(settings)
    if command == "list":
        return lake.store, contextlib.nullcontext, f"--home {lake.url} "
    return lake.store, lambda: store_lock(lake.store, holder(command)), f"--home {lake.url} "


def _change(command: str, change) -> str:
    """Apply `change(state)` to the ingest state under the lake's lock, and save it; the
    --home to name in advice."""
    from marketlake.lake.state import load_state, save_state

    store, locked, home = _lake(command)
    with locked():
        state = load_state(store)
        lines = change(state)
        save_state(store, state)
    for line in lines:
        out.print(line)
    if home:
        # On AWS the schedule's tickers are Terraform's: say so where it would surprise.
        out.print(
            "note: these are what `marketlake " + home + "ingest` fetches; the scheduled "
            "ingest Lambda fetches Terraform's `tickers` (set it in terraform.tfvars and run "
            "`make deploy`)",
            soft_wrap=True,
        )
    return home


@tickers_app.command("list")
@guarded
def list_() -> None:
    """Print the lake's tickers, each with its watermark (the last day stored), and the
    symbols it holds data of but no longer fetches, or has purged."""
    from marketlake.config import WHOLE_MARKET
    from marketlake.lake.state import load_state
    from marketlake.lake.universe import universe

    store, _, _ = _lake("list")
    state = load_state(store)
    own = universe(state)
    if own is None:
        out.print(
            "the lake has no tickers yet: the first `marketlake run` or `ingest` sets them "
            "(from --tickers, MARKETLAKE_TICKERS, or the defaults)"
        )
        return
    if own == [WHOLE_MARKET]:
        out.print("the lake follows the whole market (ALL)")
    table = Table()
    for column in ("symbol", "fetched", "watermark", "note"):
        table.add_column(column)
    held = {s for s, e in state.symbols.items() if e.watermark}
    followed = [] if own == [WHOLE_MARKET] else own
    for symbol in sorted({*followed, *held, *state.purged}):
        entry = state.symbols.get(symbol)
        if symbol in state.purged:
            note = f"purged {state.purged[symbol]}"
        elif entry is not None and entry.invalid:
            note = f"refused by the provider: {entry.invalid}"
        else:
            note = "" if entry and entry.watermark else "no data yet"
        fetched = "yes" if symbol in followed or own == [WHOLE_MARKET] else "no"
        table.add_row(symbol, fetched, (entry.watermark if entry else None) or "", note)
    if table.row_count:
        out.print(table)


@tickers_app.command()
@guarded
def add(symbols: list[str] = SymbolsArg) -> None:
    """Add symbols to the lake's tickers: the next plain `run` or `ingest` fetches them. ALL
    makes the lake follow the whole market (polygon). A purged symbol comes back: the next
    build brings its history back from the raw zone."""
    from marketlake.lake import universe

    wanted = _parse(symbols)
    _change("tickers add", lambda state: universe.add(state, wanted))


@tickers_app.command()
@guarded
def remove(
    symbols: list[str] = SymbolsArg,
    purge: bool = typer.Option(
        False,
        "--purge",
        help="Also leave the symbols out of the next published daily_prices, every year of "
        "them (the next build rebuilds them all). Their raw files stay, for audit; "
        "`marketlake tickers add` brings them back.",
    ),
) -> None:
    """Stop fetching symbols: the next ingest skips them (their data and watermarks stay,
    and --tickers can still name them for one run)."""
    import datetime as dt

    from marketlake.lake import universe

    gone = _parse(symbols)
    now = dt.datetime.now(dt.timezone.utc)
    home = _change("tickers remove", lambda state: universe.remove(state, gone, purge, now))
    if purge:
        out.print(f"next: marketlake {home}build")
