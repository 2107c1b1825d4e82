"""Build what Terraform deploys (run by `make package`), reproducibly:

  dist/aws/marketlake-<version>-py3-none-any.whl  the library, for the Glue job (--extra-py-files)
  dist/aws/glue-wheels/*.whl                      every wheel the Glue job needs besides it, as
                                                  requirements/glue-job.lock.txt pins them
                                                  (infra/glue_wheels.py), so no run needs PyPI
  dist/aws/ingest_lambda.zip                      lambdas/ingest/handler.py + marketlake + the
                                                  pinned deps of requirements/lambda.txt and
                                                  the AWS SDK of requirements/lambda-sdk.txt

The Lambda's dependencies are wheels for its runtime (CPython 3.13, manylinux x86_64), not for
this machine. pandas, numpy and pyarrow come from the AWS SDK for pandas layer and
aws_lambda_powertools from its layer (see requirements/lambda.txt), so they are not zipped.
boto3/botocore are: AWS documents no SDK version for the runtime, and the lake's state needs
S3 conditional writes (botocore >= 1.35.69); see requirements/lambda-sdk.txt.
The zip is byte-for-byte reproducible: sorted entries, fixed timestamps and modes, no caches.
It checks that handler.py imports from the staged package, and that the Glue wheels are the
whole closure of marketlake's wheel for Python 3.9 (Glue Python shell) and install offline.

Needs pip and PyPI (or a pip index mirror); run with the project's venv Python.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by file path
import glue_wheels

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    tomllib = None

REPO = Path(__file__).resolve().parents[1]
DIST = REPO / "dist" / "aws"
HANDLER = REPO / "lambdas" / "ingest" / "handler.py"
LAMBDA_REQUIREMENTS = REPO / "requirements" / "lambda.txt"
LAMBDA_SDK_REQUIREMENTS = REPO / "requirements" / "lambda-sdk.txt"
LAMBDA_ZIP_NAME = "ingest_lambda.zip"
ZIP_HANDLER = "handler.py"  # at the zip root: the function's handler is "handler.handler"
# The Lambda runtime as a pip target platform (glue_wheels.TARGET is Glue Python shell's).
LAMBDA_PYTHON = "3.13"  # terraform/ingest.tf: runtime = "python3.13"
LAMBDA_TARGET = ["--platform", "manylinux2014_x86_64", "--python-version", LAMBDA_PYTHON]
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # Lambda's limit for a zip uploaded with the call
# The function and its layers, unzipped, must stay under 250 MB, which Lambda counts as
# 262,144,000 bytes: "this limit applies to the combined size of all the files you upload,
# including any Lambda layers" ("Working with .zip file archives for Python Lambda
# functions"). What the two layers take, for python3.13 x86_64:
#   AWS SDK for pandas 3.17.0: about 167 MiB. 3.16.0 measured 167M and 3.16.1 204M (du -h,
#     aws/aws-sdk-pandas issue #3331); 3.17.0 builds Arrow without ICU again (PR #3336).
#   Powertools v3 with its extras, boto3 and its deps removed (its layer recipe,
#     powertools-lambda-layer-cdk layer/Pythonv3/Dockerfile): 26.1 MiB rebuilt for 3.13.
LAMBDA_UNZIPPED_LIMIT = 262_144_000
LAYERS_ALLOWANCE = (170 + 28) * 1024 * 1024  # the two above, rounded up
UNZIPPED_BUDGET = LAMBDA_UNZIPPED_LIMIT - LAYERS_ALLOWANCE  # about 52 MiB for the zip


def package_version(repo: Path = REPO) -> str:
    text = (repo / "pyproject.toml").read_text(encoding="utf-8")
    if tomllib is not None:
        return tomllib.loads(text)["project"]["version"]
    for line in text.splitlines():  # pragma: no cover
        if line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    raise SystemExit("no version in pyproject.toml")


def artifacts(repo: Path = REPO) -> dict[str, Path]:
    """Every file `make package` produces (terraform/modules/artifacts points at these)."""
    dist = repo / "dist" / "aws"
    return {
        "lambda_zip": dist / LAMBDA_ZIP_NAME,
        "wheel": dist / f"marketlake-{package_version(repo)}-py3-none-any.whl",
        "glue_wheels_dir": dist / "glue-wheels",
    }


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"error: pip {' '.join(args[:2])} failed (see above)")


def build_wheel(out: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        pip("wheel", "--quiet", "--no-deps", "--wheel-dir", tmp, str(REPO))
        built = sorted(Path(tmp).glob("marketlake-*.whl"))
        if len(built) != 1:
            raise SystemExit(f"error: expected one marketlake wheel, pip built {built}")
        target = out / built[0].name
        shutil.copyfile(built[0], target)
    return target


def glue_wheels_for(wheel: Path, folder: Path) -> tuple[list[Path], str]:
    """Download the lock's wheels; they and marketlake's must need nothing else on Glue.
    Returns them and how pip's offline resolution went."""
    problems = glue_wheels.lock_errors()
    if problems:
        raise SystemExit("error: " + "; ".join(problems))
    wheels = glue_wheels.download(folder)
    problems = glue_wheels.closure_errors([*wheels, wheel])
    python39 = glue_wheels.python39()
    if python39:
        said = glue_wheels.offline_install_errors([*wheels, wheel], python39)
        problems += [said] if said else []
        pip_check = f"pip resolves them offline under {python39}"
    else:
        pip_check = "no Python 3.9 for pip's offline check (MARKETLAKE_PYTHON39); metadata checked"
    if problems:
        raise SystemExit(
            f"error: the Glue wheels do not install offline: {'; '.join(problems)}: "
            "regenerate requirements/glue-job.lock.txt (infra/glue_wheels.py lock)"
        )
    return wheels, pip_check


def stage_lambda(stage: Path, wheel: Path) -> None:
    pip(
        "install", "--quiet", "--no-deps", "--no-compile", "--only-binary=:all:",
        "--implementation", "cp", *LAMBDA_TARGET,
        "--target", str(stage), "-r", str(LAMBDA_REQUIREMENTS),
        "-r", str(LAMBDA_SDK_REQUIREMENTS),
    )  # fmt: skip
    pip("install", "--quiet", "--no-deps", "--no-compile", "--target", str(stage), str(wheel))
    shutil.copyfile(HANDLER, stage / ZIP_HANDLER)
    # What would make two builds differ, or is of no use to Lambda.
    shutil.rmtree(stage / "bin", ignore_errors=True)  # console scripts, with this machine's paths
    for path in list(stage.rglob("__pycache__")):
        shutil.rmtree(path, ignore_errors=True)
    for path in list(stage.rglob("direct_url.json")):  # holds the local path of the wheel
        path.unlink()


def check_imports(stage: Path) -> None:
    """handler.py imports from the staged tree (the layers' packages come from this venv),
    and so do boto3/botocore, which can send S3 conditional writes."""
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import handler, marketlake, botocore; "
        "import boto3; from marketlake.storage import require_conditional_writes; "
        "assert marketlake.__file__.startswith(sys.argv[1]), marketlake.__file__; "
        "assert botocore.__file__.startswith(sys.argv[1]), botocore.__file__; "
        "require_conditional_writes(boto3.client('s3', region_name='us-east-1'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(stage)], capture_output=True, text=True, cwd=stage
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit("error: the staged Lambda package does not import (see above)")


def write_zip(stage: Path, target: Path) -> tuple[int, int]:
    files = sorted(p for p in stage.rglob("*") if p.is_file())
    unzipped = 0
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            name = path.relative_to(stage).as_posix()
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100644 & 0xFFFF) << 16  # regular file, rw-r--r--
            info.create_system = 3  # Unix, so the mode above is honoured
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data, compresslevel=9)
    return target.stat().st_size, unzipped


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the artifact paths and exit")
    args = parser.parse_args(argv)
    wanted = artifacts()
    if args.list:
        for path in wanted.values():
            print(path.relative_to(REPO).as_posix())
        return 0

    shutil.rmtree(DIST, ignore_errors=True)
    DIST.mkdir(parents=True)
    wheel = build_wheel(DIST)
    if wheel != wanted["wheel"]:
        raise SystemExit(f"error: built {wheel.name}, Terraform expects {wanted['wheel'].name}")
    glue, pip_check = glue_wheels_for(wheel, wanted["glue_wheels_dir"])
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "lambda"
        stage.mkdir()
        stage_lambda(stage, wheel)
        check_imports(stage)
        for path in list(stage.rglob("__pycache__")):  # the import check compiled some
            shutil.rmtree(path, ignore_errors=True)
        zipped, unzipped = write_zip(stage, wanted["lambda_zip"])
    if zipped > DIRECT_UPLOAD_LIMIT or unzipped > UNZIPPED_BUDGET:
        raise SystemExit(
            f"error: the Lambda zip is {mib(zipped)} ({mib(unzipped)} unzipped); the limits "
            f"are {mib(DIRECT_UPLOAD_LIMIT)} and {mib(UNZIPPED_BUDGET)} (250 MB for the "
            f"function and its layers, less {mib(LAYERS_ALLOWANCE)} for the layers): drop a "
            "dependency"
        )
    print(
        f"{wanted['wheel'].relative_to(REPO)}  {mib(wheel.stat().st_size)}  sha256 {sha256(wheel)}"
    )
    print(
        f"{wanted['lambda_zip'].relative_to(REPO)}  {mib(zipped)} ({mib(unzipped)} unzipped)  "
        f"sha256 {sha256(wanted['lambda_zip'])}"
    )
    print(
        f"{wanted['glue_wheels_dir'].relative_to(REPO)}/  {len(glue)} wheels, "
        f"{mib(sum(w.stat().st_size for w in glue))}, as requirements/glue-job.lock.txt pins them; "
        f"{pip_check}"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_NO_INPUT", "1")
    sys.exit(main())
