"""A loopback stand-in for api.polygon.io (127.0.0.1, port 0) that speaks Polygon's shapes.

Five endpoints, as Polygon's OpenAPI spec and its Python client's fixtures show them
(polygon-io/client-python: .massive/rest.json, test_rest/mocks/v2/aggs/..., v3/reference/...):

- ``/v2/aggs/grouped/locale/us/market/stocks/{date}``: every ticker's bar for one session
  (``t`` the window's end, 16:00 Eastern); a day without trading answers OK with no results;
- ``/v2/aggs/ticker/{T}/range/1/day/{from}/{to}``: one ticker (``t`` midnight Eastern), pages
  of at most ``limit`` bars, ``next_url`` carrying a cursor and no key;
- ``/v3/reference/splits`` and ``/v3/reference/dividends``: by ``*.gte``/``*.lte`` date,
  pages of ``limit`` (default 10, at most 1000), ``next_url`` with a cursor and no key;
- ``/vX/reference/financials``: one ticker's quarterly filings (polygon_fake_financials.py),
  by ``filing_date.lte``, pages of ``limit`` (at most 100), ``next_url`` with a cursor.

The market is deterministic and synthetic (polygon_fake_market.py): each bar a closed-form
function of (ticker, session), so a session's grouped answer agrees with every per-ticker
answer.
Prices are as traded (``adjusted=false``): a split divides them from its execution date.

Self-contained (stdlib, numpy, marketlake.sessions and its two sibling modules):
infra/weekday_polygon.py imports it by path.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import http.server
import json
import threading
import time
import urllib.parse

import numpy as np
import polygon_fake_financials
from polygon_fake_market import EASTERN, Market, _ms

REQUEST_ID = "6a7e466379af0a71039d60cc78e72282"
PRICING = "https://polygon.io/pricing"
UNKNOWN_KEY = {"status": "ERROR", "request_id": REQUEST_ID, "error": "Unknown API Key"}
NO_KEY = {"status": "ERROR", "request_id": REQUEST_ID, "error": "API Key was not provided"}
BEYOND_PLAN = {
    "status": "NOT_AUTHORIZED",
    "request_id": REQUEST_ID,
    "message": "Your plan doesn't include this data timeframe. Please upgrade your plan at "
    + PRICING,
}
NOT_ENTITLED = {
    "status": "NOT_AUTHORIZED",
    "request_id": REQUEST_ID,
    "message": f"You are not entitled to this data. Please upgrade your plan at {PRICING}",
}
TOO_MANY = {
    "status": "ERROR",
    "request_id": REQUEST_ID,
    "error": "You've exceeded the maximum requests per minute, please wait or upgrade your "
    f"subscription to continue. {PRICING}",
}
HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
# Rows the vendor has been seen to send among good ones; the client must reject each.
JUNK_TICKERS = ["\x00\x01\x02\x7f", "AB\x1bC", "ÄPFEL", "BAD TICK", "", "X" * 40]
NON_NUMERIC = {"NUMX": {"o": "abc"}, "BOOLV": {"v": True}, "NULLH": {"h": None}}
MISSING_CLOSE = "MISSC"
WRONG_DAY = "WRONGDAY"
# Numeric but impossible: kept by the client, rejected by ingest's validation.
IMPOSSIBLE = {"IMPHL": {"h": 1.0, "l": 2.0}, "IMPNEG": {"o": -5.0}, "IMPVOL": {"v": -100}}


@dataclasses.dataclass
class Fault:
    """One scripted misbehaviour, served to the next request for ``endpoint`` (any when
    None): ``kind`` is "status" (``status``, ``body``, ``headers``), "truncated" (the real
    answer cut in half), "stall" (``seconds`` before the real answer) or "drop" (the
    connection closed, nothing written)."""

    kind: str
    endpoint: str | None = None
    status: int = 200
    body: str | dict = ""
    headers: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0


def throttle(retry_after: str | None = None, endpoint: str | None = None) -> Fault:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Fault("status", endpoint, 429, TOO_MANY, headers)


def server_error(status: int = 500, endpoint: str | None = None) -> Fault:
    return Fault("status", endpoint, status, {"status": "ERROR", "error": "Internal error"})


def html_page(status: int = 200, endpoint: str | None = None) -> Fault:
    return Fault("status", endpoint, status, HTML_502, {"Content-Type": "text/html"})


def reply(status: int, body: str | dict, endpoint: str | None = None) -> Fault:
    return Fault("status", endpoint, status, body)


def truncated(endpoint: str | None = None) -> Fault:
    return Fault("truncated", endpoint)


def stall(seconds: float, endpoint: str | None = None) -> Fault:
    return Fault("stall", endpoint, seconds=seconds)


def drop(endpoint: str | None = None) -> Fault:
    return Fault("drop", endpoint)


@dataclasses.dataclass
class Logged:
    """One request received: ``path`` as sent (percent-encoded), ``query`` decoded and with
    the key, for assertions (``redacted`` without it)."""

    method: str
    path: str
    endpoint: str
    query: dict

    @property
    def redacted(self) -> dict:
        return {k: ("***" if k.lower() == "apikey" else v) for k, v in self.query.items()}


def encode_cursor(fields: dict) -> str:
    text = urllib.parse.urlencode(fields)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict:
    padded = cursor + "=" * (-len(cursor) % 4)
    return dict(urllib.parse.parse_qsl(base64.urlsafe_b64decode(padded).decode()))


def _date(text: str) -> dt.date:
    """A path date: YYYY-MM-DD or a millisecond timestamp (next_url's from)."""
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, tz=EASTERN).date()
    return dt.date.fromisoformat(text)


class _Refusal(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class FakePolygon:
    """Serves the market to requests carrying ``key`` (query ``apiKey`` or a Bearer header).

    ``faults``: scripted misbehaviours, each served once, in order, to the next request of
    its endpoint. ``plan_history_start``: any request asking before it is refused (403).
    ``page_size``: at most this many results per page, whatever ``limit`` asks.
    ``junk_rows`` / ``impossible_rows``: add JUNK_TICKERS, NON_NUMERIC, MISSING_CLOSE and
    WRONG_DAY rows / IMPOSSIBLE rows to grouped answers. ``link_base``: the scheme and host
    next_url names (Polygon names its own; default: this server). ``requests``: every
    request, logged.
    """

    def __init__(
        self,
        key: str,
        tickers: int = 50,
        start: dt.date = dt.date(2023, 1, 3),
        end: dt.date = dt.date(2024, 12, 31),
        seed: int = 7,
        plan_history_start: dt.date | None = None,
        page_size: int | None = None,
        junk_rows: bool = False,
        impossible_rows: bool = False,
    ) -> None:
        self.key = key
        self.market = Market(tickers, start, end, seed)
        self.plan_history_start = plan_history_start
        self.page_size = page_size
        self.junk_rows = junk_rows
        self.impossible_rows = impossible_rows
        # False: the plan has no financials (403 "not entitled").
        self.financials_entitled = True
        self.link_base: str | None = None
        self.faults: list[Fault] = []
        self.requests: list[Logged] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep pytest output clean

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a stalled reply may still sleep at the end
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    # -- lifecycle and inspection ----------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakePolygon:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakePolygon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self, endpoint: str | None = None) -> int:
        with self._lock:
            return sum(endpoint in (None, r.endpoint) for r in self.requests)

    # -- serving ---------------------------------------------------------------------

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        split = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        path = split.path  # logged as sent; each segment decoded for routing
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        endpoint = (
            "grouped"
            if path.startswith("/v2/aggs/grouped/")
            else "aggs"
            if path.startswith("/v2/aggs/ticker/")
            else parts[-1]
            if path.startswith(("/v3/reference/", "/vX/reference/"))
            else "other"
        )
        with self._lock:
            self.requests.append(Logged("GET", path, endpoint, query))
            fault = next((f for f in self.faults if f.endpoint in (None, endpoint)), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is not None and fault.kind == "drop":
            handler.close_connection = True
            return  # the server closes the socket with nothing written
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "status":
            self._send(handler, fault.status, fault.body, fault.headers)
            return
        try:
            body = self._answer(handler, endpoint, parts, query)
            status = 200
        except _Refusal as refusal:
            status, body = refusal.status, refusal.body
        text = json.dumps(body)
        if fault is not None and fault.kind == "truncated":
            text = text[: len(text) // 2]
        self._send(handler, status, text, {})

    def _send(self, handler, status: int, body: str | dict, headers: dict) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        data = text.encode("utf-8")
        try:
            handler.send_response(status)
            if "Content-Type" not in headers:
                handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def _answer(self, handler, endpoint: str, parts: list[str], query: dict) -> dict:
        bearer = handler.headers.get("Authorization", "")
        key = query.get("apiKey") or (bearer[7:] if bearer.startswith("Bearer ") else "")
        if not key:
            raise _Refusal(401, NO_KEY)
        if key != self.key:
            raise _Refusal(401, UNKNOWN_KEY)
        if endpoint == "grouped" and len(parts) == 8:
            return self._grouped(_date(parts[7]), query)
        if endpoint == "aggs" and len(parts) == 9:
            if parts[5:7] != ["1", "day"]:
                raise _Refusal(400, {"status": "ERROR", "error": "only 1/day is served here"})
            return self._aggs(parts[3], _date(parts[7]), _date(parts[8]), query)
        if endpoint in ("splits", "dividends") and len(parts) == 3:
            return self._reference(endpoint, query)
        if endpoint == "financials" and len(parts) == 3:
            return self._financials(query)
        raise _Refusal(404, {"status": "NOT_FOUND", "message": "Not found"})

    def _check_plan(self, first: dt.date | None) -> None:
        start = self.plan_history_start
        if start is not None and (first is None or first < start):
            raise _Refusal(403, BEYOND_PLAN)

    def _grouped(self, day: dt.date, query: dict) -> dict:
        self._check_plan(day)
        adjusted = query.get("adjusted", "true") != "false"
        body = {"queryCount": 0, "resultsCount": 0, "adjusted": adjusted, "status": "OK"}
        j = self.market.index.get(day)
        if j is None:  # not a session: OK and nothing, as Polygon answers
            return {**body, "request_id": REQUEST_ID}
        i = np.arange(len(self.market.tickers))
        t = _ms(day, 16)
        rows = self.market.rows(i, np.full(len(i), j), [t] * len(i), adjusted, with_t=True)
        template = {"v": 1000, "vw": 10.0, "o": 10.0, "c": 10.0, "h": 11.0, "l": 9.0, "t": t}
        if self.junk_rows:
            rows += [{**template, "T": name} for name in JUNK_TICKERS]
            rows += [{**template, "T": name, **bad} for name, bad in NON_NUMERIC.items()]
            rows.append({k: v for k, v in {**template, "T": MISSING_CLOSE}.items() if k != "c"})
            rows.append({**template, "T": WRONG_DAY, "t": t - 86_400_000})
        if self.impossible_rows:
            rows += [{**template, "T": name, **bad} for name, bad in IMPOSSIBLE.items()]
        n = len(rows)
        return {
            **body,
            "queryCount": n,
            "resultsCount": n,
            "results": rows,
            "request_id": REQUEST_ID,
        }

    def _aggs(self, ticker: str, first: dt.date, last: dt.date, query: dict) -> dict:
        options = decode_cursor(query["cursor"]) if "cursor" in query else query
        limit = min(int(options.get("limit", 5000)), 50_000, self.page_size or 50_000)
        adjusted = options.get("adjusted", "true") != "false"
        self._check_plan(first)
        body = {"ticker": ticker, "queryCount": 0, "resultsCount": 0, "adjusted": adjusted}
        body.update({"status": "OK", "request_id": REQUEST_ID})
        position = self.market.position.get(ticker)
        days = [d for d in self.market.sessions if first <= d <= last]
        if position is None or not days:
            return body
        if options.get("sort") == "desc":
            days.reverse()
        page = days[:limit]
        j = np.array([self.market.index[d] for d in page])
        t = [_ms(d, 0) for d in page]
        rows = self.market.rows(np.full(len(j), position), j, t, adjusted, with_t=False)
        body.update({"queryCount": len(rows), "resultsCount": len(rows), "results": rows})
        if len(days) > limit:
            rest = days[limit:]
            start, end = (rest[0], last) if options.get("sort") != "desc" else (first, rest[0])
            cursor = encode_cursor(
                {k: options[k] for k in ("limit", "sort", "adjusted") if k in options}
            )
            path = f"/v2/aggs/ticker/{urllib.parse.quote(ticker, safe='')}/range/1/day"
            body["next_url"] = (
                f"{self.link_base or self.url}{path}/{_ms(start, 0)}/{end}?cursor={cursor}"
            )
        return body

    def _financials(self, query: dict) -> dict:
        if not self.financials_entitled:
            raise _Refusal(403, NOT_ENTITLED)
        options = decode_cursor(query["cursor"]) if "cursor" in query else query
        body, rest = polygon_fake_financials.page(self.market, options, self.page_size)
        if rest is not None:
            cursor = encode_cursor(rest)
            body["next_url"] = (
                f"{self.link_base or self.url}/vX/reference/financials?cursor={cursor}"
            )
        return {**body, "request_id": REQUEST_ID}

    def _reference(self, kind: str, query: dict) -> dict:
        options = decode_cursor(query["cursor"]) if "cursor" in query else query
        field = "execution_date" if kind == "splits" else "ex_dividend_date"
        gte, lte = options.get(f"{field}.gte"), options.get(f"{field}.lte")
        self._check_plan(dt.date.fromisoformat(gte) if gte else None)
        limit = max(1, min(int(options.get("limit", 10)), 1000, self.page_size or 1000))
        offset = int(options.get("offset", 0))
        rows = self.market.actions(kind)
        rows = [r for r in rows if (not gte or r[field] >= gte) and (not lte or r[field] <= lte)]
        if options.get("ticker"):
            rows = [r for r in rows if r["ticker"] == options["ticker"]]
        rows.sort(key=lambda r: r[field], reverse=options.get("order") == "desc")
        body = {"results": rows[offset : offset + limit], "status": "OK", "request_id": REQUEST_ID}
        if offset + limit < len(rows):
            kept = {k: v for k, v in options.items() if k not in ("cursor", "apiKey", "offset")}
            cursor = encode_cursor({**kept, "offset": offset + limit})
            body["next_url"] = f"{self.link_base or self.url}/v3/reference/{kind}?cursor={cursor}"
        return body
