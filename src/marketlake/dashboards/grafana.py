"""What Grafana and the Athena data source plugin do to a panel's rawSQL before Athena sees it.

Two stages, in the order they happen in Grafana:

1. Template variables, in the browser (Grafana's templateSrv.replace, called by the plugin's
   applyTemplateVariables): `$var`, `${var}`, `${var:format}` and `[[var]]`. A name that is
   not a variable is left alone, so the `$__macros` reach the backend.
2. Macros, in the plugin's Go backend (grafana/athena-datasource pkg/athena/macros.go on
   top of grafana/sqlds): `$__timeFilter(col)`, `$__dateFilter(col)`, `$__timeFrom()`, ...

Unlike Grafana, which sends an unknown `$name` on to Athena as a syntax error, anything left
unexpanded here raises a MacroError naming the panel and the name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal

from marketlake.errors import MarketlakeError

# Grafana's templateSrv variable pattern (public/app/features/variables/utils.ts).
VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")
ALL_VALUE = "$__all"
TIMESTAMP_FORMAT = "'yyyy-MM-dd HH:mm:ss'"  # the plugin's default $__parseTime format
GO_TIMESTAMP = "%Y-%m-%d %H:%M:%S"  # Go layout "2006-01-02 15:04:05"


class MacroError(MarketlakeError):
    """A panel's SQL uses a macro, variable or format that is unknown or misused."""


@dataclasses.dataclass(frozen=True)
class TimeRange:
    """The dashboard time range, in UTC (the plugin formats it in the Grafana server's zone,
    which is UTC in Grafana's images)."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def days(cls, first: dt.date, last: dt.date) -> TimeRange:
        """Whole days, as Grafana's `now-90d/d` .. `now/d`: from 00:00:00 to 23:59:59."""
        if first > last:
            raise MarketlakeError(f"the time range starts ({first}) after it ends ({last})")
        return cls(
            dt.datetime.combine(first, dt.time(0, 0, 0)),
            dt.datetime.combine(last, dt.time(23, 59, 59)),
        )

    def epoch_seconds(self) -> tuple[int, int]:
        utc = dt.timezone.utc
        return (
            int(self.start.replace(tzinfo=utc).timestamp()),
            int(self.end.replace(tzinfo=utc).timestamp()),
        )


@dataclasses.dataclass
class Variable:
    """A dashboard variable with its current selection. `values` holds what is selected,
    with All already expanded to every option, unless the variable has a custom all value."""

    name: str
    values: list[str]
    is_list: bool = False  # multi-value or include-All: Grafana passes an array to formats
    all_selected: bool = False
    custom_all: str | None = None

    def value(self) -> str | list[str]:
        if self.is_list:
            return list(self.values)
        return self.values[0] if self.values else ""


# -- stage 1: template variables -----------------------------------------------------------


def _sqlstring(value: str) -> str:
    # Grafana's sqlStringFormatter: ' is doubled and " becomes \" (SQL_ESCAPE_MAP).
    return "'" + re.sub(r"'|\"", lambda m: "''" if m.group() == "'" else '\\"', value) + "'"


def _quote_literal(value: str) -> str:
    # @grafana/aws-sdk quoteLiteral: the plugin's own format for a variable with no :format.
    return "'" + value.replace("'", "''") + "'"


def _each(value: str | list[str], one, sep: str = ",") -> str:
    if isinstance(value, list):
        return sep.join(one(v) for v in value)
    return one(value)


FORMATS = {
    "sqlstring": lambda v: _each(v, _sqlstring),
    "singlequote": lambda v: _each(v, lambda s: "'" + s.replace("'", "\\'") + "'"),
    "doublequote": lambda v: _each(v, lambda s: '"' + s.replace('"', '\\"') + '"'),
    "csv": lambda v: _each(v, str),
    "raw": lambda v: _each(v, str),
    "text": lambda v: _each(v, str),
    "pipe": lambda v: _each(v, str, "|"),
    "json": lambda v: json.dumps(v),
}


def format_value(value: str | list[str], fmt: str | None) -> str:
    """A variable's value in one of Grafana's formats; None is the Athena plugin's own
    interpolation (a list becomes quoted literals, a single value is inserted as is)."""
    if fmt is None:
        if isinstance(value, list):
            return ",".join(_quote_literal(v) for v in value)
        return value
    if fmt not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise MacroError(f"variable format ':{fmt}' is unknown here (known: {known})")
    return FORMATS[fmt](value)


def _global(name: str, fmt: str | None, time_range: TimeRange) -> str | None:
    """Grafana's global variables that make sense for a SQL panel: $__from and $__to."""
    if name not in ("__from", "__to"):
        return None
    moment = time_range.start if name == "__from" else time_range.end
    utc = moment.replace(tzinfo=dt.timezone.utc)
    if fmt is None:
        return str(int(utc.timestamp() * 1000))
    if fmt in ("date", "date:iso"):
        return utc.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if fmt == "date:seconds":
        return str(int(utc.timestamp()))
    raise MacroError(f"${{{name}:{fmt}}}: format '{fmt}' is unknown here (use date:iso)")


def expand_variables(sql: str, variables: dict[str, Variable], time_range: TimeRange) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if match.group(5):
            raise MacroError(f"{match.group()}: field paths of variables are not supported")
        if name in variables:
            variable = variables[name]
            if variable.all_selected and variable.custom_all is not None:
                return variable.custom_all
            return format_value(variable.value(), fmt)
        found = _global(name, fmt, time_range)
        if found is not None:
            return found
        if match.group(1) and name.startswith("__"):
            return match.group()  # a backend macro: the next stage
        raise MacroError(
            f"{match.group()}: no variable named '{name}' (this dashboard has: "
            f"{', '.join(sorted(variables)) or 'none'})"
        )

    return VARIABLE.sub(replace, sql)


# -- stage 2: the plugin's macros ---------------------------------------------------------


def _go_float(value: float) -> str:
    """Go's %v of a float64 (shortest digits; exponent form below 1e-4 or from 1e6 on):
    60 -> 60, 0.5 -> 0.5, 86400 -> 86400, 1e6 -> 1e+06."""
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    if not isinstance(exponent, int):  # "F" or "n": infinity or NaN has no digits to print
        raise ValueError(f"{value} is not a finite number")
    text = "".join(map(str, digits))
    power = len(digits) + exponent - 1
    minus = "-" if sign else ""
    if power < -4 or power >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'+' if power >= 0 else '-'}{abs(power):02d}"
    return f"{minus}{abs(value):.{max(0, len(text) - power - 1)}f}"


_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _interval_seconds(text: str) -> float:
    match = _INTERVAL.match(text.strip("'").strip())
    if not match:
        raise MacroError(f"error parsing interval {text} (use e.g. '1d', '6h', '15m')")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def _parse_time(target: str, fmt: str) -> str:
    if fmt == "":
        return target
    if fmt == TIMESTAMP_FORMAT:
        return f"TIMESTAMP {target}"
    return f"parse_datetime({target},{fmt})"


def _need(name: str, args: list[str], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not (low <= len(args) <= high) or (low and not args[0]):
        wanted = str(low) if low == high else f"{low} to {high}"
        raise MacroError(f"$__{name} expects {wanted} argument(s), got {len(args)}")


def _time_filter(tr: TimeRange, args: list[str], target: dict) -> str:
    _need("timeFilter", args, 1, 2)
    column = _parse_time(args[0], args[1] if len(args) > 1 else "")
    return (
        f"{column} BETWEEN TIMESTAMP '{tr.start.strftime(GO_TIMESTAMP)}' "
        f"AND TIMESTAMP '{tr.end.strftime(GO_TIMESTAMP)}'"
    )


def _date_filter(tr: TimeRange, args: list[str], target: dict) -> str:
    _need("dateFilter", args, 1)
    return f"{args[0]} BETWEEN date '{tr.start:%Y-%m-%d}' AND date '{tr.end:%Y-%m-%d}'"


def _unix_epoch_filter(tr: TimeRange, args: list[str], target: dict) -> str:
    _need("unixEpochFilter", args, 1)
    start, end = tr.epoch_seconds()
    return f"{args[0]} BETWEEN {start} AND {end}"


def _time_group(tr: TimeRange, args: list[str], target: dict) -> str:
    _need("timeGroup", args, 2, 3)
    seconds = _go_float(_interval_seconds(args[1]))
    column = _parse_time(args[0], args[2]) if len(args) == 3 else args[0]
    return f"FROM_UNIXTIME(FLOOR(TO_UNIXTIME({column})/{seconds})*{seconds})"


def _unix_epoch_group(tr: TimeRange, args: list[str], target: dict) -> str:
    _need("unixEpochGroup", args, 2, 3)
    seconds = _go_float(_interval_seconds(args[1]))
    column = _parse_time(args[0], args[2]) if len(args) == 3 else args[0]
    return f"FROM_UNIXTIME(FLOOR({column}/{seconds})*{seconds})"


def _parse_time_macro(tr: TimeRange, args: list[str], target: dict) -> str:
    _need("parseTime", args, 1, 2)
    return _parse_time(args[0], args[1] if len(args) == 2 else TIMESTAMP_FORMAT)


# Java-style date patterns as the plugin's $__rawTimeFrom/To read them (viant/toolbox
# DateFormatToLayout): the common tokens; anything else is copied as is.
_JAVA_TOKENS = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M")]
_JAVA_TOKENS += [("ss", "%S"), ("SSS", "000"), ("yy", "%y")]


def _raw_time(moment: dt.datetime, args: list[str]) -> str:
    pattern = args[0] if args and args[0] else TIMESTAMP_FORMAT
    out = pattern
    for token, directive in sorted(_JAVA_TOKENS, key=lambda t: -len(t[0])):
        out = out.replace(token, directive)
    return moment.strftime(out)


MACROS = {
    "dateFilter": _date_filter,
    "parseTime": _parse_time_macro,
    "unixEpochFilter": _unix_epoch_filter,
    "timeFilter": _time_filter,
    "rawTimeFrom": lambda tr, args, t: _raw_time(tr.start, args),
    "timeFrom": lambda tr, args, t: f"TIMESTAMP '{tr.start.strftime(GO_TIMESTAMP)}'",
    "timeGroup": _time_group,
    "unixEpochGroup": _unix_epoch_group,
    "rawTimeTo": lambda tr, args, t: _raw_time(tr.end, args),
    "timeTo": lambda tr, args, t: f"TIMESTAMP '{tr.end.strftime(GO_TIMESTAMP)}'",
    # grafana/sqlds DefaultMacros the plugin does not override: the query's table and column.
    "table": lambda tr, args, t: _field(t, "table"),
    "column": lambda tr, args, t: _field(t, "column"),
}


def _field(target: dict, key: str) -> str:
    if not target.get(key):
        raise MacroError(f"$__{key} needs the target's '{key}' field, which is not set")
    return str(target[key])


def expand_macros(sql: str, time_range: TimeRange, target: dict | None = None) -> str:
    """sqlds interpolate(): for each macro, every `$__name` or `$__name(args)` (arguments up
    to the first ')', split on ',' and trimmed) is replaced by what the macro returns."""
    target = target or {}
    for name, macro in MACROS.items():
        pattern = re.compile(r"\$__" + name + r"\b(?:\((.*?)\))?")
        for match in pattern.finditer(sql):
            inner = match.group(1)
            args = [] if inner is None else [a.strip() for a in inner.split(",")]
            if args == [""]:
                args = []
            sql = sql.replace(match.group(0), macro(time_range, args, target))
    left = re.search(r"\$__\w+", sql)
    if left:
        raise MacroError(
            f"{left.group()} is not a macro of the Athena data source (it has: "
            f"{', '.join('$__' + n for n in sorted(MACROS))})"
        )
    return sql


def expand(
    sql: str,
    variables: dict[str, Variable],
    time_range: TimeRange,
    target: dict | None = None,
) -> str:
    """Variables first (Grafana's frontend), then macros (the plugin's backend)."""
    return expand_macros(expand_variables(sql, variables, time_range), time_range, target)


# -- relative time ------------------------------------------------------------------------

_RELATIVE = re.compile(r"^now-(\d+)([smhdwMy])(?:/[dwMy])?$")
_DAYS = {"s": 1 / 86400, "m": 1 / 1440, "h": 1 / 24, "d": 1, "w": 7, "M": 30, "y": 365}


def span_days(dashboard: dict, default: int = 90) -> int:
    """The length of the dashboard's default time range (`time.from`, e.g. now-90d), in
    whole days."""
    text = str((dashboard.get("time") or {}).get("from", ""))
    match = _RELATIVE.match(text)
    if not match:
        return default
    return max(1, round(int(match.group(1)) * _DAYS[match.group(2)]))
