"""Fixtures shared by the tests. Every lake lives under pytest's tmp_path."""

from __future__ import annotations

import os

import pytest
from moto import mock_aws

from marketlake.config import Settings
from marketlake.storage import LocalStore


@pytest.fixture(autouse=True, scope="session")
def digest_cache(tmp_path_factory):
    """Readers keep the digests they hashed in the user's cache folder: the tests' readers
    (and the CLI they start, which inherits the environment) keep theirs under tmp."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


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


@pytest.fixture
def moto_aws(monkeypatch):
    """moto in-process, with test credentials and no endpoint a user's shell may point
    boto3 at: every boto3 client made inside talks to the emulator."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield
