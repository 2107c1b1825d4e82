"""Drawing panels as Grafana would, in static HTML: time series as inline SVG line charts,
tables as HTML tables. No script, no font or image to fetch: the page opens from disk.

One module per concern, from the bottom up: common (colours, escaping), units (numbers as
Grafana shows them), fields (field config, overrides, mappings, thresholds), frames (query
results as series), axes (ticks, labels, ranges), then one module per panel type:
timeseries and table. What the renderer uses is imported here.
"""

from marketlake.dashboards.draw.common import NAMED_COLORS, PALETTE, color, esc
from marketlake.dashboards.draw.frames import Series, time_series
from marketlake.dashboards.draw.table import html_table
from marketlake.dashboards.draw.timeseries import legend_options, line_chart
from marketlake.dashboards.draw.units import format_cell, format_number

__all__ = [
    "NAMED_COLORS",
    "PALETTE",
    "Series",
    "color",
    "esc",
    "format_cell",
    "format_number",
    "html_table",
    "legend_options",
    "line_chart",
    "time_series",
]
