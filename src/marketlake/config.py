"""One Settings object, read from the environment; CLI flags override it."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

from marketlake.errors import ConfigError

DEFAULT_TICKERS: tuple[str, ...] = (
    "NVDA",
    "AMD",
    "INTC",
    "TSM",
    "AVGO",
    "QCOM",
    "TXN",
    "MU",
    "ASML",
    "AMAT",
)
PROVIDERS = ("synthetic", "alphavantage")
# Exchange symbols as Alpha Vantage spells them: BRK.B, RDS-A, SHOP.TRT, ^ is not one.
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,14}$")


def parse_tickers(text: str) -> tuple[str, ...]:
    """Comma-separated symbols, upper-cased, first occurrence kept."""
    seen = []
    for raw in text.split(","):
        symbol = raw.strip().upper()
        if not symbol:
            continue
        if not _SYMBOL.match(symbol):
            raise ConfigError(
                f"ticker {raw.strip()!r} is not a valid symbol "
                "(letters, digits, '.' or '-', at most 15 characters)"
            )
        if symbol not in seen:
            seen.append(symbol)
    if not seen:
        raise ConfigError("no tickers given; set MARKETLAKE_TICKERS=NVDA,AMD or pass --tickers")
    return tuple(seen)


def _number(env, name, default, whole: bool, minimum=0, maximum=None):
    """A numeric setting: its default when unset, else a ConfigError saying what is wrong."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{name}={raw!r} is not {kind}") from None
    if not math.isfinite(value):
        # nan compares false with every bound: it would pass them and switch a gate off.
        raise ConfigError(f"{name}={raw!r} is not a finite number; unset it or give a number")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = (
            f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        )
        raise ConfigError(f"{name}={value:g} must be {bounds}")
    return value


# What DuckDB's memory_limit reads: a number with a unit (2GB, 512MB, 1.5GiB, 3g) or a share
# of the machine's memory (80%).
_MEMORY = re.compile(
    r"^\d+(\.\d+)?\s*(%|b|bytes?|[kmgt]i?b?|(kilo|mega|giga|tera)bytes?)$", re.IGNORECASE
)


MAX_THREADS = 256  # 0 is DuckDB's own choice (the cores); 100,000 threads ran for minutes

MIN_MEMORY_BYTES = 64e6  # below this DuckDB fails a build with "failed to pin block"


def _memory(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or "").strip() or default
    found = _MEMORY.match(value)
    if not found:
        raise ConfigError(
            f"{name}={value!r} is not a memory size DuckDB reads; use e.g. 2GB, 512MB or 50%"
        )
    number = float(value[: found.start(2)].strip())
    unit = found.group(2).lower()
    if unit == "%":
        if not 1 <= number <= 100:
            raise ConfigError(f"{name}={value!r}: a share of memory is 1% to 100%; use e.g. 50%")
    else:
        power = 0 if unit.startswith("b") else "bkmgt".index(unit[0])
        size = number * (1024 if "i" in unit else 1000) ** power
        if size < MIN_MEMORY_BYTES:
            raise ConfigError(f"{name}={value!r} is too little for a build; give at least 64MB")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    return _number(env, name, default, whole=True, minimum=minimum)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, whole=False)


def _percent(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, whole=False, maximum=100)


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path = Path("lake")
    tickers: tuple[str, ...] = DEFAULT_TICKERS
    api_key: str | None = None
    provider: str = "synthetic"
    seed: int = 42
    history_days: int = 730
    # Days between two asks of a symbol's splits and dividends (a new symbol is asked at
    # once); 0 never asks.
    actions_every_days: int = 7
    duckdb_memory_limit: str = "2GB"
    duckdb_threads: int = 0  # 0: DuckDB's default, one per core
    keep_versions: int = 5
    max_bad_row_pct: float = 5.0
    # Alpha Vantage; the defaults are the free tier's limits.
    av_base_url: str = "https://www.alphavantage.co/query"
    av_calls_per_minute: int = 5
    av_calls_per_day: int = 25  # 0: no daily cap (premium)
    av_max_retries: int = 3
    av_backoff_seconds: float = 15.0
    av_outputsize: str = "compact"
    av_datatype: str = "json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if env is None else env
        api_key = (env.get("ALPHAVANTAGE_API_KEY") or "").strip() or None
        values = {
            "home": Path(env.get("MARKETLAKE_HOME") or "lake"),
            "tickers": parse_tickers(env["MARKETLAKE_TICKERS"])
            if env.get("MARKETLAKE_TICKERS")
            else DEFAULT_TICKERS,
            "api_key": api_key,
            "provider": (env.get("MARKETLAKE_PROVIDER") or "").strip().lower()
            or ("alphavantage" if api_key else "synthetic"),
            "seed": _int(env, "MARKETLAKE_SEED", 42),
            "history_days": _int(env, "MARKETLAKE_HISTORY_DAYS", 730, minimum=1),
            "actions_every_days": _int(env, "MARKETLAKE_ACTIONS_EVERY_DAYS", 7),
            "duckdb_memory_limit": _memory(env, "MARKETLAKE_DUCKDB_MEMORY_LIMIT", "2GB"),
            "duckdb_threads": _number(
                env, "MARKETLAKE_DUCKDB_THREADS", 0, whole=True, minimum=0, maximum=MAX_THREADS
            ),
            "keep_versions": _int(env, "MARKETLAKE_KEEP_VERSIONS", 5, minimum=1),
            "max_bad_row_pct": _percent(env, "MARKETLAKE_MAX_BAD_ROW_PCT", 5.0),
            "av_base_url": env.get("ALPHAVANTAGE_BASE_URL") or "https://www.alphavantage.co/query",
            "av_calls_per_minute": _int(env, "ALPHAVANTAGE_CALLS_PER_MINUTE", 5, minimum=1),
            "av_calls_per_day": _int(env, "ALPHAVANTAGE_CALLS_PER_DAY", 25),
            "av_max_retries": _int(env, "ALPHAVANTAGE_MAX_RETRIES", 3),
            "av_backoff_seconds": _float(env, "ALPHAVANTAGE_BACKOFF_SECONDS", 15.0),
            "av_outputsize": (env.get("ALPHAVANTAGE_OUTPUTSIZE") or "compact").strip().lower(),
            "av_datatype": (env.get("ALPHAVANTAGE_DATATYPE") or "json").strip().lower(),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["provider"] = str(values["provider"]).strip().lower()
        if isinstance(values["tickers"], str):
            values["tickers"] = parse_tickers(values["tickers"])
        values["home"] = Path(values["home"])
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for place in (self.home, *self.home.parents):
            if place.exists() and not place.is_dir():
                raise ConfigError(
                    f"the lake directory {self.home} (--home or MARKETLAKE_HOME) cannot be "
                    f"made: {place} is a file; point --home at a directory (a new one is "
                    "created)"
                )
        if self.provider not in PROVIDERS:
            raise ConfigError(
                f"provider {self.provider!r} is unknown; use one of: {', '.join(PROVIDERS)}"
            )
        if self.av_outputsize not in ("compact", "full"):
            raise ConfigError(
                f"ALPHAVANTAGE_OUTPUTSIZE={self.av_outputsize!r}: use compact (the last 100 "
                "sessions, free) or full (the whole history, premium)"
            )
        if not re.match(r"^https?://[^\s/]+\S*$", self.av_base_url):
            raise ConfigError(
                f"ALPHAVANTAGE_BASE_URL={self.av_base_url!r} is not an http(s) URL "
                "(e.g. https://www.alphavantage.co/query)"
            )
        if self.av_datatype not in ("json", "csv"):
            raise ConfigError(f"ALPHAVANTAGE_DATATYPE={self.av_datatype!r}: use json or csv")
        if self.provider == "alphavantage" and not self.api_key:
            raise ConfigError(
                "the alphavantage provider needs a key: export ALPHAVANTAGE_API_KEY=... "
                "(free at alphavantage.co), or use --provider synthetic"
            )

    def __repr__(self) -> str:  # never print the key
        fields = ", ".join(
            f"{f.name}={'***' if f.name == 'api_key' and self.api_key else getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
        )
        return f"Settings({fields})"
