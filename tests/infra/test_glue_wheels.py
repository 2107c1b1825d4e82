"""infra/glue_wheels.py: the lock covers requirements/glue-job.txt, and the checks that a set
of wheels installs on Glue Python shell 3.9 with no index catch each way it would not. The
wheels are tiny ones built here; the packaged ones are checked when `make package` has run."""

from __future__ import annotations

import re
import types
import zipfile
from pathlib import Path

import glue_wheels
import pytest
from infra_contract import REPO

PYTHON39 = glue_wheels.python39()
needs_python39 = pytest.mark.skipif(
    PYTHON39 is None, reason="pip reads markers as its interpreter does: needs python3.9"
)


def wheel(folder: Path, name: str, version: str, *requires: str, **options) -> Path:
    """A minimal wheel: one module, METADATA with these Requires-Dist, WHEEL, RECORD."""
    tag = options.get("tag", "py3-none-any")
    stem = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{stem}-{tag}.whl"
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if "python" in options:
        lines.append(f"Requires-Python: {options['python']}")
    lines += [f"Provides-Extra: {extra}" for extra in options.get("extras", ())]
    lines += [f"Requires-Dist: {r}" for r in requires]
    info = f"{stem}.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name.replace('-', '_')}.py", "")
        archive.writestr(f"{info}/METADATA", "\n".join(lines) + "\n")
        archive.writestr(
            f"{info}/WHEEL",
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def closed_set(tmp_path) -> list[Path]:
    """leaf <- mid; an extra of `extended` pulls `extra-dep`; `top` needs a dependency only on
    Python < 3.10 (so only Glue's markers, not this 3.11's, ask for it)."""
    return [
        wheel(tmp_path, "leaf", "1.0"),
        wheel(tmp_path, "old-pythons-only", "2.0"),
        wheel(tmp_path, "extra-dep", "1.0"),
        wheel(tmp_path, "extended", "1.0", 'extra-dep>=1; extra == "x"', extras=["x"]),
        wheel(tmp_path, "mid", "1.0", "leaf>=1"),
        wheel(
            tmp_path, "top", "1.0", "mid==1.0", "extended[x]",
            'old-pythons-only; python_version < "3.10"', 'absent; python_version >= "3.10"',
        ),
    ]  # fmt: skip


def without(wheels: list[Path], name: str) -> list[Path]:
    return [w for w in wheels if not w.name.startswith(f"{name}-")]


def test_a_closed_set_in_dependency_order_needs_nothing_else(closed_set):
    assert glue_wheels.closure_errors(closed_set) == []


def test_a_dependency_only_python_39_needs_is_required(closed_set):
    (error,) = glue_wheels.closure_errors(without(closed_set, "old_pythons_only"))
    assert error.startswith("top-1.0-py3-none-any.whl needs old-pythons-only")


def test_a_dependency_asked_through_an_extra_is_required(closed_set):
    (error,) = glue_wheels.closure_errors(without(closed_set, "extra_dep"))
    assert "extended-1.0-py3-none-any.whl needs extra-dep>=1" in error


@needs_python39
def test_pip_resolves_a_closed_set_with_no_index_and_names_what_it_lacks(closed_set):
    assert glue_wheels.offline_install_errors(closed_set, PYTHON39) is None
    for name in ("old_pythons_only", "extra_dep"):
        said = glue_wheels.offline_install_errors(without(closed_set, name), PYTHON39)
        assert said and name.replace("_", "-") in said


def test_a_dependency_after_its_dependent_or_at_another_version_is_named(closed_set, tmp_path):
    late = [closed_set[1], closed_set[0], *closed_set[2:]]  # fine: leaf has no dependencies
    assert glue_wheels.closure_errors(late) == []
    swapped = [closed_set[4], closed_set[0], *closed_set[1:4], closed_set[5]]
    assert glue_wheels.closure_errors(swapped) == [
        "mid-1.0-py3-none-any.whl needs leaf, which comes after it"
    ]
    older = tmp_path / "older"
    older.mkdir()
    stale = [wheel(older, "leaf", "0.9"), *closed_set[1:]]
    assert glue_wheels.closure_errors(stale) == [
        "mid-1.0-py3-none-any.whl needs leaf>=1, not leaf==0.9"
    ]


def test_a_wheel_for_another_python_or_platform_is_named(closed_set, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    native = wheel(other, "leaf", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64")
    newer = wheel(other, "mid", "1.0", "leaf>=1", python=">=3.10")
    errors = glue_wheels.closure_errors([native, newer, *closed_set[1:4], closed_set[5]])
    assert errors == [
        f"{native.name} is not for CPython 3.9 on manylinux2014 x86_64",
        f"{newer.name} requires Python >=3.10",
    ]


def test_the_install_order_puts_dependencies_first_and_refuses_a_cycle():
    assert glue_wheels.install_order({"b": {"a"}, "a": set(), "c": {"a", "b"}}) == ["a", "b", "c"]
    with pytest.raises(SystemExit, match="cycle"):
        glue_wheels.install_order({"a": {"b"}, "b": {"a"}})


def test_the_lock_pins_every_glue_requirement_at_its_version_with_a_hash(tmp_path):
    assert glue_wheels.lock_errors() == []
    requirements, lock = tmp_path / "glue-job.txt", tmp_path / "glue-job.lock.txt"
    requirements.write_text("# what the job needs\nExchange_Calendars==4.5.6\nnumpy==2.0.2\n")
    lock.write_text("exchange-calendars==4.5.6 --hash=sha256:aa\nnumpy==2.0.1 --hash=sha256:bb\n")
    assert (
        glue_wheels.lock_errors(requirements, lock)[0] == "numpy==2.0.2 is not in glue-job.lock.txt"
    )
    lock.write_text("exchange-calendars==4.5.6\nnumpy==2.0.2 --hash=sha256:bb\n")
    assert glue_wheels.lock_errors(requirements, lock)[0] == (
        "exchange-calendars==4.5.6 has no --hash in glue-job.lock.txt"
    )


def test_the_lock_is_in_install_order_and_complete_by_its_own_wheels():
    """The lock against the wheels `make package` downloaded (their metadata, read as Glue's
    Python reads it, and pip resolving them with marketlake's wheel and no index)."""
    folder = REPO / "dist" / "aws" / "glue-wheels"
    marketlake = sorted((REPO / "dist" / "aws").glob("marketlake-*.whl"))
    if not folder.is_dir() or not marketlake:
        pytest.skip("needs dist/aws/ from make package (its Glue wheels come from PyPI)")
    found = glue_wheels.match_wheels(glue_wheels.read_pins(glue_wheels.LOCK), folder)
    assert found.errors() == [], "dist/aws/glue-wheels/ is stale: run make package"
    wheels = [*found.wheels, marketlake[-1]]
    assert glue_wheels.closure_errors(wheels) == []
    if PYTHON39:
        assert glue_wheels.offline_install_errors(wheels, PYTHON39) is None


# -- the rehearsal's check of the deployed job (infra/weekday.py run_glue_job) -----------------


@pytest.fixture
def deploy(tmp_path, monkeypatch, closed_set):
    """A checkout whose dist/aws/ holds marketlake's wheel and the closed set, and a function
    that deploys a job on moto naming `wheels` (file names, uploaded from dist unless
    `uploads` says otherwise) and runs weekday.run_glue_job on it, the job itself left out."""
    import boto3
    import weekday
    from moto import mock_aws

    root = tmp_path / "repo"
    (root / "glue").mkdir(parents=True)
    (root / "glue" / "wap_job.py").write_text("print('the job')\n")
    folder = root / "dist" / "aws" / "glue-wheels"
    folder.mkdir(parents=True)
    for path in closed_set:
        path.rename(folder / path.name)
    wheel(root / "dist" / "aws", "marketlake", "0.1.0", "top")
    monkeypatch.setattr(weekday, "REPO", root)
    monkeypatch.setattr(weekday.runpy, "run_path", lambda *args, **kwargs: None)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    order = [p.name for p in closed_set] + ["marketlake-0.1.0-py3-none-any.whl"]

    def run(names=order, uploads=None, **arguments):
        with mock_aws():
            s3, glue = boto3.client("s3"), boto3.client("glue")
            s3.create_bucket(Bucket="lake")
            s3.put_object(
                Bucket="lake", Key="artifacts/glue/s/wap_job.py", Body=b"print('the job')\n"
            )
            for name in names:
                built = next(root.glob(f"dist/aws/**/{name}"), None)
                body = (uploads or {}).get(name, built.read_bytes() if built else b"")
                s3.put_object(Bucket="lake", Key=f"artifacts/glue/h/{name}", Body=body)
            defaults = {
                "--lake_bucket": "lake",
                "--extra-py-files": ",".join(f"s3://lake/artifacts/glue/h/{n}" for n in names),
            }
            glue.create_job(
                Name="wap",
                Role="arn:aws:iam::123456789012:role/glue",
                Command={
                    "Name": "pythonshell",
                    "ScriptLocation": "s3://lake/artifacts/glue/s/wap_job.py",
                },
                DefaultArguments={**defaults, **arguments},
            )

            def object_bytes(uri):
                bucket, _, key = uri.removeprefix("s3://").partition("/")
                return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

            deployed = types.SimpleNamespace(glue=glue, object_bytes=object_bytes, endpoint="")
            weekday.run_glue_job(deployed, "wap", athena=None, log=tmp_path / "log")

    run.order = order
    return run


def test_the_rehearsal_accepts_the_wheels_make_package_built_in_install_order(deploy):
    deploy()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"--additional-python-modules": "pandas==2.3.2"}, "names pandas==2.3.2, not a wheel"),
        (
            {"--extra-py-files": "s3://lake/artifacts/glue/h/top-1.0-py3-none-any.whl,numpy"},
            "names numpy",
        ),
        ({"--extra-py-files": "s3://elsewhere/leaf-1.0-py3-none-any.whl"}, "not a wheel under"),
    ],
)
def test_the_rehearsal_refuses_a_module_pip_would_fetch_from_pypi(deploy, change, said):
    with pytest.raises(AssertionError, match=said):
        deploy(**change)


def test_the_rehearsal_refuses_a_missing_changed_or_misordered_wheel(deploy):
    with pytest.raises(AssertionError, match="the job installs"):
        deploy(names=[n for n in deploy.order if not n.startswith("leaf-")])
    with pytest.raises(
        AssertionError, match=re.escape("leaf-1.0-py3-none-any.whl is not dist/aws's")
    ):
        deploy(uploads={"leaf-1.0-py3-none-any.whl": b"another build"})
    with pytest.raises(
        AssertionError,
        match=re.escape("marketlake-0.1.0-py3-none-any.whl needs top, which comes after"),
    ):
        deploy(names=[deploy.order[-1], *deploy.order[:-1]])
