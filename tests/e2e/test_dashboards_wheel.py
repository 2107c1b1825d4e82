"""The dashboards from the built wheel (what `make package` ships): it carries the draw
package and the page's stylesheet, and `marketlake run` from the installed wheel, with no
source checkout on the path, renders the page with that stylesheet inlined."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import cli_run
from cli_run import ok

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "marketlake"


def pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"pip {args[0]}: exit {done.returncode}\n{done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(REPO))
    (built,) = out.glob("marketlake-*.whl")
    return built


def test_the_wheel_carries_the_stylesheet_and_every_draw_module(wheel):
    dashboards = PACKAGE / "dashboards"
    wanted = [dashboards / "page.css", *sorted((dashboards / "draw").glob("*.py"))]
    assert len(wanted) > 3
    with zipfile.ZipFile(wheel) as archive:
        for path in wanted:
            inside = "marketlake/" + path.relative_to(PACKAGE).as_posix()
            assert archive.read(inside) == path.read_bytes(), inside


def test_run_from_the_installed_wheel_inlines_the_stylesheet(wheel, tmp_path):
    site = tmp_path / "site"
    pip("install", "--quiet", "--no-deps", "--target", str(site), str(wheel))
    env = {"PYTHONPATH": str(site)}  # ahead of the editable install of the checkout
    user = tmp_path / "user"
    user.mkdir()
    where = subprocess.run(
        [sys.executable, "-c", "import marketlake.dashboards.render as r; print(r.__file__)"],
        cwd=user,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(site), where
    ok(cli_run.marketlake(user, "run", "--as-of", "2024-06-28", "--tickers", "NVDA", env=env))
    page = (user / "lake" / "dashboards" / "index.html").read_text(encoding="utf-8")
    css = (PACKAGE / "dashboards" / "page.css").read_text(encoding="utf-8")
    assert f"<style>{css}</style>" in page
