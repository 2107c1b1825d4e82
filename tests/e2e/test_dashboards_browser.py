"""The rendered dashboards page in a real browser: headless Chromium (Debian's `chromium`)
opens it from disk; every panel must have drawn, with no error text and no network request.

The page itself has no script. To see what the browser drew, a test-only wrapper page
frames it and measures it (sizes, path lengths, table rows) with a script; `--dump-dom`
returns the result. Chromium's net log shows any request a page makes (the browser's own
background requests, with no page as initiator, are left aside), and
--host-resolver-rules keeps anything from leaving the machine.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import cli_run
from cli_run import ok
from marketlake.dashboards.render import load_dashboards, panels_of, render_dashboards
from marketlake.lake import raw
from marketlake.storage import LocalStore

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        CHROMIUM is None, reason="headless Chromium is missing: apt-get install chromium"
    ),
]
DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
ERROR_TEXT = re.compile(r"Traceback|Error|error:|Exception|NaN|undefined|No data")

MEASURE = """<!DOCTYPE html><html><body>
<iframe id="page" src="PAGE" style="width:1600px;height:3200px;border:0"></iframe>
<pre id="result">not measured</pre>
<script>
window.addEventListener("load", () => {
  const out = {panels: []};
  try {
    const doc = document.getElementById("page").contentDocument;
    for (const p of doc.querySelectorAll("section.panel")) {
      const box = p.getBoundingClientRect();
      const svg = p.querySelector("svg.chart");
      const chart = svg ? svg.getBoundingClientRect() : null;
      out.panels.push({
        title: p.dataset.title, type: p.dataset.panelType, width: box.width, height: box.height,
        chart: chart ? [chart.width, chart.height] : null,
        paths: [...p.querySelectorAll("path.series")].map((x) => x.getTotalLength()),
        points: p.querySelectorAll("circle.point").length,
        rows: [...p.querySelectorAll("tbody tr")]
          .filter((tr) => tr.getBoundingClientRect().height > 0).length,
        text: p.innerText,
      });
    }
    out.text = doc.body.innerText;
  } catch (e) { out.error = String(e); }
  document.getElementById("result").textContent = JSON.stringify(out);
});
</script></body></html>
"""


def chromium(tmp: Path, name: str, url: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{name}"  # a new, empty profile each run
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"chromium exit {result.returncode}\n{result.stderr[-2000:]}"
    return result


def page_requests(net_log: Path) -> list[str]:
    """URLs of the requests a page made (its initiator is an origin); the browser's own
    background requests have no initiating origin."""
    log = json.loads(net_log.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    params = [e.get("params") or {} for e in log["events"] if e["type"] == start]
    return sorted(
        {p["url"] for p in params if "url" in p and p.get("initiator") != "not an origin"}
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


# -- a lake built by the local pipeline, with a quarantined bar ----------------------------


def marketlake(cwd: Path, *args: str, env: dict | None = None) -> str:
    return ok(cli_run.marketlake(cwd, *args, env=env))


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("user")
    marketlake(cwd, "run", "--as-of", "2024-06-28", "--tickers", "NVDA,AMD")
    now = dt.datetime.now(dt.timezone.utc)
    bars = pd.DataFrame(  # two sessions and a holiday, which the build quarantines
        {
            "trade_date": [dt.date(2024, 7, 1), dt.date(2024, 7, 2), dt.date(2024, 7, 4)],
            "open": [120.0, 124.0, 126.0],
            "high": [125.0, 126.0, 128.0],
            "low": [119.0, 122.0, 125.0],
            "close": [124.0, 123.0, 127.0],
            "volume": [1_000_000, 1_100_000, 500_000],
        }
    )
    frame = raw.bars_to_frame("NVDA", bars, "synthetic", raw.format_timestamp(now))
    LocalStore(cwd / "lake").put_bytes(raw.raw_key(now.date(), "NVDA"), raw.frame_to_csv(frame))
    marketlake(cwd, "build", env={"MARKETLAKE_MAX_BAD_ROW_PCT": "50"})
    return render_dashboards(cwd / "lake", watchlist=("NVDA", "AMD"))  # as `run` passes them


def test_every_panel_draws_in_chromium_with_no_error_and_no_request(page, tmp_path):
    wrapper = page.parent / "measure.html"
    wrapper.write_text(MEASURE.replace("PAGE", page.name), encoding="utf-8")
    net_log = tmp_path / "net-log.json"
    try:
        dom = chromium(
            tmp_path,
            "measure",
            wrapper.as_uri(),
            "--allow-file-access-from-files",  # lets the wrapper look into the framed page
            "--window-size=1700,1200",
            f"--log-net-log={net_log}",
            "--dump-dom",
        ).stdout
    finally:
        wrapper.unlink()
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the measuring page did not run"
    result = json.loads(html.unescape(found.group(1)))
    assert "error" not in result, result.get("error")

    expected = [
        (p["title"], p["type"])
        for d in load_dashboards(DASHBOARDS)
        for p in panels_of(d)
        if p["type"] != "row"  # a row is a heading of the grid, not a panel section
    ]
    assert [(p["title"], p["type"]) for p in result["panels"]] == expected
    for panel in result["panels"]:
        title = panel["title"]
        assert panel["width"] > 200 and panel["height"] > 150, title
        if panel["type"] == "timeseries":
            width, height = panel["chart"]
            assert width > 200 and height > 80, f"{title}: chart of {width}x{height}"
            assert sum(panel["paths"]) > 0 or panel["points"] > 0, f"{title}: nothing drawn"
        else:
            assert panel["rows"] >= 1, f"{title}: a table with no rows"
    assert not ERROR_TEXT.search(result["text"]), ERROR_TEXT.search(result["text"]).group()
    assert page_requests(net_log) == []
    # The corporate actions, as shown: NVDA's 10:1 split and its May dividend in the range.
    shown = {p["title"]: p for p in result["panels"]}
    actions = shown["Splits and dividends"]
    assert actions["rows"] >= 2, actions
    assert re.search(r"NVDA\s+2024-06-10\s+split\s+10\.00", actions["text"]), actions["text"]
    assert re.search(r"NVDA\s+2024-05-10\s+dividend\s+\$8\.00", actions["text"]), actions["text"]
    price = shown["Split-adjusted close with SMA 20 and SMA 50"]["text"]
    assert "NVDA SMA 20" in price and "NVDA close" not in price  # adjusted only
    assert "dividend_yield_ttm" in shown["Latest bar per symbol"]["text"]
    # The breadth row: its heading, and its movers: NVDA alone has a bar on the last session.
    assert "Market breadth" in result["text"]
    movers = shown["Top movers, last session"]
    assert movers["rows"] == 1 and re.search(r"(gainer|loser)\s+1\s+NVDA", movers["text"])


def test_the_request_check_sees_a_page_that_fetches(tmp_path):
    fetching = tmp_path / "fetching.html"
    fetching.write_text('<img src="http://example.invalid/logo.png">', encoding="utf-8")
    net_log = tmp_path / "net-log.json"
    chromium(tmp_path, "control", fetching.as_uri(), f"--log-net-log={net_log}", "--dump-dom")
    assert page_requests(net_log) == ["http://example.invalid/logo.png"]


def test_screenshot(page, tmp_path):
    shot = tmp_path / "dashboards.png"
    chromium(tmp_path, "shot", page.as_uri(), "--window-size=1600,2700", f"--screenshot={shot}")
    assert png_size(shot) == (1600, 2700)
    assert shot.stat().st_size > 100_000  # a blank page compresses to a few KB
