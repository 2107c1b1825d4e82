"""Where bars come from: pick a provider from the settings. Ingest makes its provider
here, and knows the rest only through providers.base (the protocol and its errors)."""

from __future__ import annotations

from typing import Any, Callable

from marketlake.config import Settings
from marketlake.providers.base import Limiter, Provider


def make_provider(
    settings: Settings,
    limiter: Limiter | None = None,
    on_event: Callable[[str, str], None] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Provider:
    if settings.provider == "synthetic":
        from marketlake.providers.synthetic import SyntheticProvider

        return SyntheticProvider(seed=settings.seed)
    # Unset: the provider's own default (time.sleep).
    extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    if settings.provider == "polygon":
        from marketlake.providers.polygon import PolygonProvider

        # Pacing is the limiter's (ingest builds it from POLYGON_CALLS_PER_MINUTE).
        return PolygonProvider(
            settings.polygon_api_key,
            base_url=settings.polygon_base_url,
            max_retries=settings.polygon_max_retries,
            backoff_seconds=settings.polygon_backoff_seconds,
            earnings_per_run=settings.polygon_earnings_per_run,
            limiter=limiter,
            on_event=on_event,
            **extra,
        )
    from marketlake.providers.alphavantage import AlphaVantageProvider

    return AlphaVantageProvider(
        settings.api_key,
        base_url=settings.av_base_url,
        outputsize=settings.av_outputsize,
        datatype=settings.av_datatype,
        max_retries=settings.av_max_retries,
        backoff_seconds=settings.av_backoff_seconds,
        limiter=limiter,
        on_event=on_event,
        **extra,
    )
