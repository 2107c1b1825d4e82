"""Scales and axes of a time series chart: round value ticks and their labels, time ticks,
and the value range of an axis (soft and hard limits, as Grafana sets them)."""

from __future__ import annotations

import datetime as dt
import math

from marketlake.dashboards.draw.frames import Series
from marketlake.dashboards.draw.units import SHORT, format_number


def nice_ticks(low: float, high: float, count: int = 5, decimals: int | None = None) -> list[float]:
    """Round tick values over [low, high]; no finer than the axis' decimals allow."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    if decimals is not None:
        raw = max(raw, 10.0**-decimals)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def time_ticks(low: float, high: float, is_date: bool) -> list[tuple[float, str]]:
    start = dt.datetime.fromtimestamp(low, dt.timezone.utc)
    end = dt.datetime.fromtimestamp(high, dt.timezone.utc)
    span = (high - low) / 86400.0
    ticks = []
    if span <= 2 and not is_date:
        step = 3 if span <= 1 else 6
        moment = start.replace(minute=0, second=0, microsecond=0)
        while moment <= end:
            if moment >= start and moment.hour % step == 0:
                ticks.append((moment.timestamp(), moment.strftime("%m-%d %H:%M")))
            moment += dt.timedelta(hours=1)
        return ticks
    if span <= 120:
        step = next(s for s in (1, 2, 7, 14, 28) if span / s <= 9)
        day = start.date() + dt.timedelta(days=1 if start.time() != dt.time() else 0)
        if step >= 7:
            day += dt.timedelta(days=(7 - day.weekday()) % 7)  # Mondays
        while day <= end.date():
            moment = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
            ticks.append((moment.timestamp(), day.strftime("%b %d")))
            day += dt.timedelta(days=step)
        return ticks
    months = next(m for m in (1, 2, 3, 6, 12, 24, 60) if span / (30.4 * m) <= 8)
    year, month = start.year, start.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        moment = dt.datetime(year, month, 1, tzinfo=dt.timezone.utc)
        if moment > end:
            break
        if (year * 12 + month - 1) % months == 0:
            label = moment.strftime("%Y" if months >= 12 else ("%b %Y" if month == 1 else "%b"))
            ticks.append((moment.timestamp(), label))
    return ticks


def tick_labels(ticks: list[float], unit: str | None, decimals: int | None) -> list[str]:
    """Axis labels with as many decimals as the tick step needs (short: in the scale of the
    largest tick, e.g. 0, 10 Mil, 20 Mil)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    factor, suffix = 1.0, ""
    if unit == "short":
        largest = max(abs(t) for t in ticks) if ticks else 0.0
        factor, suffix = next(((f, x) for f, x in SHORT if largest >= f), (1.0, ""))
    elif unit == "percentunit":
        factor = 0.01
    places = max(0, -math.floor(math.log10(step / factor) + 1e-9))
    if decimals is not None:
        places = min(places, decimals)
    if unit == "short":
        return [f"{t / factor:.{places}f}{suffix}" if t else "0" for t in ticks]
    return [format_number(t, unit, places) for t in ticks]


def axis_range(items: list[Series], config: dict) -> tuple[float, float]:
    """The value range of one axis: its series' values, widened to the soft limits, then
    the hard min and max; a single value gets a band around it."""
    values = [y for s in items for y in s.ys if y is not None and math.isfinite(y)]
    low = min(values) if values else 0.0
    high = max(values) if values else 1.0
    soft_min, soft_max = config.get("custom.axisSoftMin"), config.get("custom.axisSoftMax")
    if soft_min is not None:
        low = min(low, soft_min)
    if soft_max is not None:
        high = max(high, soft_max)
    if config.get("min") is not None:
        low = config["min"]
    if config.get("max") is not None:
        high = config["max"]
    if high == low:  # one value: a band around it, not below a soft or hard minimum
        pad = abs(high) * 0.1 or 1.0
        floor = config.get("min") if config.get("min") is not None else soft_min
        low = low - pad if floor is None or low - pad >= floor else low
        high = high + pad
    return low, high
