"""One Settings object, read from the environment; CLI flags override it."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from marketlake.errors import ConfigError

# Plain dataclasses, not pydantic-settings: the Glue job imports this module, and Glue
# installs each extra dependency at every job start.

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
PROVIDERS = ("synthetic", "alphavantage", "polygon")
# Said when the polygon provider has no key (before any request) and when Polygon refuses
# the key (HTTP 401): the same remedy either way.
POLYGON_KEY_HELP = (
    "export POLYGON_API_KEY=<your key> (free at https://polygon.io, now massive.com), "
    "or use --provider synthetic"
)
# The settings that hold a secret: never printed.
_SECRETS = ("api_key", "polygon_api_key")
# Exchange symbols as Alpha Vantage spells them: BRK.B, RDS-A, SHOP.TRT, ^ is not one.
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,14}$")
_HTTP_URL = re.compile(r"^https?://[^\s/]+\S*$")
# Anything that starts like a URL is one: never a folder name (Path("s3://b") is "s3:/b").
_URL = re.compile(r"^([a-z][a-z0-9+.-]*)://(.*)$", re.IGNORECASE)
# S3's rules for bucket names, loosely: what cannot be a bucket is refused before any call.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
HOME_HELP = "a directory (a local lake) or s3://bucket[/prefix] (the deployed lake)"


@dataclasses.dataclass(frozen=True)
class S3Lake:
    """--home s3://bucket[/prefix]: the deployed lake, in a bucket (and key prefix)."""

    bucket: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}"


def parse_home(text: str | os.PathLike | None) -> Path | S3Lake:
    """--home / MARKETLAKE_HOME: a lake directory, or s3://bucket[/prefix]. Any other URL is
    refused: taken as a path, `gs://b` would become a local folder `gs:/b`."""
    raw = str(text) if text is not None and str(text) else "lake"
    found = _URL.match(raw.strip()) if isinstance(text, str) else None
    if found is None:
        return Path(raw)
    scheme, rest = found.group(1).lower(), found.group(2)
    if scheme != "s3":
        raise ConfigError(
            f"--home / MARKETLAKE_HOME {raw!r}: {scheme}:// lakes are not supported; use "
            f"{HOME_HELP}"
        )
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise ConfigError(
            f"--home / MARKETLAKE_HOME {raw!r}: {bucket!r} is not an S3 bucket name; use "
            f"{HOME_HELP}"
        )
    return S3Lake(bucket, prefix.strip("/"))


# MARKETLAKE_TICKERS=ALL / --tickers ALL: every ticker of the US market, as the provider's
# whole-market answer lists them (Polygon's grouped daily). Held as "*", which no symbol can
# be: Allstate trades as ALL, and is followed alone with a list of one, `--tickers ALL,`.
WHOLE_MARKET = "*"


def parse_tickers(text: str) -> tuple[str, ...]:
    """Comma-separated symbols, upper-cased, first occurrence kept; `ALL` alone is the whole
    market (WHOLE_MARKET)."""
    if text.strip().upper() in ("ALL", WHOLE_MARKET):
        return (WHOLE_MARKET,)
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
            f"between {_plain(minimum)} and {_plain(maximum)}"
            if maximum is not None
            else f"at least {_plain(minimum)}"
        )
        # The text as given: 99999999999 read back as 1e+11 would not be what the user set.
        raise ConfigError(
            f"{name}={raw.strip()} must be {bounds}; set it within those bounds, or unset it "
            f"for the default ({_plain(default)})"
        )
    return value


def _plain(number: float) -> str:
    """86400000, not 8.64e+07; 0.5 as 0.5."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


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


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    return (env.get(name) or default).strip().lower()


def _secret(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    # Blank is unset: an empty export must not count as a key.
    return (env.get(name) or "").strip() or default


# How each kind of setting is read: (env, name, field metadata, default) -> value.
_READERS = {
    "int": lambda env, name, meta, default: _number(
        env, name, default, whole=True, minimum=meta["minimum"], maximum=meta["maximum"]
    ),
    "float": lambda env, name, meta, default: _number(
        env, name, default, whole=False, minimum=meta["minimum"], maximum=meta["maximum"]
    ),
    "memory": lambda env, name, meta, default: _memory(env, name, default),
    "text": lambda env, name, meta, default: _text(env, name, default),
    "raw": lambda env, name, meta, default: env.get(name) or default,
    "secret": lambda env, name, meta, default: _secret(env, name, default),
}


def setting(
    default: Any,
    env: str,
    kind: Literal["int", "float", "memory", "text", "raw", "secret"],
    minimum: float = 0,
    maximum: float | None = None,
) -> Any:
    """A Settings field read from the environment variable `env`: its one declaration
    (name, variable, default, bounds)."""
    meta = {"env": env, "kind": kind, "minimum": minimum, "maximum": maximum}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path = Path("lake")  # MARKETLAKE_HOME, when it names a directory
    # MARKETLAKE_HOME=s3://bucket[/prefix]: the deployed lake. `home` is then unused, and the
    # CLI refuses every command that does not read the S3 lake (cli/common.py).
    lake_url: S3Lake | None = None
    tickers: tuple[str, ...] = DEFAULT_TICKERS  # MARKETLAKE_TICKERS
    # Whether the tickers were given (--tickers or MARKETLAKE_TICKERS): they apply to that
    # run. Not given, a run fetches the lake's own tickers (lake/universe.py), and the
    # defaults above only in a lake that has none yet.
    tickers_given: bool = True
    api_key: str | None = None  # ALPHAVANTAGE_API_KEY
    # MARKETLAKE_PROVIDER; unset: alphavantage when its key is set, else polygon when its key
    # is set, else synthetic.
    provider: str = "synthetic"
    seed: int = setting(42, env="MARKETLAKE_SEED", kind="int")
    # At most 100 years: the oldest daily US stock prices any vendor sells begin in 1925
    # (CRSP), so a longer window asks for nothing more, and a date that many days back
    # overflows Python's calendar (99999999999 days: an OverflowError per symbol).
    history_days: int = setting(
        730, env="MARKETLAKE_HISTORY_DAYS", kind="int", minimum=1, maximum=36_500
    )
    # Days between two asks of a symbol's splits and dividends (a new symbol is asked at
    # once); 0 never asks. At most a year: dividends come quarterly, and 0 is "never".
    actions_every_days: int = setting(
        7, env="MARKETLAKE_ACTIONS_EVERY_DAYS", kind="int", maximum=366
    )
    duckdb_memory_limit: str = setting("2GB", env="MARKETLAKE_DUCKDB_MEMORY_LIMIT", kind="memory")
    # 0: DuckDB's default, one per core.
    duckdb_threads: int = setting(
        0, env="MARKETLAKE_DUCKDB_THREADS", kind="int", maximum=MAX_THREADS
    )
    # Every kept version is an entry each build rewrites in the registry, and the years it
    # rebuilt stay on disk: 1,000 is years of daily builds.
    keep_versions: int = setting(
        5, env="MARKETLAKE_KEEP_VERSIONS", kind="int", minimum=1, maximum=1000
    )
    max_bad_row_pct: float = setting(
        5.0, env="MARKETLAKE_MAX_BAD_ROW_PCT", kind="float", maximum=100
    )
    # Alpha Vantage; the defaults are the free tier's limits.
    av_base_url: str = setting(
        "https://www.alphavantage.co/query", env="ALPHAVANTAGE_BASE_URL", kind="raw"
    )
    # Alpha Vantage's largest plan allows 1,200 a minute; up to 1,000 a second is allowed
    # for a local stand-in of the API (the tests' fake server), no more: the limiter spaces
    # calls 60/N seconds apart, and a rate no server keeps is a setting gone wrong.
    av_calls_per_minute: int = setting(
        5, env="ALPHAVANTAGE_CALLS_PER_MINUTE", kind="int", minimum=1, maximum=60_000
    )
    # 0: no daily cap (premium). At most a whole day at the fastest rate above; ingest_runs
    # keeps it as a 32-bit integer, which a larger number would overflow.
    av_calls_per_day: int = setting(
        25, env="ALPHAVANTAGE_CALLS_PER_DAY", kind="int", maximum=60_000 * 1440
    )
    # Retries back off exponentially (up to 120 s each): 10 already wait ~20 minutes on one
    # symbol, and the backoff 2**n of a huge count overflows.
    av_max_retries: int = setting(3, env="ALPHAVANTAGE_MAX_RETRIES", kind="int", maximum=10)
    # The first retry's wait; each wait is capped at 120 s (the provider's
    # MAX_BACKOFF_SECONDS), so a larger base changes nothing but reads as if it did.
    av_backoff_seconds: float = setting(
        15.0, env="ALPHAVANTAGE_BACKOFF_SECONDS", kind="float", maximum=120
    )
    av_outputsize: str = setting("compact", env="ALPHAVANTAGE_OUTPUTSIZE", kind="text")
    av_datatype: str = setting("json", env="ALPHAVANTAGE_DATATYPE", kind="text")
    # Polygon.io (Massive since October 2025; api.polygon.io still answers). The defaults are
    # the free plan's: 5 requests a minute, no daily cap, about two years of daily history.
    polygon_api_key: str | None = setting(None, env="POLYGON_API_KEY", kind="secret")
    polygon_base_url: str = setting("https://api.polygon.io", env="POLYGON_BASE_URL", kind="raw")
    # 0: no pacing (paid plans are unlimited). The same ceiling as Alpha Vantage's: a rate
    # no server keeps is a setting gone wrong.
    polygon_calls_per_minute: int = setting(
        5, env="POLYGON_CALLS_PER_MINUTE", kind="int", maximum=60_000
    )
    # Polygon's financials are asked per ticker: at most this many symbols' earnings a run
    # (25: five minutes at the free plan's pace), the least recently tried first; 0: no limit.
    polygon_earnings_per_run: int = setting(
        25, env="POLYGON_EARNINGS_PER_RUN", kind="int", maximum=100_000
    )
    # The same bounds as Alpha Vantage's, for the same reasons (capped exponential backoff).
    polygon_max_retries: int = setting(3, env="POLYGON_MAX_RETRIES", kind="int", maximum=10)
    polygon_backoff_seconds: float = setting(
        15.0, env="POLYGON_BACKOFF_SECONDS", kind="float", maximum=120
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if env is None else env
        api_key = (env.get("ALPHAVANTAGE_API_KEY") or "").strip() or None
        # Field name -> value, of each field's own type (overrides come from the CLI's flags).
        values: dict[str, Any] = {
            "home": env.get("MARKETLAKE_HOME") or "lake",
            "tickers": parse_tickers(env["MARKETLAKE_TICKERS"])
            if env.get("MARKETLAKE_TICKERS")
            else DEFAULT_TICKERS,
            "api_key": api_key,
        }
        for field in dataclasses.fields(cls):
            meta = field.metadata
            if "env" in meta:
                read = _READERS[meta["kind"]]
                values[field.name] = read(env, meta["env"], meta, field.default)
        values["provider"] = (env.get("MARKETLAKE_PROVIDER") or "").strip().lower() or (
            "alphavantage" if api_key else "polygon" if values["polygon_api_key"] else "synthetic"
        )
        values["tickers_given"] = bool(env.get("MARKETLAKE_TICKERS")) or (
            overrides.get("tickers") is not None
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["provider"] = str(values["provider"]).strip().lower()
        if isinstance(values["tickers"], str):
            values["tickers"] = parse_tickers(values["tickers"])
        home = parse_home(values["home"])
        values["home"], values["lake_url"] = (
            (Path("lake"), home) if isinstance(home, S3Lake) else (home, None)
        )
        settings = cls(**values)
        settings.validate()
        return settings

    @property
    def whole_market(self) -> bool:
        """--tickers ALL: every ticker of the provider's whole-market answer."""
        return self.tickers == (WHOLE_MARKET,)

    def validate(self) -> None:
        for place in () if self.lake_url else (self.home, *self.home.parents):
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
        for name, url, example in (
            ("ALPHAVANTAGE_BASE_URL", self.av_base_url, "https://www.alphavantage.co/query"),
            ("POLYGON_BASE_URL", self.polygon_base_url, "https://api.polygon.io"),
        ):
            if not _HTTP_URL.match(url):
                raise ConfigError(f"{name}={url!r} is not an http(s) URL (e.g. {example})")
        if self.av_datatype not in ("json", "csv"):
            raise ConfigError(f"ALPHAVANTAGE_DATATYPE={self.av_datatype!r}: use json or csv")
        if self.whole_market and self.provider != "polygon":
            raise ConfigError(
                f"--tickers ALL (MARKETLAKE_TICKERS=ALL) needs the polygon provider, whose "
                f"grouped-daily answer lists the whole market; {self.provider} is asked one "
                "symbol at a time: give the symbols (--tickers NVDA,AMD) or use --provider "
                "polygon with POLYGON_API_KEY"
            )
        if self.provider == "alphavantage" and not self.api_key:
            raise ConfigError(
                "the alphavantage provider needs a key: export ALPHAVANTAGE_API_KEY=... "
                "(free at alphavantage.co), or use --provider synthetic"
            )
        if self.provider == "polygon" and not self.polygon_api_key:
            raise ConfigError(f"the polygon provider needs a key: {POLYGON_KEY_HELP}")

    def __repr__(self) -> str:  # never print a key
        fields = ", ".join(f"{f.name}={self._shown(f.name)!r}" for f in dataclasses.fields(self))
        return f"Settings({fields})"

    def _shown(self, name: str) -> Any:
        value = getattr(self, name)
        return "***" if name in _SECRETS and value else value


def default(name: str):
    """The default of the setting `name` (a Settings field), for code that takes it as an
    argument default."""
    return next(f.default for f in dataclasses.fields(Settings) if f.name == name)


def env_name(name: str) -> str:
    """The environment variable of the setting `name`."""
    return next(f.metadata["env"] for f in dataclasses.fields(Settings) if f.name == name)
