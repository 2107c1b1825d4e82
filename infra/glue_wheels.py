"""The Glue job's third-party wheels, so that a job run never reaches PyPI.

AWS Glue Python shell takes wheels from S3 only through --extra-py-files; there its
--additional-python-modules installs from PyPI "and cannot provide custom Python modules
hosted on Amazon S3" ("Configuring job properties for Python shell jobs in AWS Glue",
"Providing your own Python library": https://docs.aws.amazon.com/glue/latest/dg/add-job-python.html).
So `make package` downloads every wheel the job needs into dist/aws/glue-wheels/, and
Terraform uploads them beside the marketlake wheel and lists them in --extra-py-files.

  requirements/glue-job.txt       what the job needs (marketlake's runtime dependencies)
  requirements/glue-job.lock.txt  that and everything it needs, each pinned with its wheel's
                                  sha256, in install order (dependencies first); regenerate:
                                  .venv/bin/python infra/glue_wheels.py lock
                                  (under a Python 3.9: see python39, or pass --python)

The docs do not say whether Glue installs those wheels in one pip call or one by one; in
dependency order, with every dependency among them, pip finds each requirement installed or
given, so it asks no index either way. The checks here prove that for the files themselves:
their metadata, read under Glue's environment markers, and pip resolving them with no index.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements" / "glue-job.txt"
LOCK = REPO / "requirements" / "glue-job.lock.txt"
WHEELS_DIR = REPO / "dist" / "aws" / "glue-wheels"
# Glue Python shell 3.9 as a pip target. manylinux2014 (glibc 2.17) is the oldest tag the
# pins still ship; pip also accepts the older manylinux tags under it.
TARGET = [
    "--platform", "manylinux2014_x86_64", "--python-version", "3.9",
    "--implementation", "cp", "--abi", "cp39",
]  # fmt: skip
# Environment markers as CPython 3.9 on x86_64 Linux evaluates them: pip evaluates markers
# with the interpreter it runs on, whatever --python-version says.
MARKERS = {
    "implementation_name": "cpython",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.9.0",
    "python_version": "3.9",
    "sys_platform": "linux",
}
LOCK_HEADER = """\
# The Glue job's wheels: requirements/glue-job.txt and everything it needs, for AWS Glue
# Python shell (CPython 3.9, manylinux2014 x86_64), each with its wheel's sha256, in install
# order: every line's dependencies are on lines above it. `make package` downloads exactly
# these files into dist/aws/glue-wheels/; Terraform uploads them and names them, in this
# order, in the job's --extra-py-files. Generated: do not edit. Change glue-job.txt, then
#   .venv/bin/python infra/glue_wheels.py lock    (needs a Python 3.9; --python to name one)
"""
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def read_pins(path: Path) -> list[Pin]:
    """The name==version lines of a requirements file, in file order."""
    pins = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.strip())
        if match:
            hashes = tuple(re.findall(r"--hash=(\S+)", line))
            pins.append(Pin(match.group(1), match.group(2), hashes))
    return pins


def lock_errors(requirements: Path = REQUIREMENTS, lock: Path = LOCK) -> list[str]:
    """Every pin of glue-job.txt is in the lock, at its version, and every lock pin hashed."""
    locked = {_canonical(p.name): p for p in read_pins(lock)}
    errors = [
        f"{p} is not in {lock.name}"
        for p in read_pins(requirements)
        if getattr(locked.get(_canonical(p.name)), "version", None) != p.version
    ]
    errors += [f"{p} has no --hash in {lock.name}" for p in locked.values() if not p.hashes]
    if errors:
        errors.append("regenerate it (infra/glue_wheels.py lock)")
    return errors


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def wheel_prefix(pin: Pin) -> str:
    """What the pin's wheel file name starts with (PEP 427 writes any run of -_. as _);
    terraform/modules/artifacts matches files the same way."""
    return f"{re.sub(r'[-_.]+', '_', pin.name).lower()}-{pin.version.lower()}-"


@dataclass
class Match:
    """A folder's wheels against the lock, as terraform/modules/artifacts matches them."""

    wheels: list[Path]  # one per pin, in lock order
    missing: list[str]  # pins with no wheel, or more than one
    strays: list[str]  # wheels no pin names

    def errors(self) -> list[str]:
        return [f"{pin} has no single wheel" for pin in self.missing] + [
            f"{name} is not in the lock" for name in self.strays
        ]


def match_wheels(pins: list[Pin], folder: Path) -> Match:
    files = sorted(p.name for p in folder.glob("*.whl")) if folder.is_dir() else []
    wheels, missing = [], []
    for pin in pins:
        hits = [f for f in files if f.lower().startswith(wheel_prefix(pin))]
        if len(hits) == 1:
            wheels.append(folder / hits[0])
        else:
            missing.append(str(pin))
    used = {w.name for w in wheels}
    return Match(wheels, missing, [f for f in files if f not in used])


def pip(python: str, *args: str, isolated: bool = False) -> subprocess.CompletedProcess:
    # --isolated: no pip.conf or PIP_* (their find-links would add wheels to an offline check).
    command = [python, "-m", "pip", "--disable-pip-version-check", *args]
    if isolated:
        command.insert(3, "--isolated")
    return subprocess.run(command, capture_output=True, text=True)


def download(folder: Path, lock: Path = LOCK) -> list[Path]:
    """Exactly the lock's wheels (--require-hashes), for Glue's Python, into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    args = ["download", "--quiet", "--no-deps", "--require-hashes", "--only-binary=:all:"]
    result = pip(sys.executable, *args, *TARGET, "--dest", str(folder), "-r", str(lock))
    if result.returncode != 0:
        raise SystemExit(f"error: pip download of {lock.name} failed:\n{result.stderr}")
    found = match_wheels(read_pins(lock), folder)
    if found.errors():
        raise SystemExit(f"error: {folder}: " + "; ".join(found.errors()))
    return found.wheels


# -- what the files say about themselves ------------------------------------------------------


def _target_tags() -> set:
    from packaging import tags

    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(17, 4, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    return set(tags.cpython_tags((3, 9), abis=["cp39"], platforms=platforms)) | set(
        tags.compatible_tags((3, 9), "cp39", platforms=platforms)
    )


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        if len(names) != 1:
            raise ValueError(f"{wheel.name} has {len(names)} METADATA files")
        return email.message_from_bytes(archive.read(names[0]))


def closure_errors(wheels: list[Path]) -> list[str]:
    """Why the wheels, installed in this order on Glue Python shell 3.9, would need anything
    from an index: a wheel for another platform or Python, or a requirement (read under
    Glue's markers, extras included) that no earlier wheel satisfies."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name, parse_wheel_filename

    supported, errors, dists = _target_tags(), [], []
    for wheel in wheels:
        name, version, _, wheel_tags = parse_wheel_filename(wheel.name)
        meta = _metadata(wheel)
        if not wheel_tags & supported:
            errors.append(f"{wheel.name} is not for CPython 3.9 on manylinux2014 x86_64")
        python = meta.get("Requires-Python")
        if python and not SpecifierSet(python).contains("3.9.0"):
            errors.append(f"{wheel.name} requires Python {python}")
        requires = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
        dists.append((name, version, requires, wheel.name))
    position = {name: i for i, (name, *_) in enumerate(dists)}
    if len(position) != len(dists):
        errors.append("two wheels of one project")
    # The extras asked of each project, to a fixpoint (an extra may ask for others).
    extras = {name: {""} for name in position}
    changed = True
    while changed:
        changed = False
        for name, _, requires, _ in dists:
            for extra in list(extras[name]):
                for req in requires:
                    wanted = extras.get(canonicalize_name(req.name))
                    applies = not req.marker or req.marker.evaluate({**MARKERS, "extra": extra})
                    if applies and wanted is not None and not req.extras <= wanted:
                        wanted |= req.extras
                        changed = True
    for i, (name, _, requires, file) in enumerate(dists):
        for req in requires:
            if not any(
                not req.marker or req.marker.evaluate({**MARKERS, "extra": extra})
                for extra in extras[name]
            ):
                continue
            dep = canonicalize_name(req.name)
            if dep not in position:
                errors.append(f"{file} needs {req}, which no wheel provides")
            elif not req.specifier.contains(dists[position[dep]][1], prereleases=True):
                errors.append(f"{file} needs {req}, not {dep}=={dists[position[dep]][1]}")
            elif position[dep] > i:
                errors.append(f"{file} needs {dep}, which comes after it")
    return errors


def python39() -> str | None:
    """A CPython 3.9 for pip to run under (it reads markers as its own interpreter does):
    MARKETLAKE_PYTHON39, python3.9 on PATH, or pyenv's; None when none of them runs."""
    pyenv = sorted(Path("~/.pyenv/versions").expanduser().glob("3.9.*/bin/python"))
    for candidate in (os.environ.get("MARKETLAKE_PYTHON39"), shutil.which("python3.9"), *pyenv):
        if candidate:
            probe = [candidate, "-c", "import sys, pip; print(sys.version_info[:2] == (3, 9))"]
            said = subprocess.run(probe, capture_output=True, text=True)
            if said.stdout.strip() == "True":
                return str(candidate)
    return None


def offline_install_errors(wheels: list[Path], python: str) -> str | None:
    """pip, under `python` (a 3.9: see python39), resolves the wheels for Glue's platform
    with no index at all and installs nothing else; None when it does, else what pip said."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        result = pip(
            python, "install", "--quiet", "--dry-run", "--no-index", "--ignore-installed",
            "--only-binary=:all:", *TARGET, "--target", str(Path(tmp) / "target"),
            "--report", str(report), *map(str, wheels), isolated=True,
        )  # fmt: skip
        if result.returncode != 0:
            return result.stderr.strip() or result.stdout.strip()
        installed = {item["download_info"]["url"].rsplit("/", 1)[-1] for item in _items(report)}
    extra = installed - {w.name for w in wheels}
    return f"pip would also install {sorted(extra)}" if extra else None


def _items(report: Path) -> list[dict]:
    return json.loads(report.read_text(encoding="utf-8"))["install"]


# -- regenerating the lock --------------------------------------------------------------------


def install_order(nodes: dict[str, set[str]]) -> list[str]:
    """Dependencies first; among the ready ones, by name, so the order is reproducible."""
    order, done = [], set()
    while len(order) < len(nodes):
        ready = sorted(n for n in nodes if n not in done and nodes[n] <= done)
        if not ready:
            raise SystemExit(f"error: dependency cycle among {sorted(set(nodes) - done)}")
        order.append(ready[0])
        done.add(ready[0])
    return order


def lock(python39: str, requirements: Path = REQUIREMENTS, target: Path = LOCK) -> list[Pin]:
    """Resolve requirements from the index under a Python 3.9 interpreter (so markers read as
    Glue's do) for Glue's platform, and write every pin with its wheel's hash, in order."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        result = pip(
            python39, "install", "--quiet", "--dry-run", "--ignore-installed",
            "--only-binary=:all:", *TARGET, "--target", str(Path(tmp) / "target"),
            "--report", str(report), "-r", str(requirements),
        )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"error: resolving {requirements.name} failed:\n{result.stderr}")
        items = _items(report)
    pins, needs = {}, {}
    for item in items:
        meta, name = item["metadata"], canonicalize_name(item["metadata"]["name"])
        sha = item["download_info"]["archive_info"]["hashes"]["sha256"]
        pins[name] = Pin(name, meta["version"], (f"sha256:{sha}",))
        needs[name] = set()
        for line in meta.get("requires_dist") or []:
            req = Requirement(line)
            if not req.marker or req.marker.evaluate({**MARKERS, "extra": ""}):
                needs[name].add(canonicalize_name(req.name))
    for name, deps in needs.items():
        if deps - set(pins):
            raise SystemExit(f"error: {name} needs {sorted(deps - set(pins))}, not resolved")
    ordered = [pins[name] for name in install_order(needs)]
    lines = [f"{pin} --hash={pin.hashes[0]}" for pin in ordered]
    target.write_text(LOCK_HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return ordered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate requirements/glue-job.lock.txt.")
    parser.add_argument("command", choices=["lock"])
    parser.add_argument(
        "--python",
        help="a CPython 3.9 with pip (default: MARKETLAKE_PYTHON39, python3.9 on PATH, pyenv's)",
    )
    args = parser.parse_args(argv)
    args.python = args.python or python39()
    if not args.python:
        raise SystemExit("error: no Python 3.9 found: pass --python /path/to/python3.9")
    pins = lock(args.python)
    print(f"{LOCK.relative_to(REPO)}: {len(pins)} pins; now run make package")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_NO_INPUT", "1")
    sys.exit(main())
