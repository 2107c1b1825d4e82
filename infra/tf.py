"""Running real Terraform for make validate, make rehearse and make plan/deploy/destroy.

Provider installation: when a filesystem mirror of hashicorp/aws is on this machine, init
installs from it and never asks the registry for that provider; every other provider comes
from the registry as usual. The mirror is TF_PROVIDER_MIRROR when set (a directory holding
registry.terraform.io/hashicorp/aws/...), else the first one found under the usual roots,
else none (the registry). No machine path is written into the repository.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"
# Where a provider mirror is usually installed; searched only when TF_PROVIDER_MIRROR is unset.
SEARCH_ROOTS = (
    "/opt",
    "/usr/local/share",
    "/usr/share",
    "/srv",
    "~/.terraform.d",
    "~/.local/share",
)
PSEUDO_FILESYSTEMS = ("proc", "sys", "dev", "run")
SEARCH_DEPTH = 8  # <root>/<mirror>/registry.terraform.io/hashicorp/aws/<version>/<os_arch>/<binary>
PLUGIN_CACHE = REPO / ".terraform-plugin-cache"  # git-ignored; TF_PLUGIN_CACHE_DIR wins
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class TerraformError(Exception):
    """A Terraform command failed; the message is its first error, in one line."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def terraform_binary() -> str:
    name = os.environ.get("TF", "terraform")
    found = shutil.which(name)
    if found is None:
        raise TerraformError(
            f"{name} not found: install Terraform >= 1.5 "
            "(https://developer.hashicorp.com/terraform/install) or run make TF=/path/to/terraform"
        )
    return found


def _mirror_of(binary: Path) -> Path | None:
    """The mirror root of .../registry.terraform.io/hashicorp/aws/<version>/<os_arch>/<binary>."""
    parts = binary.parts
    if len(parts) >= 6 and "/".join(parts[-6:-3]) == AWS_PROVIDER:
        return Path(*parts[:-6])
    return None


def find_mirror(roots=SEARCH_ROOTS) -> Path | None:
    """A directory that holds a filesystem mirror of hashicorp/aws, or None."""
    given = os.environ.get("TF_PROVIDER_MIRROR", "").strip()
    if given:
        path = Path(given).expanduser()
        if not (path / AWS_PROVIDER).is_dir():
            raise TerraformError(
                f"TF_PROVIDER_MIRROR={given} holds no {AWS_PROVIDER}/: point it at the folder "
                "that contains registry.terraform.io/, or unset it to use the registry"
            )
        return path
    for root in roots:
        top = Path(root).expanduser()
        if not top.is_dir():
            continue
        base_depth = len(top.parts)
        for folder, dirs, files in os.walk(top, onerror=lambda error: None):
            depth = len(Path(folder).parts) - base_depth
            if depth >= SEARCH_DEPTH:
                dirs[:] = []
            elif folder == "/":
                dirs[:] = [d for d in dirs if d not in PSEUDO_FILESYSTEMS]
            for name in files:
                if name.startswith("terraform-provider-aws"):
                    mirror = _mirror_of(Path(folder) / name)
                    if mirror is not None:
                        return mirror
    return None


def cli_config(mirror: Path | None) -> str:
    """The text of a Terraform CLI config: the aws provider from the mirror, others direct."""
    if mirror is None:
        return "# no provider mirror on this machine: every provider comes from the registry\n"
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror.as_posix()}"\n'
        f'    include = ["{AWS_PROVIDER}"]\n'
        "  }\n"
        "  direct {\n"
        f'    exclude = ["{AWS_PROVIDER}"]\n'
        "  }\n"
        "}\n"
    )


def environment(config_dir: Path, mirror: Path | None, extra: dict | None = None) -> dict:
    """os.environ plus a CLI config file written into config_dir, a provider cache (so
    repeated inits download a provider once), no version check, no prompts."""
    config_dir.mkdir(parents=True, exist_ok=True)
    config = config_dir / "terraform.tfrc"
    config.write_text(cli_config(mirror))
    env = dict(os.environ)
    env.setdefault("TF_PLUGIN_CACHE_DIR", str(PLUGIN_CACHE))
    Path(env["TF_PLUGIN_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(config),
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
        }
    )
    env.update(extra or {})
    return env


def stop_gracefully(process: subprocess.Popen, grace: float = 60.0) -> None:
    """Ask Terraform to stop as its own Ctrl-C does (it finishes the calls in flight and
    writes its state), then wait; kill only if it does not stop within `grace` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def first_error(output: str) -> str:
    """Terraform's first 'Error: ...' in one line: the summary, where (file and line), and
    the first line of its detail; else the output's last line."""
    lines = [ANSI.sub("", line).strip(" │╷╵\t") for line in output.splitlines()]
    for i, line in enumerate(lines):
        if not line.startswith("Error:"):
            continue
        # After the summary: paragraphs split by blank lines, up to the next box or error.
        paragraphs, current = [], []
        for rest in lines[i + 1 :]:
            if rest.startswith("Error:"):
                break
            if rest:
                current.append(rest)
            elif current:
                paragraphs.append(current)
                current = []
        if current:
            paragraphs.append(current)
        where = ""
        if paragraphs and paragraphs[0][0].startswith(("on ", "with ")):
            for located in map(re.compile(r"on (\S+ line \d+)").match, paragraphs.pop(0)):
                if located:
                    where = f"({located.group(1)})"
                    break
        detail = paragraphs[0][0] if paragraphs else ""
        return " ".join(part for part in (line, where, detail) if part)
    tail = [line for line in lines if line]
    return tail[-1] if tail else "no output"


def run(
    args: list[str], cwd: Path, env: dict, log: Path | None = None, ok: tuple = (0,)
) -> tuple[int, str]:
    """terraform <args> in cwd: (exit code, output), the output also appended to log.
    TerraformError, naming the command and its first error, on an exit code not in ok.
    Terraform runs in its own process group: an interrupt of this script stops it
    gracefully (its state written, its provider plugins ended) before it goes on."""
    process = subprocess.Popen(
        [terraform_binary(), *args, "-no-color"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate()
    except BaseException:
        stop_gracefully(process)
        raise
    if log is not None:
        with log.open("a") as handle:
            handle.write(f"$ terraform {' '.join(args)}  (in {cwd})\n{output}\n")
    if process.returncode not in ok:
        raise TerraformError(f"terraform {args[0]}: {first_error(output)}", output)
    return process.returncode, output


if __name__ == "__main__":
    # `python infra/tf.py find-mirror [ROOT...]` prints the mirror found under the roots (the
    # usual ones by default), or nothing: .ci/run searches the whole disk with it.
    if sys.argv[1:2] == ["find-mirror"]:
        os.environ.pop("TF_PROVIDER_MIRROR", None)
        found = find_mirror(tuple(sys.argv[2:]) or SEARCH_ROOTS)
        print(found or "")
        sys.exit(0)
    print("usage: python infra/tf.py find-mirror [ROOT...]", file=sys.stderr)
    sys.exit(2)
