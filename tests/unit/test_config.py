"""Settings.from_env: defaults, environment, CLI-style overrides, errors, and the key's secrecy."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketlake.config import POLYGON_KEY_HELP, Settings, parse_tickers
from marketlake.errors import ConfigError

DEFAULTS = ("NVDA", "AMD", "INTC", "TSM", "AVGO", "QCOM", "TXN", "MU", "ASML", "AMAT")
SECRET = "SK-Very_Secret-123"


def test_defaults_from_an_empty_environment():
    settings = Settings.from_env({})
    assert settings.home == Path("lake")
    assert isinstance(settings.home, Path)
    assert settings.tickers == DEFAULTS
    assert settings.provider == "synthetic"
    assert settings.api_key is None
    assert settings.seed == 42
    assert settings.history_days == 730
    assert settings.keep_versions == 5


def test_os_environ_is_read_when_no_mapping_is_given(monkeypatch):
    for name in (
        "ALPHAVANTAGE_API_KEY",
        "MARKETLAKE_HOME",
        "MARKETLAKE_TICKERS",
        "MARKETLAKE_PROVIDER",
        "MARKETLAKE_SEED",
        "MARKETLAKE_HISTORY_DAYS",
        "MARKETLAKE_KEEP_VERSIONS",
        "MARKETLAKE_DUCKDB_THREADS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MARKETLAKE_SEED", "7")
    monkeypatch.setenv("MARKETLAKE_TICKERS", "msft")
    settings = Settings.from_env()
    assert settings.seed == 7
    assert settings.tickers == ("MSFT",)
    assert settings.provider == "synthetic"


def test_a_key_selects_alphavantage():
    settings = Settings.from_env({"ALPHAVANTAGE_API_KEY": f"  {SECRET} "})
    assert settings.provider == "alphavantage"
    assert settings.api_key == SECRET


def test_a_blank_key_is_no_key():
    settings = Settings.from_env({"ALPHAVANTAGE_API_KEY": "   "})
    assert settings.api_key is None
    assert settings.provider == "synthetic"


def test_environment_values_are_read():
    env = {
        "MARKETLAKE_HOME": "/data/lake",
        "MARKETLAKE_TICKERS": " nvda, brk.b ,NVDA,,rds-a",
        "MARKETLAKE_PROVIDER": " Synthetic ",
        "MARKETLAKE_SEED": "7",
        "MARKETLAKE_HISTORY_DAYS": "30",
        "MARKETLAKE_KEEP_VERSIONS": "2",
        "ALPHAVANTAGE_API_KEY": SECRET,
    }
    settings = Settings.from_env(env)
    assert settings.home == Path("/data/lake")
    # Upper-cased, stripped, first occurrence kept, empty items skipped.
    assert settings.tickers == ("NVDA", "BRK.B", "RDS-A")
    # An explicit provider wins over the key's default.
    assert settings.provider == "synthetic"
    assert (settings.seed, settings.history_days, settings.keep_versions) == (7, 30, 2)


def test_cli_style_overrides_beat_the_environment():
    env = {
        "MARKETLAKE_HOME": "/from/env",
        "MARKETLAKE_TICKERS": "AMD",
        "MARKETLAKE_SEED": "7",
        "ALPHAVANTAGE_API_KEY": SECRET,
    }
    settings = Settings.from_env(
        env, home="/from/cli", tickers="intc, mu", seed=9, provider="synthetic"
    )
    assert settings.home == Path("/from/cli")
    assert isinstance(settings.home, Path)
    assert settings.tickers == ("INTC", "MU")
    assert settings.seed == 9
    assert settings.provider == "synthetic"


def test_unset_cli_flags_leave_the_environment_alone():
    # The CLI passes None for every flag the user did not give.
    env = {"MARKETLAKE_HOME": "/from/env", "MARKETLAKE_TICKERS": "AMD", "MARKETLAKE_SEED": "7"}
    settings = Settings.from_env(env, home=None, tickers=None, seed=None, provider=None)
    assert settings.home == Path("/from/env")
    assert settings.tickers == ("AMD",)
    assert settings.seed == 7


@pytest.mark.parametrize("text", ["^GSPC", "NV DA", "AAPL$", "A" * 16, "-AMD", "NVDA,/etc"])
def test_bad_tickers_are_a_config_error_naming_the_ticker(text):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"MARKETLAKE_TICKERS": text})
    message = str(info.value)
    assert "not a valid symbol" in message
    bad = next(t.strip() for t in text.split(",") if t.strip() != "NVDA")
    assert repr(bad) in message


def test_bad_tickers_given_as_a_flag_are_a_config_error():
    with pytest.raises(ConfigError, match="not a valid symbol"):
        Settings.from_env({}, tickers="AMD,N*VDA")


@pytest.mark.parametrize("text", [",", " , ,"])
def test_no_tickers_at_all_says_how_to_give_them(text):
    with pytest.raises(ConfigError, match="MARKETLAKE_TICKERS"):
        parse_tickers(text)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MARKETLAKE_SEED", "4x2", "MARKETLAKE_SEED='4x2' is not a whole number"),
        ("MARKETLAKE_SEED", "1.5", "MARKETLAKE_SEED='1.5' is not a whole number"),
        ("MARKETLAKE_HISTORY_DAYS", "0", "MARKETLAKE_HISTORY_DAYS=0 must be between 1 and 36500"),
        ("MARKETLAKE_KEEP_VERSIONS", "-3", "KEEP_VERSIONS=-3 must be between 1 and 1000"),
        ("MARKETLAKE_DUCKDB_THREADS", "many", "MARKETLAKE_DUCKDB_THREADS='many'"),
    ],
)
def test_bad_whole_numbers_are_a_config_error_naming_the_variable(name, value, expected):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    assert expected in str(info.value)


def test_unknown_provider_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"MARKETLAKE_PROVIDER": "yahoo"})
    assert "'yahoo'" in str(info.value)
    assert "synthetic" in str(info.value)
    assert "alphavantage" in str(info.value)
    assert "polygon" in str(info.value)


def test_alphavantage_without_a_key_says_how_to_set_one():
    with pytest.raises(ConfigError, match="ALPHAVANTAGE_API_KEY"):
        Settings.from_env({}, provider="alphavantage")


# Regression: the provider override was not lower-cased/stripped like MARKETLAKE_PROVIDER, so
# `--provider Synthetic` was refused while the same environment value worked.
def test_provider_flag_is_normalised_like_the_environment_variable():
    from_env = Settings.from_env({"MARKETLAKE_PROVIDER": "Synthetic"})
    from_flag = Settings.from_env({}, provider="Synthetic")
    assert from_flag.provider == from_env.provider == "synthetic"


def test_repr_never_shows_the_key():
    settings = Settings.from_env({"ALPHAVANTAGE_API_KEY": SECRET})
    for text in (repr(settings), str(settings), f"{settings!r}", f"{[settings]}"):
        assert SECRET not in text
        assert SECRET.lower() not in text.lower()
        assert "api_key='***'" in text
    # The other fields are still there to help debugging.
    assert "provider='alphavantage'" in repr(settings)


def test_repr_without_a_key_says_none():
    assert "api_key=None" in repr(Settings.from_env({}))


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity"])
@pytest.mark.parametrize(
    "name",
    [
        "MARKETLAKE_MAX_BAD_ROW_PCT",
        "ALPHAVANTAGE_BACKOFF_SECONDS",
        "MARKETLAKE_SEED",
        "MARKETLAKE_KEEP_VERSIONS",
        "ALPHAVANTAGE_CALLS_PER_DAY",
    ],
)
def test_a_number_that_is_not_finite_is_refused_naming_the_setting(name, value):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    assert name in str(info.value) and value in str(info.value)


@pytest.mark.parametrize("value", ["banana", "2XB", "100", "GB", "-2GB"])
def test_a_memory_limit_duckdb_cannot_read_names_the_setting(value):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"MARKETLAKE_DUCKDB_MEMORY_LIMIT": value})
    message = str(info.value)
    assert "MARKETLAKE_DUCKDB_MEMORY_LIMIT" in message and "2GB" in message


@pytest.mark.parametrize("value", ["2GB", "512MB", "1.5GiB", "80%", "4 GB", "3g"])
def test_memory_limits_duckdb_reads_are_accepted(value):
    settings = Settings.from_env({"MARKETLAKE_DUCKDB_MEMORY_LIMIT": value})
    assert settings.duckdb_memory_limit == value.strip()


def test_a_home_that_is_a_file_is_a_config_error_saying_so(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    for home in (afile, afile / "lake"):
        with pytest.raises(ConfigError) as info:
            Settings.from_env({}, home=home)
        message = str(info.value)
        assert str(afile) in message and "is a file" in message and "directory" in message


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MARKETLAKE_DUCKDB_MEMORY_LIMIT", "0GB", "too little for a build; give at least 64MB"),
        ("MARKETLAKE_DUCKDB_MEMORY_LIMIT", "1kb", "too little for a build; give at least 64MB"),
        ("MARKETLAKE_DUCKDB_MEMORY_LIMIT", "150%", "a share of memory is 1% to 100%"),
        ("MARKETLAKE_DUCKDB_MEMORY_LIMIT", "0%", "a share of memory is 1% to 100%"),
        ("MARKETLAKE_DUCKDB_THREADS", "100000", "must be between 0 and 256"),
    ],
)
def test_a_duckdb_setting_that_would_wreck_a_build_is_refused_naming_it(name, value, says):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    assert str(info.value).startswith(f"{name}=") and says in str(info.value)


def test_sane_duckdb_settings_pass():
    for memory in ("64MB", "2GB", "1GiB", "50%", "100%"):
        assert Settings.from_env({"MARKETLAKE_DUCKDB_MEMORY_LIMIT": memory}).duckdb_memory_limit
    assert Settings.from_env({"MARKETLAKE_DUCKDB_THREADS": "256"}).duckdb_threads == 256


# Issue 20: every integer setting that could overflow or make no sense has bounds, and a
# value outside them is one line naming the variable, the bounds and what to do.
BOUNDED = [
    ("MARKETLAKE_HISTORY_DAYS", 1, 36_500),
    ("MARKETLAKE_ACTIONS_EVERY_DAYS", 0, 366),
    ("MARKETLAKE_KEEP_VERSIONS", 1, 1000),
    ("ALPHAVANTAGE_CALLS_PER_MINUTE", 1, 60_000),
    ("ALPHAVANTAGE_CALLS_PER_DAY", 0, 86_400_000),
    ("ALPHAVANTAGE_MAX_RETRIES", 0, 10),
    ("ALPHAVANTAGE_BACKOFF_SECONDS", 0, 120),
    ("MARKETLAKE_DUCKDB_THREADS", 0, 256),
    ("POLYGON_CALLS_PER_MINUTE", 0, 60_000),
    ("POLYGON_MAX_RETRIES", 0, 10),
    ("POLYGON_BACKOFF_SECONDS", 0, 120),
]


@pytest.mark.parametrize(("name", "low", "high"), BOUNDED)
def test_a_setting_outside_its_bounds_names_them_and_the_remedy(name, low, high):
    for value in (str(low - 1), str(high + 1), "99999999999"):
        with pytest.raises(ConfigError) as info:
            Settings.from_env({name: value})
        message = str(info.value)
        assert message.startswith(f"{name}={value} must be between {low} and {high}; ")
        assert "unset it for the default" in message and "\n" not in message
    assert Settings.from_env({name: str(low)}) and Settings.from_env({name: str(high)})


def test_the_history_days_that_overflowed_a_date_is_refused_before_any_fetch():
    with pytest.raises(ConfigError, match=r"MARKETLAKE_HISTORY_DAYS=99999999999 must be between"):
        Settings.from_env({"MARKETLAKE_HISTORY_DAYS": "99999999999"})
    # The largest allowed window is still a date: no OverflowError in the ingest.
    import datetime as dt

    days = Settings.from_env({"MARKETLAKE_HISTORY_DAYS": "36500"}).history_days
    assert dt.date(2024, 6, 28) - dt.timedelta(days=days) > dt.date(1900, 1, 1)


# -- Polygon (Massive) ------------------------------------------------------------------

POLYGON_SECRET = "PG-Also_Secret-456"


def test_polygon_defaults_are_the_free_plans():
    settings = Settings.from_env({})
    assert settings.polygon_api_key is None
    assert settings.polygon_base_url == "https://api.polygon.io"
    assert settings.polygon_calls_per_minute == 5
    assert (settings.polygon_max_retries, settings.polygon_backoff_seconds) == (3, 15.0)


def test_polygon_settings_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            "POLYGON_API_KEY": f" {POLYGON_SECRET} ",
            "POLYGON_BASE_URL": "http://127.0.0.1:8080",
            "POLYGON_CALLS_PER_MINUTE": "0",
            "POLYGON_MAX_RETRIES": "5",
            "POLYGON_BACKOFF_SECONDS": "2.5",
        }
    )
    assert settings.polygon_api_key == POLYGON_SECRET
    assert settings.polygon_base_url == "http://127.0.0.1:8080"
    # 0: no pacing, for paid plans.
    assert settings.polygon_calls_per_minute == 0
    assert (settings.polygon_max_retries, settings.polygon_backoff_seconds) == (5, 2.5)


@pytest.mark.parametrize(
    ("env", "provider"),
    [
        ({"POLYGON_API_KEY": POLYGON_SECRET}, "polygon"),
        ({"POLYGON_API_KEY": POLYGON_SECRET, "ALPHAVANTAGE_API_KEY": SECRET}, "alphavantage"),
        ({"POLYGON_API_KEY": "   "}, "synthetic"),
        ({"POLYGON_API_KEY": POLYGON_SECRET, "MARKETLAKE_PROVIDER": "synthetic"}, "synthetic"),
    ],
    ids=["polygon-key", "both-keys", "blank-key", "explicit-provider"],
)
def test_the_provider_follows_the_keys_unless_one_is_named(env, provider):
    assert Settings.from_env(env).provider == provider


@pytest.mark.parametrize("how", ["env", "flag"])
def test_polygon_without_a_key_is_one_line_saying_what_to_do(how):
    with pytest.raises(ConfigError) as info:
        if how == "env":
            Settings.from_env({"MARKETLAKE_PROVIDER": "polygon", "ALPHAVANTAGE_API_KEY": SECRET})
        else:
            Settings.from_env({"POLYGON_API_KEY": " "}, provider="Polygon")
    message = str(info.value)
    assert message == f"the polygon provider needs a key: {POLYGON_KEY_HELP}"
    assert "export POLYGON_API_KEY=" in message and "--provider synthetic" in message
    assert "\n" not in message and SECRET not in message


def test_polygon_with_its_key_is_selected_by_the_flag():
    settings = Settings.from_env({"POLYGON_API_KEY": POLYGON_SECRET}, provider="polygon")
    assert settings.provider == "polygon" and settings.polygon_api_key == POLYGON_SECRET


@pytest.mark.parametrize("url", ["api.polygon.io", "https://api.poly gon.io", "ftp://x"])
def test_a_polygon_base_url_that_is_not_http_is_a_config_error(url):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"POLYGON_BASE_URL": url})
    assert str(info.value).startswith(f"POLYGON_BASE_URL={url!r} is not an http(s) URL")


def test_repr_never_shows_either_key():
    settings = Settings.from_env(
        {"ALPHAVANTAGE_API_KEY": SECRET, "POLYGON_API_KEY": POLYGON_SECRET}
    )
    for text in (repr(settings), str(settings), f"{[settings]}"):
        for secret in (SECRET, POLYGON_SECRET):
            assert secret.lower() not in text.lower()
        assert "api_key='***'" in text and "polygon_api_key='***'" in text
    assert "polygon_api_key=None" in repr(Settings.from_env({}))
    assert "polygon_base_url='https://api.polygon.io'" in repr(settings)
