"""Where bars come from: pick a provider from the settings."""

from __future__ import annotations

from marketlake.config import Settings
from marketlake.providers.base import Provider


def make_provider(settings: Settings) -> Provider:
    if settings.provider == "synthetic":
        from marketlake.providers.synthetic import SyntheticProvider

        return SyntheticProvider(seed=settings.seed)
    from marketlake.errors import ConfigError

    raise ConfigError(f"provider {settings.provider!r} is not available")
