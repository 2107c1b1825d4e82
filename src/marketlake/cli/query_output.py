"""How `marketlake query` shows a result: a table that never cuts a header (rows shown one
block each when the columns cannot fit), csv, json (always valid JSON) or a Parquet file;
a file given by --out is replaced whole or not at all, and a reader that stops reading
(`| head -1`) ends the command quietly."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from marketlake.cli.common import _text
from marketlake.errors import MarketlakeError, QueryError

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = ("table", "csv", "json", "parquet")


@dataclass
class Result:
    """A query's columns and rows (a NULL is None), and its Arrow table for Parquet, with the
    types the engine gave (dates stay date32, decimals decimal128)."""

    columns: list[str]
    rows: list[tuple]
    arrow: Callable[[], pa.Table]


def check_output(fmt: str, out_file: Path | None) -> None:
    """Refuse a format or --out that cannot go together, before the query runs."""
    if fmt not in FORMATS:
        raise QueryError(f"--format {fmt!r} is unknown; use {', '.join(FORMATS)}")
    if fmt == "parquet" and out_file is None:
        raise QueryError("--format parquet writes a file: add --out FILE.parquet")
    if fmt == "table" and out_file is not None:
        raise QueryError("--out writes csv, json or parquet: add --format csv, json or parquet")


# -- table ---------------------------------------------------------------------------------


def _cell(value) -> str:
    # People read 10 significant digits; csv and json keep every digit. NaN is shown as
    # NULL is (Athena's results cannot tell them apart); infinities as inf and -inf.
    if isinstance(value, float) and not math.isnan(value):
        return f"{value:.10g}"
    return _text(value)


def _fits(columns: list[str], width: int) -> bool:
    """Whether every header fits whole on one line: each column takes its header's width,
    a space either side and a border."""
    return sum(max(cell_len(c), 1) for c in columns) + 3 * len(columns) + 1 <= width


def render_table(console: Console, columns: list[str], rows: list[tuple], max_rows: int) -> str:
    """The first `max_rows` rows as the console would print them, then the row count. A
    value too wide for its column folds onto more lines; when the headers alone are wider
    than the console, each row is a block of `column  value` lines instead (psql's \\x)."""
    shown = rows[:max_rows]
    with console.capture() as capture:
        if _fits(columns, console.width):
            table = Table()
            for name in columns:
                table.add_column(
                    Text(name), overflow="fold", no_wrap=False, min_width=max(cell_len(name), 1)
                )
            for row in shown:
                table.add_row(*[Text(_cell(v)) for v in row])
            console.print(table)
        else:
            pad = max(cell_len(c) for c in columns)
            for number, row in enumerate(shown, 1):
                console.print(Text(f"-[ row {number} ]-"), soft_wrap=True)
                for name, value in zip(columns, row):
                    line = f"{name}{' ' * (pad - cell_len(name))} | {_cell(value)}"
                    console.print(Text(line.rstrip()), soft_wrap=True)
        more = len(rows) - max_rows
        console.print(
            f"{len(rows)} row(s)" + (f"; {more} not shown (--max-rows)" if more > 0 else "")
        )
    return capture.get()


# -- csv and json --------------------------------------------------------------------------


def write_csv(stream: IO[str], columns: list[str], rows: list[tuple]) -> None:
    """NULL and NaN are empty fields; infinities are inf and -inf, as Python writes them."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_text(v) for v in row] for row in rows)


def _json_safe(value) -> Any:
    # JSON has no NaN or Infinity: both are null, so the output always parses.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return value


def write_json(stream: IO[str], columns: list[str], rows: list[tuple]) -> None:
    records = [{c: _json_safe(v) for c, v in zip(columns, row)} for row in rows]
    stream.write(json.dumps(records, default=_text, allow_nan=False) + "\n")


# -- a file, whole or not at all ----------------------------------------------------------


def _mode_for(path: Path) -> int:
    """An existing file's permissions, else what a new file gets under the umask (mkstemp's
    own 0600 would make the result unreadable to others)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """`write(temp)` fills a temporary file beside `path`, which then replaces `path` in one
    rename: a reader sees the old file or the new one, never a half-written one."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise MarketlakeError(f"cannot write {path}: folder {folder} does not exist; create it")
    if path.is_dir():
        raise MarketlakeError(f"cannot write {path}: it is a folder; name a file with --out")
    try:
        handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".partial")
    except OSError as exc:
        raise MarketlakeError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(handle)
    try:
        write(temp)
        os.chmod(temp, _mode_for(path))
        os.replace(temp, path)
    except OSError as exc:
        raise MarketlakeError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def write_file(path: Path, fmt: str, result: Result) -> None:
    """The result as a csv, json or Parquet file at `path`, replaced atomically."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = result.arrow()
        write_atomically(path, lambda temp: pq.write_table(table, temp))
        return
    writer = write_csv if fmt == "csv" else write_json

    def write(temp: str) -> None:
        with open(temp, "w", encoding="utf-8", newline="") as stream:
            writer(stream, result.columns, result.rows)

    write_atomically(path, write)


# -- stdout --------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_when_the_reader_stops() -> Iterator[None]:
    """A reader that closes the pipe (`| head -1`) got what it wanted: exit 0, silently,
    rather than `error: BrokenPipeError`. Exit 0, not 141 (a SIGPIPE death): under `set -o
    pipefail` a script's `marketlake query ... | head` should not fail for it, and a nonzero
    exit of marketlake always comes with a line saying what failed."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit and would print the error after all: the
        # rest of the output goes to /dev/null instead.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None
