"""End to end: `marketlake verify`, and what query, dashboards and build do with a lake whose
published files were damaged or deleted (issue 20)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_run import marketlake, ok, one_line_error

pytestmark = pytest.mark.e2e

ENV = {"MARKETLAKE_TICKERS": "NVDA,AMD", "MARKETLAKE_HISTORY_DAYS": "60"}
FIRST_AS_OF = "2024-06-28"
LATER_AS_OF = "2024-07-05"
SUMS = (
    "SELECT symbol, count(*) AS n, round(sum(close), 6) AS closes, sum(volume) AS volume, "
    "round(sum(sma_5), 6) AS sma FROM daily_prices GROUP BY symbol ORDER BY symbol"
)
REMEDIES = ("marketlake rollback", "marketlake build --full")


def run(cwd: Path, *args: str):
    return marketlake(cwd, *args, env=ENV)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A lake of two symbols built once; each test works on its own copy."""
    cwd = tmp_path_factory.mktemp("built")
    ok(run(cwd, "run", "--as-of", FIRST_AS_OF))
    return cwd


@pytest.fixture()
def cwd(built, tmp_path) -> Path:
    shutil.copytree(built / "lake", tmp_path / "lake", symlinks=True)
    return tmp_path


def registry(cwd: Path) -> dict:
    return json.loads((cwd / "lake" / "state" / "versions" / "daily_prices.json").read_text())


def published_file(cwd: Path) -> str:
    """The lake key of the current version's one Parquet file."""
    body = registry(cwd)
    (version,) = [v for v in body["versions"] if v["run_id"] == body["current"]]
    (key,) = version["files"]
    assert "/year=2024/" in key and key.endswith(".parquet")
    return key


def garble(cwd: Path, key: str) -> None:
    """32 bytes overwritten at 35% of the file, as a bad sector might."""
    path = cwd / "lake" / key
    data = bytearray(path.read_bytes())
    at = int(len(data) * 0.35)
    data[at : at + 32] = bytes(range(0xA0, 0xC0))
    path.write_bytes(bytes(data))


def sums(cwd: Path) -> list[dict]:
    return json.loads(ok(run(cwd, "query", SUMS, "--format", "json")))


# -- 3. a garbled published file -------------------------------------------------------------


def test_a_garbled_published_file_is_refused_by_readers_and_rebuilt_by_a_full_build(
    built, cwd, tmp_path_factory
):
    key = published_file(cwd)
    garble(cwd, key)
    line = one_line_error(run(cwd, "query", "SELECT count(*) FROM daily_prices"))
    assert key in line and "changed since it was published" in line
    assert all(remedy in line for remedy in REMEDIES)
    ok(run(cwd, "ingest", "--as-of", LATER_AS_OF))
    before = registry(cwd)
    line = one_line_error(run(cwd, "build"))
    assert key in line and "nothing was published" in line and "build --full" in line
    assert registry(cwd) == before
    full = run(cwd, "build", "--full")
    out = ok(full)
    assert "warning: published_readable" in out
    assert registry(cwd)["current"] != before["current"]
    clean = tmp_path_factory.mktemp("clean")
    shutil.copytree(built / "lake", clean / "lake", symlinks=True)
    ok(run(clean, "run", "--as-of", LATER_AS_OF))
    assert sums(cwd) == sums(clean)


def test_dashboards_refuse_a_garbled_published_file(cwd):
    key = published_file(cwd)
    garble(cwd, key)
    line = one_line_error(run(cwd, "dashboards"))
    assert key in line and "changed since it was published" in line
    assert all(remedy in line for remedy in REMEDIES)


# -- 4. a deleted published file -------------------------------------------------------------


def test_a_deleted_published_file_is_refused_by_query_and_a_full_build_publishes(cwd):
    rows = sums(cwd)
    key = published_file(cwd)
    (cwd / "lake" / key).unlink()
    line = one_line_error(run(cwd, "query", "SELECT count(*) FROM daily_prices"))
    # Its year folder is left empty: the registry check names the folder (the version's
    # files are gone); with other files beside it, the digest check names the file.
    assert key.rsplit("/", 1)[0] + "/" in line and "marketlake build --full" in line
    ok(run(cwd, "build", "--full"))
    assert sums(cwd) == rows


# -- 8. marketlake verify --------------------------------------------------------------------


def snapshot(cwd: Path) -> dict[str, bytes]:
    lake = cwd / "lake"
    return {str(p.relative_to(lake)): p.read_bytes() for p in lake.rglob("*") if p.is_file()}


def test_verify_finds_no_damage_in_a_clean_lake(cwd):
    before = snapshot(cwd)
    out = ok(run(cwd, "verify"))
    assert "no damage found" in out and "damaged" not in out
    assert snapshot(cwd) == before


RAW_NVDA = f"raw/daily_prices/ingest_date={FIRST_AS_OF}/NVDA.csv"
LANDED = f"state/raw_landed/ingest_date={FIRST_AS_OF}.json"
REGISTRY = "state/versions/daily_prices.json"
JUNK_AUDIT = "audit/pipeline_runs/junk.parquet"


def change_raw(lake: Path) -> tuple[str, tuple[str, ...]]:
    path = lake / RAW_NVDA
    path.write_bytes(path.read_bytes().replace(b",synthetic,", b",synthetiC,", 1))
    return RAW_NVDA, ("changed since it landed", "marketlake ingest --refetch NVDA")


def delete_raw(lake: Path) -> tuple[str, tuple[str, ...]]:
    (lake / RAW_NVDA).unlink()
    return RAW_NVDA, ("is missing", "marketlake ingest --refetch NVDA")


def garble_published(lake: Path) -> tuple[str, tuple[str, ...]]:
    key = published_file(lake.parent)
    garble(lake.parent, key)
    return key, ("the current version", "changed since it was published", *REMEDIES)


def junk_audit(lake: Path) -> tuple[str, tuple[str, ...]]:
    (lake / JUNK_AUDIT).write_bytes(b"PAR1 this is not a parquet file PAR1")
    return JUNK_AUDIT, ("cannot be read", "move it out of audit/")


def unreadable_landed(lake: Path) -> tuple[str, tuple[str, ...]]:
    (lake / LANDED).write_bytes(b'{"raw/daily_prices/')
    return LANDED, ("unreadable", "delete it")


def current_missing(lake: Path) -> tuple[str, tuple[str, ...]]:
    body = json.loads((lake / REGISTRY).read_text())
    body["current"] = "20240101T000000000Z-gone"
    (lake / REGISTRY).write_text(json.dumps(body))
    return REGISTRY, ("20240101T000000000Z-gone is not among its versions", "rollback --to")


def unreadable_registry(lake: Path) -> tuple[str, tuple[str, ...]]:
    (lake / REGISTRY).write_bytes(b"{not json")
    return REGISTRY, ("move it aside",)


@pytest.mark.parametrize(
    "damage",
    [
        change_raw,
        delete_raw,
        garble_published,
        junk_audit,
        unreadable_landed,
        current_missing,
        unreadable_registry,
    ],
)
def test_verify_names_each_damaged_object_with_a_remedy_and_changes_nothing(cwd, damage):
    key, words = damage(cwd / "lake")
    before = snapshot(cwd)
    result = run(cwd, "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("damaged: ")]
    named = [line for line in lines if key in line]
    assert named, result.stdout
    assert all(word in named[0] for word in words), named[0]
    assert "damaged object(s); nothing was changed" in result.stdout
    assert "no damage found" not in result.stdout
    assert snapshot(cwd) == before


def test_status_shows_the_lake_and_fails_naming_a_garbled_published_file(cwd):
    key = published_file(cwd)
    garble(cwd, key)
    done = run(cwd, "status")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ingest watermarks" in done.stdout  # what is not read from the file still shows
    assert "DAMAGED (a file changed)" in done.stdout
    assert key in done.stderr and "marketlake rollback" in done.stderr
