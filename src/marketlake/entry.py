"""The `marketlake` console script: a clear word when the CLI's extras are missing."""

import sys


def main() -> None:
    try:
        from marketlake.cli import main as cli_main
    except ImportError as exc:  # typer, rich or duckdb: the [cli] extra
        sys.stderr.write(
            f"error: the marketlake command needs its CLI extras ({exc.name} is missing); "
            "install them with: pip install 'marketlake[cli]'\n"
        )
        raise SystemExit(1) from None
    cli_main()
