"""Issue 20 end to end: a damaged registry or audit file, as the real command meets it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_run import marketlake, ok, one_line_error

pytestmark = pytest.mark.e2e

GHOST = "20990101T000000000Z-dead"
REGISTRY = Path("lake/state/versions/daily_prices.json")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A lake with two versions of daily_prices."""
    cwd = tmp_path_factory.mktemp("built")
    ok(marketlake(cwd, "run", "--as-of", "2024-06-28", "--tickers", "NVDA,AMD"))
    ok(marketlake(cwd, "ingest", "--as-of", "2024-07-05", "--tickers", "NVDA,AMD"))
    ok(marketlake(cwd, "build"))
    return cwd


@pytest.fixture()
def lake(built, tmp_path) -> Path:
    cwd = tmp_path / "user"
    shutil.copytree(built, cwd)
    return cwd


def test_a_dangling_current_shows_in_status_refuses_build_and_rollback_to_repairs(lake):
    body = json.loads((lake / REGISTRY).read_text())
    kept = [v["run_id"] for v in body["versions"]]
    body["current"] = GHOST
    (lake / REGISTRY).write_text(json.dumps(body))

    status = marketlake(lake, "status")
    assert status.returncode == 0, status.stderr
    assert "warning: state/versions/daily_prices.json is damaged" in status.stderr
    assert GHOST in status.stdout  # the versions table marks it
    line = one_line_error(marketlake(lake, "build"))
    assert f"`current` names version {GHOST}, which it does not list" in line
    assert all(run_id in line for run_id in kept)
    assert "marketlake rollback --to RUN_ID" in line
    assert one_line_error(marketlake(lake, "query", "SELECT 1")) == line

    ok(marketlake(lake, "rollback", "--to", kept[0]))
    assert json.loads((lake / REGISTRY).read_text())["current"] == kept[0]
    assert "damaged" not in marketlake(lake, "status").stderr
    ok(marketlake(lake, "query", "SELECT count(*) FROM daily_prices"))


def test_a_junk_audit_file_is_left_out_by_status_and_set_aside_by_the_build(lake):
    junk = sorted((lake / "lake/audit/dq_results").glob("*.parquet"))[0]
    junk.write_bytes(b"\x00junk\xff" * 20)
    key = junk.relative_to(lake / "lake").as_posix()

    status = marketlake(lake, "status")
    assert status.returncode == 0, status.stderr
    assert f"warning: {key} cannot be read" in status.stderr
    assert "runs (newest first)" in status.stdout
    assert len(status.stderr.strip().splitlines()) == 1

    build = ok(marketlake(lake, "build", "--force"))
    assert "published to daily_prices" in build
    assert not junk.exists()
    assert (lake / "lake/quarantine" / key).is_file()

    status = marketlake(lake, "status")
    assert status.returncode == 0 and status.stderr == ""
