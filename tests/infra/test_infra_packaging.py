"""What Terraform uploads exists in the repo or is exactly what `make package` builds, and
the Lambda zip carries what its import closure needs that no layer or runtime provides."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from importlib import metadata

import glue_wheels
import pytest
import tf
from infra_contract import (
    LAMBDA_HANDLER,
    REPO,
    TERRAFORM,
    artifacts_module,
    grafana_stack,
    import_closure,
    normalize,
    requirement_pins,
    terraform,
)
from packaging.requirements import Requirement

# Distributions the Lambda finds without the zip (see requirements/lambda.txt).
SDK_PANDAS_LAYER = {"pandas", "numpy", "pyarrow", "python-dateutil", "pytz", "six"}
POWERTOOLS_LAYER = {"aws-lambda-powertools", "typing-extensions"}
LAMBDA_RUNTIME = {"boto3", "botocore", "jmespath", "s3transfer", "urllib3", "six"}


def package_module():
    spec = importlib.util.spec_from_file_location("infra_package", REPO / "infra" / "package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def module_output(name: str) -> str:
    return artifacts_module().outputs[name]["value"]


def resolve(template: str) -> str:
    """Evaluate the artifacts module's path templates for this checkout."""
    version = package_module().package_version()
    value = template.replace("${local.dist_dir}", "${var.repo_root}/dist/aws")
    value = value.replace("${local.wheel_name}", f"marketlake-{version}-py3-none-any.whl")
    assert "${" in value and value.startswith("${var.repo_root}/"), template
    return value.replace("${var.repo_root}/", "")


def test_terraform_deploys_exactly_what_make_package_builds():
    built = {k: p.relative_to(REPO).as_posix() for k, p in package_module().artifacts().items()}
    assert resolve(module_output("lambda_zip_path")) == built["lambda_zip"]
    assert resolve(module_output("wheel_path")) == built["wheel"]
    assert artifacts_module().locals["wheel_name"] == (
        "marketlake-${local.package_version}-py3-none-any.whl"
    )
    assert artifacts_module().locals["glue_wheels_dir"] == "${local.dist_dir}/glue-wheels"
    assert resolve("${local.dist_dir}/glue-wheels") == built["glue_wheels_dir"]


def test_the_makefile_package_target_runs_the_packager():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"(?m)^package:.*\n((?:\t.*\n)+)", makefile)
    assert recipe, "the Makefile has no package target"
    assert "infra/package.py" in recipe.group(1)
    for target in ("plan", "deploy", "destroy"):
        line = re.search(rf"(?m)^{target}:(.*)$", makefile)
        assert line and "package" in line.group(1), f"make {target} must build the packages first"


def test_every_file_terraform_reads_from_the_repo_exists():
    paths = [
        resolve(module_output("glue_script_path")),
        "pyproject.toml",  # the package version
        "requirements/glue-job.lock.txt",  # the Glue job's wheels, one per pin
    ]
    for path in paths:
        assert (REPO / path).is_file(), f"terraform reads {path}, which is missing"
    module_text = (TERRAFORM / "modules" / "artifacts" / "main.tf").read_text(encoding="utf-8")
    for path in paths[1:]:
        assert f"${{var.repo_root}}/{path}" in module_text


def test_uploads_and_the_lambda_use_those_paths():
    tf = terraform()
    function = tf.resource("aws_lambda_function", "ingest")
    assert function["filename"] == "${local.lambda_zip_path}"
    assert function["source_code_hash"] == "${filebase64sha256(local.lambda_zip_path)}"
    objects = tf.of_type("aws_s3_object")
    sources = {name: body["source"] for name, body in objects.items() if "source" in body}
    # The one object written from its content, not a file: the deployment descriptor.
    assert set(objects) - set(sources) == {"deployment"}
    assert sources == {
        "glue_script": "${local.glue_script_path}",
        "marketlake_wheel": "${local.wheel_path}",
        "glue_wheel": "${module.artifacts.glue_wheels_dir}/${each.key}",
    }
    wheels = tf.resource("aws_s3_object", "glue_wheel")
    assert wheels["for_each"] == "${toset(module.artifacts.glue_wheel_files)}"
    for name in ("lambda_zip_path", "wheel_path", "glue_script_path"):
        assert tf.locals[name] == f"${{module.artifacts.{name}}}"
    assert tf.modules["artifacts"]["source"] == "./modules/artifacts"


# -- the Glue job's wheels, as real Terraform evaluates modules/artifacts ----------------------


def evaluate_artifacts(tmp_path, repo_root) -> dict:
    """terraform apply of the provider-less module for repo_root (offline): its outputs."""
    work = tmp_path / "artifacts"
    shutil.copytree(TERRAFORM / "modules" / "artifacts", work)
    env = tf.environment(tmp_path / "cli", None)
    tf.run(["init", "-backend=false", "-input=false"], work, env)
    tf.run(["apply", "-auto-approve", "-input=false", f"-var=repo_root={repo_root}"], work, env)
    _, output = tf.run(["output", "-json"], work, env)
    return {name: body["value"] for name, body in json.loads(output).items()}


@pytest.mark.skipif(shutil.which("terraform") is None, reason="needs Terraform on PATH")
def test_terraform_takes_one_wheel_per_lock_pin_as_make_package_matches_them(tmp_path):
    """The module and infra/glue_wheels.py agree on which file is each pin's wheel, keep the
    lock's order (the job's install order), and name what is missing and what is stray."""
    root = tmp_path / "repo"
    (root / "requirements").mkdir(parents=True)
    shutil.copyfile(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copyfile(REPO / "requirements" / "glue-job.txt", root / "requirements" / "glue-job.txt")
    lock = root / "requirements" / "glue-job.lock.txt"
    lock.write_text(
        "# comments and blank lines are not pins\n\n"
        "alpha==1.0 --hash=sha256:11\n"  # not sorted: Terraform sorts Zope_ before alpha
        "Zope.Interface-Extra==2.0.post0 --hash=sha256:00\n"
        "gamma==3.0 --hash=sha256:22\n"
    )
    folder = root / "dist" / "aws" / "glue-wheels"
    folder.mkdir(parents=True)
    for name in (
        "alpha-1.0-py3-none-any.whl",
        "alpha-1.0.1-py3-none-any.whl",  # another version: not alpha==1.0's wheel
        "Zope_Interface_Extra-2.0.post0-cp39-cp39-manylinux2014_x86_64.whl",
        "notes.txt",
    ):
        (folder / name).write_bytes(b"")
    out = evaluate_artifacts(tmp_path, root)
    found = glue_wheels.match_wheels(glue_wheels.read_pins(lock), folder)
    assert out["glue_wheels_dir"] == str(folder)
    assert out["glue_wheel_files"] == [w.name for w in found.wheels]
    assert [w.name for w in found.wheels] == [
        "alpha-1.0-py3-none-any.whl",
        "Zope_Interface_Extra-2.0.post0-cp39-cp39-manylinux2014_x86_64.whl",
    ]
    assert out["glue_wheels_missing"] == found.missing == ["gamma==3.0"]
    assert out["glue_wheel_strays"] == found.strays == ["alpha-1.0.1-py3-none-any.whl"]


@pytest.mark.skipif(shutil.which("terraform") is None, reason="needs Terraform on PATH")
def test_terraform_uploads_the_wheels_make_package_downloaded(tmp_path):
    folder = package_module().artifacts()["glue_wheels_dir"]
    if not folder.is_dir():
        pytest.skip("needs dist/aws/glue-wheels/ from make package (its wheels come from PyPI)")
    out = evaluate_artifacts(tmp_path, REPO)
    found = glue_wheels.match_wheels(glue_wheels.read_pins(glue_wheels.LOCK), folder)
    assert out["glue_wheels_missing"] == out["glue_wheel_strays"] == [], "run make package"
    assert out["glue_wheel_files"] == [w.name for w in found.wheels]
    assert len(found.wheels) == len(glue_wheels.read_pins(glue_wheels.LOCK))


def test_the_zip_carries_every_dependency_no_layer_provides():
    closure = import_closure(LAMBDA_HANDLER)["third_party"]
    imported = {normalize(d) for dists in closure.values() for d in dists}
    assert "exchange-calendars" in imported, "the closure probe found no dependency"
    provided = SDK_PANDAS_LAYER | POWERTOOLS_LAYER | LAMBDA_RUNTIME
    # What the zip must hold: the imported distributions no layer provides, and what those
    # declare they need (tzdata for exchange_calendars, say), transitively.
    needed, todo = set(), sorted(imported - provided)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        for line in metadata.requires(name) or []:
            dep = Requirement(line)
            applies = dep.marker is None or dep.marker.evaluate({"extra": ""})
            if applies and normalize(dep.name) not in provided:
                todo.append(normalize(dep.name))
    zipped = set(requirement_pins(REPO / "requirements" / "lambda.txt"))
    missing = needed - zipped
    assert not missing, f"the Lambda imports {sorted(missing)}: add them to requirements/lambda.txt"
    unused = zipped - needed
    assert not unused, (
        f"requirements/lambda.txt zips {sorted(unused)}, which the Lambda never imports"
    )


def test_the_zip_pins_are_the_tested_versions():
    tested = requirement_pins(REPO / "constraints.txt")
    for name, version in requirement_pins(REPO / "requirements" / "lambda.txt").items():
        assert tested.get(name) == version, (
            f"lambda.txt pins {name}=={version}, tests use {tested.get(name)}"
        )


def test_the_dashboards_come_from_the_repo_and_an_empty_folder_is_fine():
    value = module_output("dashboard_files")
    assert 'fileset(local.dashboards_dir, "*.json")' in value
    assert artifacts_module().locals["dashboards_dir"] == "${var.repo_root}/grafana/dashboards"
    stack = grafana_stack()
    assert stack.modules["artifacts"]["repo_root"] == "${path.module}/../.."
    dashboards = stack.resource("grafana_dashboard", "this")
    assert dashboards["for_each"] == "${toset(module.artifacts.dashboard_files)}"
    # The files, read from there by modules/dashboards (which sets their symbol default).
    assert dashboards["config_json"] == "${module.dashboards.config_json[each.value]}"
    assert stack.modules["dashboards"]["dashboards_dir"] == "${module.artifacts.dashboards_dir}"
    module_text = (TERRAFORM / "modules" / "dashboards" / "main.tf").read_text(encoding="utf-8")
    assert 'file("${var.dashboards_dir}/${file}")' in module_text
