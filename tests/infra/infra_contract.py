"""Helpers of the infrastructure contract tests: terraform/ parsed with python-hcl2, and the
code the infrastructure must match, read with `ast` (never by hand-kept lists)."""

from __future__ import annotations

import ast
import functools
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
LAMBDA_HANDLER = REPO / "lambdas" / "ingest" / "handler.py"
GLUE_SCRIPT = REPO / "glue" / "wap_job.py"
SRC = REPO / "src" / "marketlake"


# -- HCL ----------------------------------------------------------------------------------------


def _clean(value):
    """python-hcl2 keeps string quotes and block markers; drop both."""
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


@dataclass
class Terraform:
    resources: dict = field(default_factory=dict)  # (type, name) -> body
    data: dict = field(default_factory=dict)  # (type, name) -> body
    locals: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)

    def resource(self, kind: str, name: str) -> dict:
        assert (kind, name) in self.resources, f"terraform/ has no resource {kind}.{name}"
        return self.resources[(kind, name)]

    def of_type(self, kind: str) -> dict:
        return {name: body for (k, name), body in self.resources.items() if k == kind}

    def policy_document(self, name: str) -> list[dict]:
        assert ("aws_iam_policy_document", name) in self.data, f"no policy document {name}"
        return self.data[("aws_iam_policy_document", name)].get("statement", [])


def parse_dir(directory: Path) -> Terraform:
    tf = Terraform()
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as fh:
            doc = _clean(hcl2.load(fh))
        for block in doc.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    tf.resources[(kind, name)] = body
        for block in doc.get("data", []):
            for kind, named in block.items():
                for name, body in named.items():
                    tf.data[(kind, name)] = body
        for block in doc.get("locals", []):
            tf.locals.update(block)
        for block in doc.get("variable", []):
            tf.variables.update(block)
        for block in doc.get("output", []):
            tf.outputs.update(block)
        for block in doc.get("module", []):
            tf.modules.update(block)
    return tf


@functools.cache
def terraform() -> Terraform:
    return parse_dir(TERRAFORM)


@functools.cache
def grafana_stack() -> Terraform:
    return parse_dir(TERRAFORM / "grafana")


@functools.cache
def artifacts_module() -> Terraform:
    return parse_dir(TERRAFORM / "modules" / "artifacts")


def interp(value: str) -> str:
    """'${aws_x.y.arn}' -> 'aws_x.y.arn'; other strings unchanged."""
    match = re.fullmatch(r"\$\{(.*)\}", value.strip())
    return match.group(1).strip() if match else value


def allow_statements(document: str) -> list[dict]:
    return [s for s in terraform().policy_document(document) if s.get("effect", "Allow") == "Allow"]


def granted_actions(document: str) -> set[str]:
    return {a for s in allow_statements(document) for a in s.get("actions", [])}


def resources_for(document: str, action: str) -> list[str]:
    return [r for s in allow_statements(document) if action in s["actions"] for r in s["resources"]]


# -- code ---------------------------------------------------------------------------------------


def parse_py(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def module_constant(path: Path, name: str):
    """The literal value assigned to a module-level name (a list, dict, str, number)."""
    for node in parse_py(path).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path.relative_to(REPO)} assigns no {name}")


_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
_ENV_NAMES = ("env", "environ", "environment")


def env_reads(node: ast.AST) -> set[str]:
    """Environment variables read under `node`: env.get("X"), env["X"], environ.get("X"),
    os.getenv("X"), helpers given the mapping first: _int(env, "X", ...), and settings
    declared with their variable: setting(..., env="X")."""
    found = set()
    for sub in ast.walk(node):
        name = None
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "getenv") and sub.args:
                name = sub.args[0]
            elif (
                len(sub.args) > 1
                and isinstance(sub.args[0], ast.Name)
                and sub.args[0].id in _ENV_NAMES
            ):
                name = sub.args[1]  # a helper handed the mapping: _int(env, "X", ...)
        elif (
            isinstance(sub, ast.Subscript)
            and isinstance(sub.value, ast.Name)
            and sub.value.id in _ENV_NAMES
        ):
            name = sub.slice
        if isinstance(sub, ast.Call):
            # A setting declared with its variable: setting(42, env="MARKETLAKE_SEED", ...).
            names = [k.value for k in sub.keywords if k.arg == "env"]
            name = names[0] if names else name
        if (
            isinstance(name, ast.Constant)
            and isinstance(name.value, str)
            and _ENV_NAME.match(name.value)
        ):
            found.add(name.value)
    return found


def function_node(path: Path, qualname: str) -> ast.AST:
    """A function (or Class.method) of a module."""
    scope: list = parse_py(path).body
    node = None
    for part in qualname.split("."):
        node = next(
            (n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part),
            None,
        )
        assert node is not None, f"{path.relative_to(REPO)} has no {qualname}"
        scope = node.body
    return node


_CLOSURE_PROBE = r"""
import importlib.util, json, sys
from importlib.metadata import packages_distributions
path, name = sys.argv[1], sys.argv[2]
sys.path.insert(0, str(__import__("pathlib").Path(path).parent))
before = set(sys.modules)
spec = importlib.util.spec_from_file_location(name, path)
module = importlib.util.module_from_spec(spec)
sys.modules[name] = module
spec.loader.exec_module(module)
stdlib = set(sys.stdlib_module_names)
tops = sorted({m.split(".")[0] for m in set(sys.modules) - before} - stdlib - {name, "marketlake"})
ours = sorted(
    m.__file__ for k, m in sys.modules.items()
    if (k == "marketlake" or k.startswith("marketlake.")) and getattr(m, "__file__", None)
)
dists = packages_distributions()
print(json.dumps({
    "files": ours,
    "third_party": {t: dists.get(t, []) for t in tops if not t.startswith("_")},
}))
"""


@functools.cache
def import_closure(entry: Path) -> dict:
    """What importing an entry script loads, in a fresh interpreter: the marketlake module
    files, and the third-party top-level packages (with their distributions)."""
    result = subprocess.run(
        [sys.executable, "-c", _CLOSURE_PROBE, str(entry), f"_entry_{entry.stem}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, f"importing {entry} failed:\n{result.stderr}"
    body = json.loads(result.stdout.strip().splitlines()[-1])
    body["files"] = sorted(lazy_imports({Path(f) for f in body["files"]} | {entry}))
    return body


def lazy_imports(files: set[Path]) -> set[Path]:
    """Add the marketlake modules imported inside functions (run time, not import time)."""
    todo, seen = list(files), set(files)
    while todo:
        for node in ast.walk(parse_py(todo.pop())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name != "marketlake" and not name.startswith("marketlake."):
                    continue
                parts = name.split(".")[1:]
                base = SRC.joinpath(*parts)
                for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                    if candidate.is_file() and candidate not in seen:
                        seen.add(candidate)
                        todo.append(candidate)
    return seen


def requirement_pins(path: Path) -> dict[str, str]:
    """name (normalized) -> pinned version, from a requirements/constraints file."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{path.name}: {line!r} is not pinned with =="
        pins[normalize(name)] = version.strip()
    return pins


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
