"""`make validate`: terraform init + validate of both root modules against the real providers.

The AWS stack (terraform/) must validate. The Grafana stack (terraform/grafana/) is validated
where its provider can be installed; where it can't (no registry, no mirror of it), that is
said once and is not a failure. Both run in a scratch copy, so no .terraform/ or lock file
lands in the repository (see docs/deploying.md, "Lock the providers for your platforms").
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import tf

STACKS = (("AWS stack", "."), ("Grafana stack", "grafana"))
INSTALL_FAILURES = (
    "Failed to query available provider packages",
    "Failed to install provider",
    "could not connect to registry",
)


def validate(copy: Path, label: str, env: dict, log: Path, required: bool) -> str:
    started = time.monotonic()
    try:
        tf.run(["init", "-backend=false", "-input=false"], copy, env, log)
    except tf.TerraformError as exc:
        if required or not any(marker in exc.output for marker in INSTALL_FAILURES):
            raise
        return f"{label}: not validated: its provider can't be installed here ({exc})"
    _, out = tf.run(["validate"], copy, env, log)
    return f"{label}: {out.strip().splitlines()[-1]} ({time.monotonic() - started:.0f} s)"


def main() -> int:
    try:
        mirror = tf.find_mirror()
        tf.terraform_binary()
    except tf.TerraformError as exc:
        print(f"validate: FAILED: {exc}", file=sys.stderr)
        return 1
    source = (
        "aws provider from the mirror " + str(mirror) if mirror else "providers from the registry"
    )
    print(f"validate: terraform init + validate ({source})")
    with tempfile.TemporaryDirectory(prefix="marketlake-validate-") as scratch:
        root = Path(scratch) / "terraform"
        shutil.copytree(
            tf.REPO / "terraform",
            root,
            ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"),
        )
        env = tf.environment(Path(scratch), mirror)
        log = Path(scratch) / "terraform.log"
        for label, folder in STACKS:
            try:
                print("validate: " + validate(root / folder, label, env, log, folder == "."))
            except tf.TerraformError as exc:
                print(f"validate: FAILED: {label} (terraform/{folder}): {exc}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
