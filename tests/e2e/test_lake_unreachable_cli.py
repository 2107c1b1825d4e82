"""End to end: `marketlake ingest` and `marketlake run` on a lake that refuses a write exit 1
with one line naming the path and what to do, instead of failing every symbol in turn.

The tests run as root here, where chmod refuses nothing, so the refusal is a file standing
where the lake keeps its raw_landed folder (the kernel answers ENOTDIR to every write under it).
"""

from __future__ import annotations

import pytest

from cli_run import marketlake, one_line_error

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("command", ["ingest", "run"])
def test_a_lake_that_refuses_the_landed_records_exits_1_with_one_line(tmp_path, command):
    blocker = tmp_path / "lake" / "state" / "raw_landed"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")

    result = marketlake(
        tmp_path, "--home", "lake", command, "--tickers", "AAA,BBB,CCC", "--as-of", "2024-07-03"
    )

    line = one_line_error(result)
    assert line.startswith(f"error: {blocker.resolve()}: ")
    assert "a file where the lake needs a folder: move it out of the lake" in line
    # The run stopped at the first symbol: the others were never asked for.
    assert [p.name for p in (tmp_path / "lake" / "raw").rglob("*.csv")] == ["AAA.csv"]
