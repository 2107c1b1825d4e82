"""Numbers and cells as Grafana shows them: a subset of its units (currencyUSD, percent,
percentunit, short, locale, s, suffix:/prefix:) with the same look, and auto decimals."""

from __future__ import annotations

import datetime as dt
import math


def _auto_decimals(value: float) -> int:
    size = abs(value)
    if size == 0 or size >= 1000:
        return 0
    if size >= 100:
        return 1
    if size >= 1:
        return 2
    return min(6, 2 - math.floor(math.log10(size)))


def _grouped(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def _scaled(value: float, decimals: int | None, steps: list[tuple[float, str]]) -> str:
    size = abs(value)
    for factor, suffix in steps:
        if size >= factor:
            scaled = value / factor
            places = decimals
            if places is None:  # three significant digits: 2.26 Mil, 12.3 K, 900 K
                places = 0 if abs(scaled) >= 100 else (1 if abs(scaled) >= 10 else 2)
            return f"{scaled:.{places}f}{suffix}"
    places = decimals if decimals is not None else _auto_decimals(value)
    return f"{value:.{places}f}"


SHORT = [(1e12, " Tri"), (1e9, " Bil"), (1e6, " Mil"), (1e3, " K")]


def format_number(value: float, unit: str | None = None, decimals: int | None = None) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "" if math.isnan(value) else ("∞" if value > 0 else "-∞")
    unit = unit or "none"
    if unit == "currencyUSD":
        places = 2 if decimals is None else decimals
        text = _grouped(abs(value), places)
        return f"-${text}" if value < 0 else f"${text}"
    if unit == "percentunit":
        value, unit = value * 100.0, "percent"
    if unit == "percent":
        places = decimals if decimals is not None else (1 if abs(value) >= 10 else 2)
        return f"{value:.{places}f}%"
    if unit == "short":
        return _scaled(value, decimals, SHORT)
    if unit == "locale":
        places = decimals if decimals is not None else (0 if float(value).is_integer() else 2)
        return _grouped(value, places)
    if unit == "s":
        for factor, suffix in ((86400, " day"), (3600, " hour"), (60, " min")):
            if abs(value) >= factor:
                return f"{value / factor:.1f}{suffix}"
        places = decimals if decimals is not None else (0 if float(value).is_integer() else 2)
        return f"{value:.{places}f} s"
    if unit.startswith(("suffix:", "prefix:")):
        kind, affix = unit.split(":", 1)
        number = format_number(value, "none", decimals)
        return number + affix if kind == "suffix" else affix + number
    if isinstance(value, int) and decimals is None:
        return str(value)
    places = decimals if decimals is not None else _auto_decimals(float(value))
    return f"{value:.{places}f}"


def format_cell(value, unit: str | None = None, decimals: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return format_number(value, unit, decimals)
    if isinstance(value, str) and (unit or decimals is not None):
        # Grafana formats text that reads as a number as that number (quarantine_log keeps
        # bars as received, so its prices are text).
        try:
            number = float(value)
        except ValueError:
            return value
        if math.isfinite(number):
            return format_number(number, unit, decimals)
    return str(value)
