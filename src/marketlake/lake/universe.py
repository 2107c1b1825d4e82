"""The lake's own tickers (its universe, kept in the ingest state) and the symbols purged from
its published table: which symbols a run fetches, and what `marketlake tickers` changes.

Precedence, for one run: tickers given (--tickers, or MARKETLAKE_TICKERS, which the deployed
Lambda always sets from Terraform's var.tickers) apply to that run only; without them the run
fetches the lake's universe; the default tickers (config.DEFAULT_TICKERS) only in a lake that
has none. The first run sets the universe, from the tickers it fetched; later only `marketlake
tickers add|remove` changes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from marketlake.config import WHOLE_MARKET, Settings
from marketlake.errors import ConfigError, MarketlakeError
from marketlake.lake.state import IngestState


def universe(state: IngestState) -> list[str] | None:
    """The lake's tickers. A lake from before they were kept has none recorded: it follows
    what it holds (the whole market if it ever landed a whole-market session, else the
    symbols with a watermark), so its first run after an upgrade fetches no new ones."""
    if state.universe is not None:
        return list(state.universe)
    if state.market_through is not None:
        return [WHOLE_MARKET]
    return held(state) or None


def held(state: IngestState) -> list[str]:
    """The symbols the lake holds bars of (a watermark), bar those purged."""
    return sorted(s for s, e in state.symbols.items() if e.watermark and s not in state.purged)


def run_tickers(settings: Settings, state: IngestState) -> tuple[str, ...]:
    """The tickers a run fetches: those given, else the lake's, else the defaults."""
    if settings.tickers_given:
        return settings.tickers
    own = universe(state)
    if not own:
        return settings.tickers
    if own == [WHOLE_MARKET] and settings.provider != "polygon":
        raise ConfigError(
            "the lake's tickers are ALL, the whole market (`marketlake tickers list`), which "
            f"only the polygon provider answers, not {settings.provider}: use --provider "
            "polygon with POLYGON_API_KEY, or give --tickers for this run"
        )
    return tuple(own)


def claim(state: IngestState, tickers: Sequence[str]) -> None:
    """The first run of a lake sets its universe from the tickers it fetches."""
    if state.universe is None:
        state.universe = list(universe(state) or tickers)


def add(state: IngestState, symbols: Sequence[str]) -> list[str]:
    """Add `symbols` (config.parse_tickers' output) to the universe, bringing back any purged
    one (the next build reads its history from raw again). Returns what changed, as lines."""
    own = universe(state) or []
    said = []
    if list(symbols) == [WHOLE_MARKET]:
        if own == [WHOLE_MARKET]:
            return ["the lake already follows the whole market (ALL)"]
        state.universe = [WHOLE_MARKET]
        return ["the lake now follows the whole market (ALL; the polygon provider only)"]
    if own == [WHOLE_MARKET]:
        unpurged = [s for s in symbols if s in state.purged]
        if len(unpurged) < len(symbols):
            raise MarketlakeError(
                "the lake follows the whole market (ALL), which holds every symbol already; "
                "`marketlake tickers add` adds to a list of symbols (it can bring back a "
                "purged one)"
            )
    for symbol in symbols:
        if symbol in state.purged:
            del state.purged[symbol]
            said.append(f"{symbol}: no longer purged; the next build brings its history back")
        if own != [WHOLE_MARKET] and symbol not in own:
            own.append(symbol)
            said.append(f"{symbol}: added")
        elif not any(line.startswith(f"{symbol}:") for line in said):
            said.append(f"{symbol}: already in the lake's tickers")
    state.universe = sorted(own) if own != [WHOLE_MARKET] else own
    return said


def in_lake(state: IngestState, symbol: str) -> bool:
    """Whether the lake follows or holds `symbol`: in its tickers, or with a watermark."""
    entry = state.symbols.get(symbol)
    return symbol in (universe(state) or []) or bool(entry and entry.watermark)


def remove(state: IngestState, symbols: Sequence[str], purge: bool, now: dt.datetime) -> list[str]:
    """Take `symbols` out of the universe (the next ingest does not fetch them; their
    watermarks stay); with `purge`, out of the next published version too (recorded in
    state.purged, which the build and its no_lost_history check read). Returns the lines
    to print; a symbol the lake neither follows nor holds is an error, and nothing changes."""
    own = universe(state) or []
    if WHOLE_MARKET in symbols:
        raise MarketlakeError(
            "`marketlake tickers remove` takes symbols, not ALL (the whole market); a lake "
            "that follows it keeps following it"
        )
    unknown = [s for s in symbols if not in_lake(state, s) and s not in state.purged]
    if unknown:
        raise MarketlakeError(
            f"{', '.join(unknown)}: not in the lake (not among its tickers, no data); "
            "`marketlake tickers list` shows what it holds"
        )
    if own == [WHOLE_MARKET] and not purge:
        raise MarketlakeError(
            "the lake follows the whole market (ALL): a symbol cannot be left out of its "
            "fetches; `marketlake tickers remove SYM --purge` leaves it out of the published "
            "table"
        )
    left = [s for s in own if s not in symbols]
    if own and not left:
        raise MarketlakeError(
            "that would leave the lake with no tickers to fetch; `marketlake tickers add SYM` "
            "another one first"
        )
    stamp = now.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    said = []
    for symbol in symbols:
        parts = []
        if own != [WHOLE_MARKET]:
            listed = symbol in own
            parts.append("removed (no longer fetched)" if listed else "not among the tickers")
        if purge and symbol in state.purged:
            parts.append("already purged")
        elif purge:
            state.purged[symbol] = stamp
            parts.append("purged: the next build leaves it out of daily_prices (raw data kept)")
        said.append(f"{symbol}: " + "; ".join(parts))
    if own:
        state.universe = left
    return said
