"""The table panel: a query result as an HTML table, cells formatted, mapped and coloured
by the field config."""

from __future__ import annotations

import pyarrow as pa

from marketlake.dashboards.draw.common import color, esc
from marketlake.dashboards.draw.fields import display_name, field_config, mapped, threshold_color
from marketlake.dashboards.draw.frames import is_number, is_time
from marketlake.dashboards.draw.units import format_cell


def html_table(panel: dict, table: pa.Table) -> str:
    names = table.column_names
    kinds = {n: table.schema.field(n).type for n in names}
    configs = {}
    headers = []
    for name in names:
        kind = "number" if is_number(kinds[name]) else ("time" if is_time(kinds[name]) else "")
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
