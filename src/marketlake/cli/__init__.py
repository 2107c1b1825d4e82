"""The `marketlake` command: ingest, build, query and inspect the lake. One module per kind
of command; importing them registers their commands on the app (common.py)."""

from __future__ import annotations

# Importing a module registers its commands; `--help` lists them in that order (building
# imports ingesting first): ingest, import, build, rollback, run, then describe and the
# other readers, then tickers (a group of commands).
from marketlake.cli import building, describing, ingesting, reading, tickers  # noqa: F401
from marketlake.cli.common import app, reflow_help

reflow_help(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
