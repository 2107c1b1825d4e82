"""Fixtures shared by the unit tests. Every lake lives under pytest's tmp_path."""

from __future__ import annotations

import pytest

from marketlake.config import Settings
from marketlake.storage import LocalStore


@pytest.fixture
def lake_store(tmp_path) -> LocalStore:
    """An empty local lake in a temporary directory."""
    return LocalStore(tmp_path / "lake")


@pytest.fixture
def lake_settings(lake_store):
    """Settings for `lake_store` from an empty environment; keyword overrides as the CLI's."""

    def make(**overrides) -> Settings:
        return Settings.from_env({}, home=lake_store.root, **overrides)

    return make
