"""End to end: `marketlake ingest --provider alphavantage` as a subprocess, against the
loopback fake of www.alphavantage.co (127.0.0.1; no internet). The fake runs in this test
process; the CLI reaches it through ALPHAVANTAGE_BASE_URL."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from av_fake_server import (
    INFO_DAILY_LIMIT,
    KEY_ECHO,
    ByFunction,
    BySymbol,
    FakeAlphaVantage,
    Reply,
    bars_on,
    daily_json,
    daily_reply,
    dividends_json,
    earnings_json,
    splits_json,
)
from unreachable import closed_port_url

from marketlake.sessions import sessions_between

pytestmark = pytest.mark.e2e

KEY = "KEYzq81x7TEST"
COMPACT = bars_on(sessions_between(dt.date(2024, 1, 2), dt.date(2024, 7, 3))[-100:])
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def environment(server: FakeAlphaVantage, tickers: str, **extra: str) -> dict:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MARKETLAKE_", "ALPHAVANTAGE_", "POLYGON_"))
    }
    environ.update(
        {
            "ALPHAVANTAGE_API_KEY": KEY,
            "ALPHAVANTAGE_BASE_URL": server.url,
            "ALPHAVANTAGE_CALLS_PER_MINUTE": "6000",
            "ALPHAVANTAGE_BACKOFF_SECONDS": "0.01",
            "ALPHAVANTAGE_MAX_RETRIES": "1",
            "MARKETLAKE_TICKERS": tickers,
        }
    )
    environ.update(extra)
    return environ


def marketlake(cwd: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "marketlake", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def everything_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def server():
    with FakeAlphaVantage() as fake:
        yield fake


def with_bad_volume(symbol: str) -> Reply:
    body = json.loads(daily_json(symbol, COMPACT))
    body["Time Series (Daily)"]["2024-07-01"]["5. volume"] = "-100"
    return Reply(body)


def test_ingest_prints_the_run_report_and_no_progress_bar_without_a_terminal(server, tmp_path):
    server.default = BySymbol(
        {
            "AAA": with_bad_volume("AAA"),
            "CCC": daily_reply(COMPACT),
            "DDD": Reply(INFO_DAILY_LIMIT),
        }
    )  # BBB and EEE fall back to "Invalid API call"; EEE is never asked
    env = environment(server, "AAA,BBB,CCC,DDD,EEE")
    result = marketlake(
        tmp_path, env, "ingest", "--provider", "alphavantage", "--as-of", "2024-07-03"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert [q["symbol"] for q in server.requests] == ["AAA", "BBB", "CCC", "DDD"]
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "ingest (alphavantage): as of 2024-07-03 23:59 US/Eastern, last closed session 2024-07-03"
    )
    assert "  new bars: 199 (AAA 99, CCC 100)" in lines
    assert "  quarantined: 1 (see lake/quarantine/)" in lines
    assert any(
        line.startswith("  skipped BBB: Alpha Vantage does not know 'BBB'") for line in lines
    )
    deferred = [line for line in lines if line.startswith("  deferred to the next run")]
    assert len(deferred) == 1 and "DDD, EEE" in deferred[0] and "daily request limit" in deferred[0]
    # No terminal: no bar, no cursor movement, no colour; just the report.
    assert "\x1b[" not in result.stdout + result.stderr and "\r" not in result.stderr
    assert "━" not in result.stderr

    lake = tmp_path / "lake"
    raw = sorted(p.name for p in (lake / "raw/daily_prices/ingest_date=2024-07-03").iterdir())
    assert raw == ["AAA.csv", "CCC.csv"]
    (quarantined,) = (lake / "quarantine/daily_prices/ingest_date=2024-07-03").iterdir()
    assert quarantined.name.startswith("AAA.") and b"volume is negative" in quarantined.read_bytes()
    state = json.loads((lake / "state/ingest_state.json").read_text())
    assert state["deferred"] == ["DDD", "EEE"] and state["symbols"]["BBB"]["invalid"]


def test_ingest_prints_one_line_for_earnings(server, tmp_path):
    quarters = [
        ("2024-06-30", "2024-07-24", "2.43", "2.20"),  # after the session: held back
        ("2024-03-31", "2024-04-24", "1.68", "1.60"),
        ("2001-03-31", "2001-04-17", "None", "None"),
    ]
    server.default = ByFunction(
        daily_reply(COMPACT),
        {
            "SPLITS": lambda q: Reply(splits_json(q["symbol"], [])),
            "DIVIDENDS": lambda q: Reply(dividends_json(q["symbol"], [])),
            "EARNINGS": BySymbol({"AAA": Reply(earnings_json("AAA", quarters))}, Reply({})),
        },
    )
    result = marketlake(tmp_path, environment(server, "AAA,BBB"), "ingest", "--as-of", "2024-07-03")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "  earnings: asked for 2 symbol(s), new or changed: 1 quarter(s) "
        "(1 listed without an EPS, 1 symbol(s) with none)",
        "  earnings reported after 2024-07-03, not landed: 1 (landed by a fetch after their date)",
    ]


THROTTLE_ECHO = {
    "Note": f"Thank you for using Alpha Vantage! Your API key {KEY_ECHO} exceeded our standard "
    "API call frequency of 5 calls per minute."
}
GARBLED_ECHO = (
    "<html><body>upstream failed for /query?function=TIME_SERIES_DAILY&apikey="
    f"{KEY_ECHO} (key {KEY_ECHO})</body></html>"
)
INVALID_SYMBOL_ECHO = {
    "Error Message": f"Invalid API call for apikey {KEY_ECHO}. Please retry or visit the "
    "documentation (https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."
}
INVALID_KEY_ECHO = {
    "Error Message": f"the parameter apikey is invalid or missing ({KEY_ECHO}). Please claim "
    "your free API key on (https://www.alphavantage.co/support/#api-key)."
}


def test_the_api_key_never_appears_in_anything_the_cli_printed_or_wrote(server, tmp_path):
    server.default = BySymbol(
        {
            "AAA": [Reply(THROTTLE_ECHO), daily_reply(COMPACT)],
            "BBB": Reply(GARBLED_ECHO, content_type="text/html"),
            "CCC": Reply(INVALID_SYMBOL_ECHO),
            "DDD": Reply(INFO_DAILY_LIMIT),
        }
    )
    printed = []
    first = marketlake(
        tmp_path,
        environment(server, "AAA,BBB,CCC,DDD,EEE"),
        "ingest",
        "--provider",
        "alphavantage",
        "--as-of",
        "2024-07-03",
    )
    printed += [first.stdout, first.stderr]
    assert first.returncode == 1  # BBB failed: tried again next run
    assert "retry: AAA: throttled" in first.stderr
    assert "failed: BBB:" in first.stderr
    assert "skipped CCC" in first.stdout and "deferred" in first.stdout

    # A key Alpha Vantage refuses, echoed back: the one-line error, then with --debug.
    server.default = BySymbol({}, fallback=Reply(INVALID_KEY_ECHO))
    other = tmp_path / "other"
    other.mkdir()
    env = environment(server, "AAA")
    for debug in ([], ["--debug"]):
        refused = marketlake(other, env, *debug, "ingest", "--as-of", "2024-07-03")
        assert refused.returncode == 1
        assert "export ALPHAVANTAGE_API_KEY=" in refused.stderr
        printed += [refused.stdout, refused.stderr]
    assert "Traceback" in printed[-1]
    assert printed[2] == "" and len(printed[3].strip().splitlines()) == 1

    # Not vacuous: the key went out on every request and came back in the answers.
    assert {q["apikey"] for q in server.requests} == {KEY}
    files = everything_under(tmp_path)
    payloads = [data for name, data in files.items() if name.endswith(".payload.txt")]
    assert len(payloads) == 1 and payloads[0].count(b"***") >= 2

    needle = KEY.lower()
    assert [name for name, data in files.items() if needle.encode() in data.lower()] == []
    assert [text for text in printed if needle in text.lower()] == []


def test_the_progress_bar_shows_the_symbol_and_rate_limit_waits_on_a_terminal(server, tmp_path):
    server.default = BySymbol({}, fallback=daily_reply(COMPACT))
    # 30 calls a minute: a call every 2 s, so the 2nd and 3rd symbols each wait about 2 s.
    # Bars only: the paced requests counted here are the bars' (splits and dividends,
    # which follow them, are tested in test_ingest_actions.py).
    env = environment(
        server, "AAA,BBB,CCC", ALPHAVANTAGE_CALLS_PER_MINUTE="30", MARKETLAKE_ACTIONS_EVERY_DAYS="0"
    )
    env.update(TERM="xterm-256color", COLUMNS="160", LINES="40")
    env.pop("NO_COLOR", None)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketlake", "ingest", "--as-of", "2024-07-03"],
        cwd=tmp_path,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        code = proc.wait(timeout=60)
    elapsed = time.monotonic() - started
    screen = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))

    assert code == 0, screen
    assert elapsed < 20
    assert [q["symbol"] for q in server.requests] == ["AAA", "BBB", "CCC"]
    waits = re.findall(r"(AAA|BBB|CCC)\s+\(rate limit: waiting (\d+)s\)", screen)
    assert {symbol for symbol, _ in waits} == {"BBB", "CCC"}
    assert {int(seconds) for _, seconds in waits} <= {1, 2}
    assert re.search(r"ingest\b.*\b[0-3]/3\b", screen)  # the bar itself: done of total
    assert "new bars: 300 (AAA 100, BBB 100, CCC 100)" in screen


def test_run_without_network_prints_the_ingests_one_line_and_builds_nothing(server, tmp_path):
    # Nothing listens where ALPHAVANTAGE_BASE_URL points (the issue had no DNS; refused is
    # the loopback's way of not reaching a server).
    url = closed_port_url()
    env = environment(server, "AAA,BBB,CCC", ALPHAVANTAGE_BASE_URL=url)
    result = marketlake(tmp_path, env, "run", "--as-of", "2024-07-03")

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"error: cannot reach ALPHAVANTAGE_BASE_URL ({url}): connection failed: Connection "
        "refused; check the network or the setting"
    ]
    # Not the build's "run `marketlake ingest` first": run stopped after the ingest.
    assert "build" not in result.stdout and "ingest` first" not in result.stdout
    lake = tmp_path / "lake"
    assert not (lake / "raw").exists() and not (lake / "catalog.duckdb").exists()
    state = json.loads((lake / "state/ingest_state.json").read_text())
    assert state["quota"]["used"] == 0 and state["lake_kind"] is None


def test_run_with_some_symbols_failed_builds_what_landed_and_exits_1(server, tmp_path):
    server.default = BySymbol({"AAA": daily_reply(COMPACT), "BBB": Reply(drop=True)})
    env = environment(server, "AAA,BBB")
    result = marketlake(tmp_path, env, "run", "--as-of", "2024-07-03")

    assert result.returncode == 1, result.stdout + result.stderr
    assert any(line.startswith("  failed: BBB: ") for line in result.stderr.splitlines())
    assert "build: run " in result.stdout and "daily_prices, version" in result.stdout
    assert "dashboards: " in result.stdout
    assert not any(line.startswith("error:") for line in result.stderr.splitlines())
