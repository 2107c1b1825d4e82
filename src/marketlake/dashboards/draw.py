"""Drawing panels as Grafana would, in static HTML: time series as inline SVG line charts,
tables as HTML tables. No script, no font or image to fetch: the page opens from disk."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import math
import re

import pyarrow as pa

from marketlake.errors import MarketlakeError

# Grafana's classic palette, in its order.
PALETTE = [
    "#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0",
    "#508642", "#CCA300", "#447EBC", "#C15C17", "#890F02", "#0A437C", "#6D1F62", "#584477",
]  # fmt: skip
NAMED_COLORS = {
    "green": "#73BF69", "semi-dark-green": "#56A64B", "dark-green": "#37872D",
    "red": "#F2495C", "semi-dark-red": "#E02F44", "dark-red": "#C4162A",
    "orange": "#FF9830", "dark-orange": "#FA6400", "yellow": "#FADE2A", "dark-yellow": "#E0B400",
    "blue": "#5794F2", "dark-blue": "#1F60C4", "purple": "#B877D9", "dark-purple": "#8F3BB8",
    "text": "#CCCCDC", "gray": "#8E8E8E", "super-light-green": "#C8F2C2",
}  # fmt: skip
DASHES = {"dash": "8 6", "dot": "2 4"}


def color(name: str | None, fallback: str = "#CCCCDC") -> str | None:
    if not name:
        return fallback
    if name == "transparent":
        return None
    if re.fullmatch(r"#[0-9a-fA-F]{3,8}|rgba?\([\d\s.,%]+\)", name):
        return name
    return NAMED_COLORS.get(name, fallback)


def esc(value) -> str:
    return html.escape(str(value), quote=True)


# -- units (a subset of Grafana's, same look) ---------------------------------------------


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
    return str(value)


# -- field config: defaults, then matching overrides, as Grafana applies them --------------


def _regex(pattern: str) -> re.Pattern:
    match = re.fullmatch(r"/(.*)/([a-z]*)", pattern)
    if match:
        flags = re.IGNORECASE if "i" in match.group(2) else 0
        return re.compile(match.group(1), flags)
    return re.compile(pattern)


def _flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if key == "custom" and isinstance(value, dict):
            out.update({f"custom.{k}": v for k, v in value.items()})
        else:
            out[prefix + key] = value
    return out


def field_config(panel: dict, name: str, display: str, kind: str) -> dict:
    """The field's config: fieldConfig.defaults, then each override whose matcher fits
    (byName, byRegexp, byType), with custom.* keys flattened."""
    field_cfg = panel.get("fieldConfig") or {}
    merged = _flatten(dict(field_cfg.get("defaults") or {}))
    for override in field_cfg.get("overrides") or []:
        matcher = override.get("matcher") or {}
        how, option = matcher.get("id"), str(matcher.get("options", ""))
        if how == "byName":
            fits = option in (name, display)
        elif how == "byRegexp":
            pattern = _regex(option)
            fits = bool(pattern.search(display) or pattern.search(name))
        elif how == "byType":
            fits = option == kind
        else:
            raise MarketlakeError(f"field override matcher '{how}' is not supported locally")
        if fits:
            for prop in override.get("properties") or []:
                merged[prop["id"]] = prop.get("value")
    return merged


def display_name(template: str | None, field: str, labels: dict) -> str:
    if template:
        text = template.replace("${__field.name}", field)
        text = re.sub(
            r"\$\{__field\.labels\.(\w+)\}", lambda m: str(labels.get(m.group(1), "")), text
        )
        return text.strip() or field
    if not labels:
        return field
    return f"{field} {' '.join(str(v) for v in labels.values())}"


def mapped(value, mappings: list | None) -> tuple[str | None, str | None]:
    """Grafana value mappings of type 'value' (and 'range'): (text, color) or (None, None)."""
    for mapping in mappings or []:
        options = mapping.get("options") or {}
        if mapping.get("type") == "value":
            key = format_cell(value)
            if key in options:
                hit = options[key]
                return hit.get("text"), hit.get("color")
        elif mapping.get("type") == "range" and isinstance(value, (int, float)):
            low, high = options.get("from"), options.get("to")
            if (low is None or value >= low) and (high is None or value <= high):
                result = options.get("result") or {}
                return result.get("text"), result.get("color")
    return None, None


def threshold_color(value, thresholds: dict | None) -> str | None:
    steps = (thresholds or {}).get("steps") or []
    found = None
    for step in steps:
        if step.get("value") is None or (
            isinstance(value, (int, float)) and value >= step["value"]
        ):
            found = step.get("color")
    return found


# -- frames -------------------------------------------------------------------------------


def _is_time(kind: pa.DataType) -> bool:
    return pa.types.is_date(kind) or pa.types.is_timestamp(kind)


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _epoch(value) -> float:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=value.tzinfo or dt.timezone.utc).timestamp()
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.timezone.utc).timestamp()


@dataclasses.dataclass
class Series:
    field: str
    labels: dict
    name: str
    xs: list[float]
    ys: list[float | None]
    config: dict


def time_series(panel: dict, table: pa.Table, where: str) -> tuple[list[Series], bool]:
    """A format-0 result as the plugin's backend (grafana/sqlds) hands it to Grafana: the
    first DATE/TIMESTAMP column is time; a long frame (with text columns) is turned wide,
    one series per numeric column and distinct text values (labels), missing points NULL
    (FillModeNull); a wide frame gives one series per numeric column. Returns the series and
    whether the time column is a DATE."""
    names = table.column_names
    kinds = {n: table.schema.field(n).type for n in names}
    time_col = next((n for n in names if _is_time(kinds[n])), None)
    if time_col is None:
        raise MarketlakeError(
            f"{where}: a time series (format 0) needs a DATE or TIMESTAMP column; got "
            f"{', '.join(f'{n} {kinds[n]}' for n in names)}"
        )
    label_cols = [n for n in names if _is_text(kinds[n])]
    value_cols = [n for n in names if n != time_col and _is_number(kinds[n])]
    if not value_cols:
        raise MarketlakeError(f"{where}: a time series (format 0) needs a numeric column")
    times = table.column(time_col).to_pylist()
    if any(t is None for t in times):
        raise MarketlakeError(f"{where}: the time column {time_col} has NULLs")
    xs_all = [_epoch(t) for t in times]
    if label_cols and any(b < a for a, b in zip(xs_all, xs_all[1:])):
        raise MarketlakeError(
            f"{where}: rows are not in ascending {time_col} order, which the plugin needs to "
            "turn a long frame into series; add ORDER BY " + time_col
        )
    columns = {n: table.column(n).to_pylist() for n in label_cols + value_cols}
    grid = sorted(set(xs_all))
    index = {x: i for i, x in enumerate(grid)}
    series: dict[tuple, Series] = {}
    order = []
    for row, x in enumerate(xs_all):
        labels = {n: columns[n][row] for n in label_cols}
        for col in value_cols:
            key = (col, tuple(labels.items()))
            if key not in series:
                series[key] = Series(col, labels, "", grid, [None] * len(grid), {})
                order.append(key)
            value = columns[col][row]
            series[key].ys[index[x]] = None if value is None else float(value)
    out = []
    for key in sorted(order, key=lambda k: (value_cols.index(k[0]), k[1])):
        item = series[key]
        base = field_config(panel, item.field, item.field, "number")
        item.name = display_name(base.get("displayName"), item.field, item.labels)
        item.config = field_config(panel, item.field, item.name, "number")
        out.append(item)
    return out, pa.types.is_date(kinds[time_col])


# -- axes ---------------------------------------------------------------------------------


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


# -- the SVG chart ------------------------------------------------------------------------


def _series_color(index: int, item: Series, by_labels: dict) -> str:
    fixed = item.config.get("color") or {}
    if fixed.get("mode") == "fixed" and fixed.get("fixedColor"):
        return color(fixed["fixedColor"]) or PALETTE[index % len(PALETTE)]
    if item.labels:
        key = tuple(item.labels.items())
        by_labels.setdefault(key, PALETTE[len(by_labels) % len(PALETTE)])
        return by_labels[key]
    return PALETTE[index % len(PALETTE)]


def _dash(item: Series) -> str | None:
    style = item.config.get("custom.lineStyle") or {}
    if style.get("fill") in ("dash", "dot"):
        dash = style.get("dash")
        return " ".join(str(d) for d in dash) if dash else DASHES[style["fill"]]
    return None


def _axis_range(items: list[Series], config: dict) -> tuple[float, float]:
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


def line_chart(
    panel: dict,
    items: list[Series],
    is_date: bool,
    width: int,
    height: int,
    x_range: tuple[float, float] | None = None,
) -> str:
    """One panel's series as an SVG line chart over the dashboard's time range (as Grafana
    draws it), with axes, grid, thresholds and a legend (HTML, below the SVG, so it wraps).
    Returns the HTML for the panel body."""
    defaults = field_config(panel, "", "", "number")
    left = [s for s in items if s.config.get("custom.axisPlacement") != "right"]
    right = [s for s in items if s.config.get("custom.axisPlacement") == "right"]
    labelled = {s.config.get("custom.axisPlacement") == "right" for s in items
                if s.config.get("custom.axisLabel")}  # fmt: skip
    pad_l = 62 + (16 if False in labelled else 0)
    pad_r = (62 + (16 if True in labelled else 0)) if right else 14
    pad_t, pad_b = 8, 22
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    xs = [x for s in items for x in s.xs]
    x_low, x_high = x_range or (min(xs), max(xs))
    if x_high == x_low:
        x_low, x_high = x_low - 43200, x_high + 43200

    def sx(x: float) -> float:
        return pad_l + (x - x_low) / (x_high - x_low) * plot_w

    axes = []
    for side, members in (("left", left), ("right", right)):
        if not members:
            continue
        config = members[0].config
        low, high = _axis_range(members, config)
        ticks = nice_ticks(low, high, decimals=config.get("decimals"))
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 0.0
        if step and config.get("min") is None:  # out to the next round value, as Grafana
            low = math.floor(low / step + 1e-9) * step
        if step and config.get("max") is None:
            high = math.ceil(high / step - 1e-9) * step
        ticks = nice_ticks(low, high, decimals=config.get("decimals"))
        axes.append((side, members, config, low, high, [t for t in ticks if low <= t <= high]))

    def scaler(low: float, high: float):
        return lambda y: pad_t + (1.0 - (y - low) / (high - low)) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="xMidYMid meet" '
        f'role="img" aria-label="{esc(panel.get("title", ""))}">'
    ]
    # Grid and axes.
    for x, label in time_ticks(x_low, x_high, is_date):
        px = sx(x)
        parts.append(
            f'<line class="grid" x1="{px:.1f}" y1="{pad_t}" x2="{px:.1f}" y2="{pad_t + plot_h}"/>'
            f'<text class="tick" x="{px:.1f}" y="{height - 6}" text-anchor="middle">'
            f"{esc(label)}</text>"
        )
    for side, _members, config, low, high, ticks in axes:
        sy = scaler(low, high)
        labels = tick_labels(ticks, config.get("unit"), config.get("decimals"))
        for tick, text in zip(ticks, labels):
            py = sy(tick)
            if side == "left":
                parts.append(
                    f'<line class="grid" x1="{pad_l}" y1="{py:.1f}" x2="{pad_l + plot_w}" '
                    f'y2="{py:.1f}"/><text class="tick" x="{pad_l - 6}" y="{py + 4:.1f}" '
                    f'text-anchor="end">{esc(text)}</text>'
                )
            else:
                parts.append(
                    f'<text class="tick" x="{pad_l + plot_w + 6}" y="{py + 4:.1f}" '
                    f'text-anchor="start">{esc(text)}</text>'
                )
        label = config.get("custom.axisLabel")
        if label:
            cx = 12 if side == "left" else width - 8
            cy = pad_t + plot_h / 2
            parts.append(
                f'<text class="axis-label" x="{cx}" y="{cy:.1f}" text-anchor="middle" '
                f'transform="rotate(-90 {cx} {cy:.1f})">{esc(label)}</text>'
            )
    # Thresholds of the panel (drawn on the left axis, as Grafana does).
    style = (defaults.get("custom.thresholdsStyle") or {}).get("mode", "off")
    if style != "off" and axes:
        _side, _m, _config, low, high, _t = axes[0]
        sy = scaler(low, high)
        steps = (defaults.get("thresholds") or {}).get("steps") or []
        for i, step in enumerate(steps):
            shade = color(step.get("color"))
            start = low if step.get("value") is None else max(low, step["value"])
            end = high if i + 1 >= len(steps) else min(high, steps[i + 1]["value"])
            if "area" in style and shade and end > start:
                parts.append(
                    f'<rect class="threshold-area" x="{pad_l}" y="{sy(end):.1f}" '
                    f'width="{plot_w}" height="{sy(start) - sy(end):.1f}" fill="{shade}"/>'
                )
            value = step.get("value")
            if value is not None and ("line" in style or "dashed" in style) and low <= value:
                dash = ' stroke-dasharray="6 4"' if "dashed" in style else ""
                parts.append(
                    f'<line class="threshold" x1="{pad_l}" y1="{sy(value):.1f}" '
                    f'x2="{pad_l + plot_w}" y2="{sy(value):.1f}" '
                    f'stroke="{shade or "#8E8E8E"}"{dash}/>'
                )
    # Series.
    by_labels: dict = {}
    legend = []
    for index, item in enumerate(items):
        side_axis = next(a for a in axes if item in a[1])
        sy = scaler(side_axis[3], side_axis[4])
        stroke = _series_color(index, item, by_labels)
        dash = _dash(item)
        segments, current = [], []
        for x, y in zip(item.xs, item.ys):
            if y is None or not math.isfinite(y) or not x_low <= x <= x_high:
                if current:
                    segments.append(current)
                current = []
                continue
            current.append((sx(x), sy(y)))
        if current:
            segments.append(current)
        path = " ".join("M" + " L".join(f"{px:.1f},{py:.1f}" for px, py in seg) for seg in segments)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        width_attr = item.config.get("custom.lineWidth") or 1.5
        parts.append(
            f'<path class="series" d="{path}" stroke="{stroke}" stroke-width="{width_attr}" '
            f'fill="none"{dash_attr}><title>{esc(item.name)}</title></path>'
        )
        points = sum(len(seg) for seg in segments)
        show = item.config.get("custom.showPoints", "auto")
        if show == "always" or (show == "auto" and points <= 40):
            size = float(item.config.get("custom.pointSize") or 5) / 2
            parts.extend(
                f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="{size:g}" fill="{stroke}"/>'
                for seg in segments
                for px, py in seg
            )
        else:
            parts.extend(  # an isolated point between NULLs would not show as a line
                f'<circle class="point" cx="{seg[0][0]:.1f}" cy="{seg[0][1]:.1f}" r="2" '
                f'fill="{stroke}"/>'
                for seg in segments
                if len(seg) == 1
            )
        last = next((y for y in reversed(item.ys) if y is not None and math.isfinite(y)), None)
        unit, decimals = item.config.get("unit"), item.config.get("decimals")
        legend.append((stroke, dash, item.name, last, unit, decimals))
    parts.append(
        f'<rect class="frame" x="{pad_l}" y="{pad_t}" width="{plot_w}" height="{plot_h}"/>'
    )
    parts.append("</svg>")
    items_html = []
    for stroke, dash, name, last, unit, decimals in legend:
        line = f'stroke="{stroke}" stroke-width="3"' + (
            f' stroke-dasharray="{"4 3" if dash else ""}"' if dash else ""
        )
        value = "" if last is None else format_number(last, unit, decimals)
        items_html.append(
            f'<span class="legend-item"><svg class="swatch" viewBox="0 0 16 6">'
            f'<line x1="0" y1="3" x2="16" y2="3" {line}/></svg>{esc(name)}'
            f'<span class="legend-value">{esc(value)}</span></span>'
        )
    return "".join(parts) + f'<div class="legend">{"".join(items_html)}</div>'


# -- tables -------------------------------------------------------------------------------


def html_table(panel: dict, table: pa.Table) -> str:
    names = table.column_names
    kinds = {n: table.schema.field(n).type for n in names}
    configs = {}
    headers = []
    for name in names:
        kind = "number" if _is_number(kinds[name]) else ("time" if _is_time(kinds[name]) else "")
        config = field_config(panel, name, name, kind or "string")
        configs[name] = (config, kind)
        headers.append(
            f'<th class="{"num" if kind == "number" else ""}">'
            f"{esc(display_name(config.get('displayName'), name, {}))}</th>"
        )
    rows = []
    columns = [table.column(n).to_pylist() for n in names]
    for values in zip(*columns):
        cells = []
        for name, value in zip(names, values):
            config, kind = configs[name]
            text, tint = mapped(value, config.get("mappings"))
            if text is None:
                text = format_cell(value, config.get("unit"), config.get("decimals"))
            cell_type = (config.get("custom.cellOptions") or {}).get("type", "auto")
            style = ""
            if cell_type in ("color-background", "color-text"):
                tint = tint or threshold_color(value, config.get("thresholds"))
            shade = color(tint, "") if tint else None
            if shade and cell_type == "color-background":
                style = f' style="background:{shade};color:#111217"'
            elif shade:
                style = f' style="color:{shade}"'
            klass = "num" if kind == "number" else ""
            cells.append(f'<td class="{klass}"{style}>{esc(text)}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<div class="table-wrap"><table><thead><tr>{"".join(headers)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
