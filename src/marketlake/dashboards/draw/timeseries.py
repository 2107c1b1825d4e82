"""The time series panel: its series as an inline SVG line chart over the dashboard's time
range, with axes, grid, thresholds and a legend."""

from __future__ import annotations

import math

from marketlake.dashboards.draw.axes import axis_range, nice_ticks, tick_labels, time_ticks
from marketlake.dashboards.draw.common import DASHES, PALETTE, color, esc
from marketlake.dashboards.draw.fields import field_config
from marketlake.dashboards.draw.frames import Series
from marketlake.dashboards.draw.units import format_number

# Grafana's default width of a legend placed right of the chart, in pixels.
RIGHT_LEGEND_WIDTH = 220


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


def line_chart(
    panel: dict,
    items: list[Series],
    is_date: bool,
    width: int,
    height: int,
    x_range: tuple[float, float] | None = None,
) -> str:
    """One panel's series as an SVG line chart over the dashboard's time range (as Grafana
    draws it), with axes, grid, thresholds and a legend (HTML beside or below the SVG, so it
    wraps or scrolls on its own). Returns the HTML for the panel body."""
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
        low, high = axis_range(members, config)
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
        axis_label = config.get("custom.axisLabel")
        if axis_label:
            cx = 12 if side == "left" else width - 8
            cy = pad_t + plot_h / 2
            parts.append(
                f'<text class="axis-label" x="{cx}" y="{cy:.1f}" text-anchor="middle" '
                f'transform="rotate(-90 {cx} {cy:.1f})">{esc(axis_label)}</text>'
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
                dashes = ' stroke-dasharray="6 4"' if "dashed" in style else ""
                parts.append(
                    f'<line class="threshold" x1="{pad_l}" y1="{sy(value):.1f}" '
                    f'x2="{pad_l + plot_w}" y2="{sy(value):.1f}" '
                    f'stroke="{shade or "#8E8E8E"}"{dashes}/>'
                )
    # Series.
    by_labels: dict = {}
    legend = []
    for index, item in enumerate(items):
        side_axis = next(a for a in axes if item in a[1])
        sy = scaler(side_axis[3], side_axis[4])
        stroke = _series_color(index, item, by_labels)
        dash = _dash(item)
        segments: list[list[tuple[float, float]]] = []
        current: list[tuple[float, float]] = []
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
    return "".join(parts) + legend_html(legend_options(panel), legend)


def legend_options(panel: dict) -> dict:
    """The panel's legend options as Grafana reads them: list or table, bottom or right."""
    legend = (panel.get("options") or {}).get("legend") or {}
    return {
        "show": legend.get("showLegend", True) and legend.get("displayMode") != "hidden",
        "table": legend.get("displayMode") == "table",
        "right": legend.get("placement") == "right",
        "width": int(legend.get("width") or RIGHT_LEGEND_WIDTH),
    }


def legend_html(options: dict, legend: list) -> str:
    """Every series' entry, none cut off: a list that wraps (bottom), or a table (Grafana's
    table mode) that scrolls inside its own area; page.css puts a right legend below the chart
    on a narrow screen."""
    if not options["show"]:
        return ""
    entries = []
    for stroke, dash, name, last, unit, decimals in legend:
        line = f'stroke="{stroke}" stroke-width="3"' + (' stroke-dasharray="4 3"' if dash else "")
        swatch = (
            f'<svg class="swatch" viewBox="0 0 16 6"><line x1="0" y1="3" x2="16" y2="3" {line}/>'
            "</svg>"
        )
        value = "" if last is None else format_number(last, unit, decimals)
        entries.append((swatch, name, value))
    if options["table"]:
        rows = "".join(
            f'<tr class="legend-item"><td>{swatch}{esc(name)}</td>'
            f'<td class="num legend-value">{esc(value)}</td></tr>'
            for swatch, name, value in entries
        )
        body = '<table class="legend-table"><thead><tr><th>Name</th><th class="num">Last</th>'
        body += f"</tr></thead><tbody>{rows}</tbody></table>"
    else:
        body = "".join(
            f'<span class="legend-item">{swatch}{esc(name)}'
            f'<span class="legend-value">{esc(value)}</span></span>'
            for swatch, name, value in entries
        )
    place = "legend-right" if options["right"] else "legend-bottom"
    width = f' style="flex-basis:{options["width"]}px"' if options["right"] else ""
    return f'<div class="legend {place}"{width}>{body}</div>'
