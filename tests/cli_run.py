"""The real `marketlake` command as a subprocess, for the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def marketlake(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m marketlake ARGS` in `cwd`, with none of the caller's MARKETLAKE_* or
    ALPHAVANTAGE_* or POLYGON_* settings, plus `env`."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MARKETLAKE_", "ALPHA", "POLYGON_"))
    }
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "marketlake", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single `error: ...` line of a command that exited 1 with nothing on stdout."""
    assert result.returncode == 1, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
