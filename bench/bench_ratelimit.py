"""How close the rate limiter runs to the ideal pace, on simulated time (no HTTP).

For each scenario, N symbols are ingested through the real RateLimiter, one acquire
per symbol, with a fixed simulated work time per call (the HTTP request and parsing).
It prints, measured in this one run:

- the simulated time until the last call went out, against the ideal (N - burst) / R
  minutes (the first `burst` calls go at once, then one every 60 / R seconds), and
  their ratio (target: within 5% of ideal);
- the ratio of the whole run against a fixed ``sleep(15)`` between calls, the usual
  hand-written pacing for Alpha Vantage;
- the most calls seen in any 60-second window, against R.

Run: .venv/bin/python bench/bench_ratelimit.py
"""

from __future__ import annotations

import dataclasses

from marketlake.ingest.ratelimit import QuotaExhausted, RateLimiter, SimulatedClock

BASELINE_SLEEP = 15.0


@dataclasses.dataclass
class Scenario:
    name: str
    symbols: int
    calls_per_minute: int
    calls_per_day: int
    burst: int = 1
    work_seconds: float = 0.4  # simulated HTTP round trip + parse per call


SCENARIOS = [
    Scenario("free tier, 25 symbols at 5/min, 25/day", 25, 5, 25),
    Scenario("premium, 200 symbols at 75/min, no daily cap", 200, 75, 0),
    # Why burst defaults to 1: a bucket of 5 lets 5 - 1 extra calls into one minute.
    Scenario("premium with burst 5, 200 symbols at 75/min", 200, 75, 0, burst=5),
]


def run(s: Scenario) -> dict:
    clock = SimulatedClock()
    limiter = RateLimiter(
        calls_per_minute=s.calls_per_minute,
        calls_per_day=s.calls_per_day,
        burst=s.burst,
        clock=clock.now,
        sleep=clock.sleep,
    )
    starts = []
    deferred = 0
    for _ in range(s.symbols):
        try:
            limiter.acquire()
        except QuotaExhausted:
            deferred += 1
            continue
        starts.append(clock.now())
        clock.sleep(s.work_seconds)
    made = len(starts)
    last_call = starts[-1] - starts[0]
    ideal = max(0, made - s.burst) / s.calls_per_minute * 60.0
    total = clock.now() - starts[0]
    baseline = (made - 1) * (s.work_seconds + BASELINE_SLEEP) + s.work_seconds
    window = max(sum(t0 <= t < t0 + 60.0 for t in starts) for t0 in starts)
    return {
        "made": made,
        "deferred": deferred,
        "last_call": last_call,
        "ideal": ideal,
        "ratio_ideal": last_call / ideal if ideal else float("nan"),
        "ratio_baseline": total / baseline,
        "max_per_minute": window,
    }


def main() -> None:
    print(f"rate limiter on simulated time; baseline = fixed sleep({BASELINE_SLEEP:g}) per call")
    for s in SCENARIOS:
        r = run(s)
        print(f"\n{s.name} (burst {s.burst}, {s.work_seconds:g} s work per call)")
        print(f"  calls made / deferred by the daily cap : {r['made']} / {r['deferred']}")
        print(
            f"  last call at {r['last_call'] / 60:.3f} min; ideal (N - burst)/R = "
            f"{r['ideal'] / 60:.3f} min; ratio {r['ratio_ideal']:.4f}"
        )
        print(f"  whole run vs sleep({BASELINE_SLEEP:g}) baseline: ratio {r['ratio_baseline']:.4f}")
        print(
            f"  most calls in any 60 s window: {r['max_per_minute']} (limit {s.calls_per_minute})"
        )


if __name__ == "__main__":
    main()
