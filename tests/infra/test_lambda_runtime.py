"""The ingest Lambda on its runtime, python3.13.

- Every module of the library and the handler compiles on Python 3.13 (warnings as errors).
- The packaged zip imports on Python 3.13 with only what its two layers carry beside it
  (requirements/lambda-runtime.txt), as Lambda lays them out: the zip first on the path. Its
  boto3/botocore are its own and can send S3 conditional writes. `make lambda-runtime-check`
  runs this after `make package` (make test does, after the rehearsal has packaged).
- The zip's SDK pins are the tested ones and all that boto3 needs beyond the layers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from infra_contract import LAMBDA_HANDLER, REPO, SRC, normalize, requirement_pins, terraform
from packaging.requirements import Requirement
from packaging.version import Version

SDK_PINS = REPO / "requirements" / "lambda-sdk.txt"
LAYER_PINS = REPO / "requirements" / "lambda-runtime.txt"
ZIP = REPO / "dist" / "aws" / "ingest_lambda.zip"
# botocore's S3 model has PutObject IfNoneMatch since 1.35.2 and IfMatch since 1.35.69
# (.changes/1.35.2.json, .changes/1.35.69.json in boto/botocore).
CONDITIONAL_WRITES_SINCE = Version("1.35.69")
# What botocore needs that the AWS SDK for pandas layer keeps (its build removes only boto*,
# urllib3* and s3transfer*: building/lambda/build-lambda-layer.sh).
FROM_THE_PANDAS_LAYER = {"python-dateutil", "six"}


def runtime_version() -> str:
    runtime = terraform().resource("aws_lambda_function", "ingest")["runtime"]
    assert runtime.startswith("python3."), runtime
    return runtime.removeprefix("python")


def python313() -> str:
    """The Python the Lambda runs: MARKETLAKE_PYTHON313, else pyenv's, else python3.13 on
    PATH; the first that runs and is that version (a pyenv shim may exist and not run)."""
    version = runtime_version()
    pyenv = sorted((Path.home() / ".pyenv" / "versions").glob(f"{version}.*/bin/python{version}"))
    for candidate in (
        os.environ.get("MARKETLAKE_PYTHON313", ""),
        *map(str, pyenv),
        shutil.which(f"python{version}") or "",
    ):
        if candidate and interpreter_version(candidate) == version:
            return candidate
    pytest.skip(f"no Python {version} interpreter (set MARKETLAKE_PYTHON313): check not run")


def interpreter_version(python: str) -> str | None:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# -- the pins ---------------------------------------------------------------------------------


def test_the_zips_sdk_is_what_boto3_needs_beyond_the_layer_at_tested_versions():
    pins = requirement_pins(SDK_PINS)
    needed, todo = set(), ["boto3"]
    while todo:
        name = normalize(todo.pop())
        if name in needed or name in FROM_THE_PANDAS_LAYER:
            continue
        needed.add(name)
        for line in metadata.requires(name) or []:
            dep = Requirement(line)
            if dep.marker is None or dep.marker.evaluate({"extra": ""}):
                todo.append(dep.name)
    assert set(pins) == needed
    tested = requirement_pins(REPO / "constraints.txt")
    for name, version in pins.items():
        assert tested.get(name) == version, f"lambda-sdk.txt pins {name}=={version}"
    assert Version(pins["botocore"]) >= CONDITIONAL_WRITES_SINCE


def test_the_layer_stand_in_carries_no_sdk():
    layers = set(requirement_pins(LAYER_PINS))
    assert {"pandas", "numpy", "pyarrow", "aws-lambda-powertools"} <= layers
    assert not layers & set(requirement_pins(SDK_PINS)), "the SDK must come from the zip"


# -- the code on Python 3.13 ------------------------------------------------------------------


def test_the_library_and_the_handler_compile_on_the_lambdas_python(tmp_path):
    python = python313()
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(tmp_path))  # no caches in the tree
    done = subprocess.run(
        [python, "-W", "error", "-m", "compileall", "-q", str(SRC), str(LAMBDA_HANDLER.parent)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- the packaged zip on Python 3.13 beside its layers ----------------------------------------

PROBE = """
import importlib, json, sys
task = sys.argv[1]
sys.path.insert(0, task)  # Lambda's order: the zip (/var/task), then the layers (/opt/python)
import handler
zipped = {}
for name in ("marketlake", "boto3", "botocore", "s3transfer", "jmespath", "urllib3", "requests"):
    zipped[name] = importlib.import_module(name).__file__.startswith(task)
layered = {}
for name in ("pandas", "numpy", "pyarrow", "aws_lambda_powertools"):
    layered[name] = not importlib.import_module(name).__file__.startswith(task)
import boto3, botocore
from marketlake.storage import require_conditional_writes
try:
    require_conditional_writes(boto3.client("s3", region_name="us-east-1"))
    refusal = None
except Exception as exc:
    refusal = str(exc)
print(json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "zipped": zipped,
    "layered": layered,
    "refusal": refusal,
    "botocore": botocore.__version__,
}))
"""


def stale_files(unzipped: Path) -> list[str]:
    """Files of src/marketlake and the handler that the zip holds otherwise (or not at all)."""
    stale = []
    for source in sorted(SRC.rglob("*.py")):
        packed = unzipped / "marketlake" / source.relative_to(SRC)
        if not packed.is_file() or packed.read_bytes() != source.read_bytes():
            stale.append(source.relative_to(REPO).as_posix())
    if (unzipped / "handler.py").read_bytes() != LAMBDA_HANDLER.read_bytes():
        stale.append(LAMBDA_HANDLER.relative_to(REPO).as_posix())
    return stale


@pytest.mark.skipif(
    not os.environ.get("MARKETLAKE_LAMBDA_PYTHON"),
    reason="run by make lambda-runtime-check (it builds infra/.venv-lambda313 and the zip)",
)
def test_the_packaged_lambda_imports_on_its_runtime_beside_its_layers(tmp_path):
    # Absolute, not resolved: the venv's python is a link, and resolving it leaves the venv.
    python = os.path.abspath(os.environ["MARKETLAKE_LAMBDA_PYTHON"])
    assert ZIP.is_file(), f"{ZIP.relative_to(REPO)} is missing: run make package"
    with zipfile.ZipFile(ZIP) as archive:
        archive.extractall(tmp_path / "task")
    stale = stale_files(tmp_path / "task")
    assert not stale, f"the zip is older than {stale[:3]}: run make package"

    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPYCACHEPREFIX": str(tmp_path / "pyc")}
    done = subprocess.run(
        [python, "-I", "-c", PROBE, str(tmp_path / "task")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["python"] == runtime_version()
    assert all(found["zipped"].values()), found["zipped"]
    assert all(found["layered"].values()), found["layered"]
    assert found["refusal"] is None
    assert Version(found["botocore"]) == Version(requirement_pins(SDK_PINS)["botocore"])
