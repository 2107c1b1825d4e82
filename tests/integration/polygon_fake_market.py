"""The deterministic market polygon_fake_server serves: N tickers (some spelled like BRK.B
or KIMpL) on XNYS sessions, each bar a closed-form function of (ticker, session), splits and
dividends; computed lazily and vectorised with numpy.

Self-contained (stdlib, numpy, marketlake.sessions), like the server that imports it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

from marketlake.sessions import sessions_between

EASTERN = ZoneInfo("America/New_York")
FIXED_TICKERS = ["AAPL", "BRK.B", "MSFT", "KIMpL", "NVDA", "BF.B", "GOOGL", "TSLA"]


def make_tickers(n: int) -> list[str]:
    """n distinct tickers: a few real spellings, then AAA.. with every 37th a class share
    (X.B) and every 53rd a preferred (XpA), as Polygon spells them."""
    names, seen = [], set()
    for name in FIXED_TICKERS[:n]:
        names.append(name)
        seen.add(name)
    k = 0
    while len(names) < n:
        k += 1
        letters, m = "", k + 26 * 27  # three letters and up
        while m:
            m, r = divmod(m - 1, 26)
            letters = chr(65 + r) + letters
        name = f"{letters}.B" if k % 37 == 0 else f"{letters}pA" if k % 53 == 0 else letters
        if name not in seen:
            names.append(name)
            seen.add(name)
    return names


def _uniform(i: np.ndarray, j: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Deterministic uniforms in [0, 1) per (ticker, session, k): splitmix64 of the three."""
    with np.errstate(over="ignore"):
        x = i.astype(np.uint64) * np.uint64(1_000_003) + j.astype(np.uint64) * np.uint64(7919)
        x = x + np.uint64(k * 104_729 + seed) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def _ms(day: dt.date, hour: int) -> int:
    moment = dt.datetime(day.year, day.month, day.day, hour, tzinfo=EASTERN)
    return int(moment.timestamp() * 1000)


class Market:
    """Tickers, sessions, bars, splits and dividends: all a function of the arguments."""

    def __init__(self, tickers: int, start: dt.date, end: dt.date, seed: int) -> None:
        self.tickers = make_tickers(tickers)
        self.position = {t: i for i, t in enumerate(self.tickers)}
        self.sessions = sessions_between(start, end)
        self.index = {d: j for j, d in enumerate(self.sessions)}
        self.seed = seed
        rng = np.random.default_rng(seed)
        n = len(self.tickers)
        self.base = rng.uniform(5.0, 400.0, n)
        self.amp = rng.uniform(0.05, 0.3, n)
        self.freq = rng.uniform(0.005, 0.05, n)
        self.phase = rng.uniform(0.0, 2 * np.pi, n)
        self.volume = rng.integers(10_000, 5_000_000, n)
        s = len(self.sessions)
        # (ticker, session index, split_from, split_to): forward, reverse and 3-for-2.
        plan = [(0, s // 3, 1, 4), (2, 2 * s // 3, 10, 1), (5, s // 2, 2, 3)]
        self.splits = [p for p in plan if p[0] < n and 0 < p[1] < s]
        # (ticker, session index, cash, currency, type): quarterly, a special, a CAD one.
        dividends = [(0, q, 0.24, "USD", "CD") for q in range(5, s, 63)]
        dividends += [(1, q, 0.5, "USD", "CD") for q in range(20, s, 126)]
        dividends += [(1, s // 2 + 3, 2.0, "USD", "SC"), (3, s // 4, 0.33, "CAD", "CD")]
        self.dividends = sorted((d for d in dividends if d[0] < n and d[1] < s), key=lambda d: d[1])

    def _factor(self, i: np.ndarray, j: np.ndarray, adjusted: bool) -> np.ndarray:
        """What the bar's prices are divided by: the splits executed by its session (or by
        the last session, when adjusted)."""
        factor = np.ones(np.broadcast(i, j).shape)
        last = len(self.sessions)
        for ticker, at, low, high in self.splits:
            done = (i == ticker) & ((last if adjusted else j) >= at)
            factor = np.where(done, factor * high / low, factor)
        return factor

    def bars(self, i: np.ndarray, j: np.ndarray, adjusted: bool = False) -> dict:
        u = [_uniform(i, j, k, self.seed) for k in range(5)]
        factor = self._factor(i, j, adjusted)
        mid = self.base[i] * np.exp(self.amp[i] * np.sin(self.phase[i] + self.freq[i] * j))
        mid = mid / factor
        o = np.round(mid * (1 + 0.02 * (u[0] - 0.5)), 4)
        c = np.round(mid * (1 + 0.02 * (u[1] - 0.5)), 4)
        h = np.round(np.maximum(o, c) * (1 + 0.01 * u[2]), 4)
        lo = np.round(np.minimum(o, c) * (1 - 0.01 * u[3]), 4)
        v = np.floor(self.volume[i] * (0.5 + u[4]) * factor / self._factor(i, j, False))
        return {"o": o, "h": h, "l": lo, "c": c, "v": v.astype(np.int64)}

    def actions(self, kind: str) -> list[dict]:
        """Every split or dividend (`kind`), as the reference endpoints send them."""
        out = []
        for i, j, *rest in self.splits if kind == "splits" else self.dividends:
            day, common = self.sessions[j], {"id": f"E{i:04d}{j:04d}", "ticker": self.tickers[i]}
            if kind == "splits":
                out.append({"execution_date": day.isoformat(), "split_from": rest[0], **common})
                out[-1]["split_to"] = rest[1]
                continue
            dates = {"declaration_date": -20, "pay_date": 14, "record_date": 1}
            row = {k: (day + dt.timedelta(days=n)).isoformat() for k, n in dates.items()}
            row.update({"cash_amount": rest[0], "currency": rest[1], "dividend_type": rest[2]})
            row.update({"ex_dividend_date": day.isoformat(), "frequency": 4, **common})
            out.append(row)
        return out

    def rows(self, i: np.ndarray, j: np.ndarray, t: list[int], adjusted: bool, with_t: bool):
        bars = self.bars(i, j, adjusted)
        columns = {k: a.tolist() for k, a in bars.items()}
        out = []
        for n, (ti, o, h, lo, c, v) in enumerate(
            zip(i.tolist(), columns["o"], columns["h"], columns["l"], columns["c"], columns["v"])
        ):
            # Polygon sends some volumes as floats (642646396.0): every 4th ticker here.
            row = {"v": float(v) if ti % 4 == 0 else v, "vw": round((h + lo + c) / 3, 4)}
            row.update({"o": o, "c": c, "h": h, "l": lo, "t": t[n], "n": 1 + v // 500})
            out.append({"T": self.tickers[ti], **row} if with_t else row)
        return out
