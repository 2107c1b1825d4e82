"""`marketlake --home s3://bucket import --earnings`: the same import as on a local lake,
landing in the bucket under the lake's lock there, then the deployed build started (or
not, with --no-build); a refused file lands nothing. moto's S3 and Glue, as
test_cli_remote_write's --splits tests."""

from __future__ import annotations

from test_cli_remote import (  # noqa: F401  (environment: autouse, it applies here too)
    cli,
    deploy,
    environment,
    lake,
    one_error_line,
)
from test_cli_remote_write import WORKFLOW, remote, workflow_runs  # noqa: F401
from test_glue_job import BUCKET

from marketlake.lake import earnings
from marketlake.lock import LOCK_KEY

ROWS = "fiscalDateEnding,reportedDate,reportedEPS\n2023-12-31,2024-01-24,3.87\n"


def test_import_of_earnings_lands_in_the_bucket_and_starts_the_build(remote, tmp_path):  # noqa: F811
    deploy(remote)
    path = tmp_path / "ZZZ_earnings.csv"
    path.write_text(ROWS + "2024-03-31,2024-04-24,1.68\n")
    result = cli("import", "--earnings", str(path), "--eps-as-of", "2024-06-03")
    assert result.exit_code == 0, result.output
    assert "import: ZZZ: 2 earnings report(s) landed" in result.stdout
    assert f"started Glue workflow {WORKFLOW}" in result.stdout
    assert [k.rsplit("/", 1)[-1] for k in remote.keys("raw/earnings/")] == ["ZZZ.csv"]
    assert remote.keys("state/raw_landed/earnings/")
    frame = earnings.current(remote.store, "ZZZ")
    assert [str(b) for b in frame["basis"]] == ["2024-06-03", "2024-06-03"]
    assert LOCK_KEY not in remote.keys("state/")  # released
    assert len(workflow_runs(remote)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ZZZ_earnings.csv"]  # no local lake


def test_a_refused_earnings_file_lands_nothing_in_the_bucket(remote, tmp_path):  # noqa: F811
    deploy(remote)
    path = tmp_path / "ZZZ.csv"
    path.write_text(ROWS + "2024-03-31,2024-03-01,1.68\n")
    line = one_error_line(cli("import", "--earnings", str(path)))
    assert line.startswith("error: ZZZ.csv: 1 of its 2 rows cannot land")
    assert remote.keys("raw/") == [] and workflow_runs(remote) == []
    path.write_text(ROWS)
    result = cli("import", "--earnings", str(path), "--no-build")
    assert result.exit_code == 0, result.output
    assert f"next: marketlake --home s3://{BUCKET}/ build" in result.stdout
    assert workflow_runs(remote) == []
