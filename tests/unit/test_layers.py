"""Layers point one way: entry points -> ingest/wap -> engines/providers -> storage/config.
Read from the source with ast (imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "marketlake"


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name.startswith("marketlake")}


def modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules("providers"), ids=lambda p: p.relative_to(SRC).as_posix())
def test_providers_import_no_higher_layer(path):
    higher = ("marketlake.ingest", "marketlake.wap", "marketlake.aws", "marketlake.cli")
    wrong = sorted(name for name in imported(path) if name.startswith(higher))
    assert not wrong, f"{path.name} imports {wrong}"


@pytest.mark.parametrize("path", modules("ingest"), ids=lambda p: p.relative_to(SRC).as_posix())
def test_ingest_knows_no_vendor(path):
    """Ingest handles providers through providers.base; it makes them via providers/."""
    wrong = sorted(n for n in imported(path) if n.startswith("marketlake.providers.alphavantage"))
    assert not wrong, f"{path.name} imports {wrong}"


@pytest.mark.parametrize("name", ["fields.py", "redaction.py", "config.py"])
def test_the_lowest_layer_imports_only_errors(name):
    assert imported(SRC / name) <= {"marketlake.errors", "marketlake.errors.ConfigError"}
