"""A loopback stand-in for www.alphavantage.co/query (127.0.0.1, port 0).

Bodies are Alpha Vantage's real wordings, as quoted in public client code and issue
threads (see the test module's docstring for where each was checked). Alpha Vantage
sends refusals as JSON with HTTP 200 even when ``datatype=csv`` was asked for, so the
refusal bodies below serve both forms.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import threading
import time
import urllib.parse
from typing import Callable, Union

KEY_ECHO = "{key}"  # replaced by the API key the request carried, as Alpha Vantage does

NOTE_5_PER_MINUTE = {
    "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls "
    "per minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ "
    "if you would like to target a higher API call frequency."
}
INFO_BURST = {
    "Information": "Thank you for using Alpha Vantage! Please consider spreading out your "
    "free API requests more sparingly (1 request per second). You may subscribe to any of "
    "the premium plans at https://www.alphavantage.co/premium/ to lift the free key rate "
    "limit (25 requests per day), raise the per-second burst limit, and instantly unlock "
    "all premium endpoints"
}
INFO_DAILY_LIMIT = {
    "Information": f"We have detected your API key as {KEY_ECHO} and our standard API rate "
    "limit is 25 requests per day. Please subscribe to any of the premium plans at "
    "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits."
}
ERROR_INVALID_KEY = {
    "Error Message": "the parameter apikey is invalid or missing. Please claim your free API "
    "key on (https://www.alphavantage.co/support/#api-key). It should take less than 20 "
    "seconds."
}
INFO_DEMO_KEY = {
    "Information": "The **demo** API key is for demo purposes only. Please claim your free "
    "API key at (https://www.alphavantage.co/support/#api-key) to explore our full API "
    "offerings. It takes fewer than 20 seconds."
}
INFO_PREMIUM_FULL = {
    "Information": "Thank you for using Alpha Vantage! The outputsize=full parameter value is "
    "a premium feature for the TIME_SERIES_DAILY endpoint. You may subscribe to any of the "
    "premium plans at https://www.alphavantage.co/premium/ to instantly unlock all premium "
    "features"
}
INFO_PREMIUM_ENDPOINT = {
    "Information": "Thank you for using Alpha Vantage! This is a premium endpoint. You may "
    "subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to "
    "instantly unlock all premium endpoints"
}
ERROR_INVALID_SYMBOL = {
    "Error Message": "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."
}
HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)

Bar = tuple[dt.date, float, float, float, float, int]


def sample_bars(n: int = 5, start: dt.date = dt.date(2024, 1, 2)) -> list[Bar]:
    """n weekday bars, oldest first, with plausible prices."""
    bars = []
    day = start
    while len(bars) < n:
        if day.weekday() < 5:
            i = len(bars)
            base = 100.0 + i
            bars.append((day, base, base + 2.5, base - 1.25, base + 1.0, 1_000_000 + 1000 * i))
        day += dt.timedelta(days=1)
    return bars


def daily_json(symbol: str, bars: list[Bar], outputsize: str = "Compact") -> str:
    """A TIME_SERIES_DAILY JSON body: values are strings, newest first."""
    series = {
        d.isoformat(): {
            "1. open": f"{o:.4f}",
            "2. high": f"{h:.4f}",
            "3. low": f"{lo:.4f}",
            "4. close": f"{c:.4f}",
            "5. volume": str(v),
        }
        for d, o, h, lo, c, v in sorted(bars, reverse=True)
    }
    last = max(b[0] for b in bars).isoformat() if bars else ""
    body = {
        "Meta Data": {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": symbol,
            "3. Last Refreshed": last,
            "4. Output Size": outputsize,
            "5. Time Zone": "US/Eastern",
        },
        "Time Series (Daily)": series,
    }
    return json.dumps(body, indent=4)


def daily_csv(bars: list[Bar]) -> str:
    """A TIME_SERIES_DAILY datatype=csv body: CRLF line ends, newest first."""
    lines = ["timestamp,open,high,low,close,volume"]
    for d, o, h, lo, c, v in sorted(bars, reverse=True):
        lines.append(f"{d.isoformat()},{o:.4f},{h:.4f},{lo:.4f},{c:.4f},{v}")
    return "\r\n".join(lines) + "\r\n"


@dataclasses.dataclass
class Reply:
    """One scripted answer. ``drop`` closes the socket without answering; ``delay``
    sleeps (real seconds) before answering."""

    body: str | dict = ""
    status: int = 200
    content_type: str = "application/json"
    delay: float = 0.0
    drop: bool = False
    headers: dict = dataclasses.field(default_factory=dict)


Script = Union[Reply, Callable[[dict], Reply]]


class FakeAlphaVantage:
    """Serves ``replies`` in order, then ``default`` for every further request.

    Each entry is a ``Reply`` or a callable taking the request's query (a dict of
    single values) and returning one. ``requests`` records every query received, and
    ``on_request`` (if set) is called with it first: the limiter tests read their
    simulated clock there.
    """

    def __init__(self) -> None:
        self.replies: list[Script] = []
        self.default: Script = Reply(ERROR_INVALID_SYMBOL)
        self.requests: list[dict] = []
        self.on_request: Callable[[dict], None] | None = None
        self._lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep pytest output clean

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A slow reply is still sleeping when the test ends; do not wait for it.
        self._server.block_on_close = False
        # A short poll keeps shutdown (once per test) from costing the default 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/query"

    def __enter__(self) -> FakeAlphaVantage:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, query: dict) -> Reply:
        with self._lock:
            self.requests.append(query)
            script = self.replies.pop(0) if self.replies else self.default
        return script(query) if callable(script) else script

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(handler.path).query))
        if self.on_request is not None:
            self.on_request(query)
        reply = self._next(query)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            handler.close_connection = True
            return  # the server closes the socket with nothing written
        body = reply.body
        if isinstance(body, dict):
            body = json.dumps(body, indent=4)
        body = body.replace(KEY_ECHO, query.get("apikey", ""))
        data = body.encode("utf-8")
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", f"{reply.content_type}; charset=utf-8")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to answer


# -- helpers added for the ingest, Lambda and CLI tests (nothing above depends on them) --


def bars_on(days: list[dt.date], shift: float = 0.0) -> list[Bar]:
    """Plausible bars on exactly ``days`` (e.g. NYSE sessions). A day's values depend only
    on the day and ``shift``, so two answers that share a day agree about it."""
    bars = []
    for day in days:
        base = 100.0 + (day.toordinal() % 89) * 0.5 + shift
        volume = 1_000_000 + (day.toordinal() % 1000) * 10
        bars.append((day, base, base + 2.5, base - 1.25, base + 1.0, volume))
    return bars


def daily_reply(bars: list[Bar], symbol: str | None = None) -> Callable[[dict], Reply]:
    """An ok answer in the form the request asked for: CSV for ``datatype=csv``, else JSON."""

    def answer(query: dict) -> Reply:
        if query.get("datatype") == "csv":
            return Reply(daily_csv(bars), content_type="text/csv")
        return Reply(daily_json(symbol or query.get("symbol", ""), bars))

    return answer


class BySymbol:
    """A script (use it as ``FakeAlphaVantage.default``) that answers per symbol: each
    symbol's scripts in order, its last one repeated; ``fallback`` for any other symbol."""

    def __init__(self, scripts: dict, fallback: Script | None = None) -> None:
        self.queues = {
            symbol: list(entry) if isinstance(entry, (list, tuple)) else [entry]
            for symbol, entry in scripts.items()
        }
        self.fallback = Reply(ERROR_INVALID_SYMBOL) if fallback is None else fallback
        self._lock = threading.Lock()

    def __call__(self, query: dict) -> Reply:
        with self._lock:
            queue = self.queues.get(query.get("symbol", ""))
            script = self.fallback if not queue else queue.pop(0) if len(queue) > 1 else queue[0]
        return script(query) if callable(script) else script


# -- corporate actions: SPLITS and DIVIDENDS ------------------------------------------------

# Alpha Vantage's answer to a function it does not offer.
ERROR_UNKNOWN_FUNCTION = {"Error Message": "This API function (SPLITS) does not exist."}


def splits_json(symbol: str, splits: list[tuple[dt.date, float]]) -> dict:
    """A SPLITS body: {"symbol", "data": [{"effective_date", "split_factor"}]}, strings,
    newest first, as the vendor documents it."""
    return {
        "symbol": symbol,
        "data": [
            {"effective_date": d.isoformat(), "split_factor": f"{f:.4f}"}
            for d, f in sorted(splits, reverse=True)
        ],
    }


def dividends_json(symbol: str, dividends: list[tuple[dt.date, float]]) -> dict:
    """A DIVIDENDS body: {"symbol", "data": [{"ex_dividend_date", "declaration_date",
    "record_date", "payment_date", "amount"}]}, strings ("None" where unknown), newest first."""
    return {
        "symbol": symbol,
        "data": [
            {
                "ex_dividend_date": d.isoformat(),
                "declaration_date": "None",
                "record_date": (d + dt.timedelta(days=1)).isoformat(),
                "payment_date": (d + dt.timedelta(days=14)).isoformat(),
                "amount": f"{a:.4f}",
            }
            for d, a in sorted(dividends, reverse=True)
        ],
    }


class ByFunction:
    """A script that answers by the request's function: `functions` maps a function name to
    a script (a BySymbol, a Reply or a callable); `bars` answers every other function."""

    def __init__(self, bars: Script, functions: dict) -> None:
        self.bars = bars
        self.functions = functions

    def __call__(self, query: dict) -> Reply:
        script = self.functions.get(query.get("function", ""), self.bars)
        return script(query) if callable(script) else script


# -- earnings: EARNINGS ---------------------------------------------------------------------

# (fiscalDateEnding, reportedDate, reportedEPS, estimatedEPS): strings as the vendor sends
# them, "None" where it has no number.
Quarter = tuple[str, str, str, str]

IBM_QUARTERS: list[Quarter] = [
    ("2024-12-31", "2025-01-29", "3.92", "3.78"),
    ("2024-09-30", "2024-10-23", "2.30", "2.23"),
    ("2024-06-30", "2024-07-24", "2.43", "2.20"),
    ("2024-03-31", "2024-04-24", "1.68", "1.60"),
]


def earnings_json(symbol: str, quarters: list[Quarter]) -> dict:
    """An EARNINGS body in the vendor's shape: annualEarnings, then quarterlyEarnings newest
    first with the surprise fields and reportTime ("None" where the estimate is unknown)."""

    def number(text: str) -> float | None:
        return None if text == "None" else float(text)

    rows = []
    for fiscal, reported, eps, estimate in sorted(quarters, reverse=True):
        got, expected = number(eps), number(estimate)
        surprise = None if got is None or expected is None else got - expected
        share = None if surprise is None or not expected else 100 * surprise / expected
        rows.append(
            {
                "fiscalDateEnding": fiscal,
                "reportedDate": reported,
                "reportedEPS": eps,
                "estimatedEPS": estimate,
                "surprise": "None" if surprise is None else f"{surprise:.2f}",
                "surprisePercentage": "None" if share is None else f"{share:.4f}",
                "reportTime": "post-market",
            }
        )
    years: dict[str, float] = {}
    for fiscal, _, eps, _ in quarters:
        if eps != "None":
            years[fiscal[:4]] = years.get(fiscal[:4], 0.0) + float(eps)
    annual = [
        {"fiscalDateEnding": f"{year}-12-31", "reportedEPS": f"{total:.2f}"}
        for year, total in sorted(years.items(), reverse=True)
    ]
    return {"symbol": symbol, "annualEarnings": annual, "quarterlyEarnings": rows}
