"""What the CLI tests of `marketlake import` share: a clean environment, the command on a
lake under tmp_path, and what a success and a one-line refusal look like."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from marketlake.cli import app


def clear_settings(monkeypatch, tmp_path: Path) -> None:
    """None of the caller's settings; the working directory is tmp_path."""
    for name in list(os.environ):
        if name.startswith(("MARKETLAKE_", "ALPHA", "POLYGON_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def marketlake(tmp_path: Path, *args: str):
    return CliRunner().invoke(app, ["--home", str(tmp_path / "lake"), *args])


def ok(result) -> str:
    assert result.exit_code == 0, f"{result.output}\n{result.stderr}"
    return result.stdout


def refused(result) -> str:
    """The one `error: ...` line of a command that exited 1 with nothing on stdout."""
    assert result.exit_code == 1, f"{result.output}\n{result.stderr}"
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]
