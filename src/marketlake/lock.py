"""One writer at a time per local lake: DuckDB's catalog file allows a single writer."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from marketlake.errors import MarketlakeError
from marketlake.storage import LocalStore


@contextlib.contextmanager
def lake_lock(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    path = home / ".lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise MarketlakeError(
                f"another marketlake command (pid {holder}) is writing to {home}; "
                "wait for it to finish, then run this again"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            # Whatever a killed command was writing is garbage now: nobody else writes.
            LocalStore(home).remove_leftovers()
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
