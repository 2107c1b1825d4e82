"""Query results as Grafana's data frames: the kinds of a column, and a format-0 (time
series) result turned into series, one per numeric column and label set."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pyarrow as pa

from marketlake.dashboards.draw.fields import display_name, field_config
from marketlake.errors import MarketlakeError


def is_time(kind: pa.DataType) -> bool:
    return pa.types.is_date(kind) or pa.types.is_timestamp(kind)


def is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def is_text(kind: pa.DataType) -> bool:
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
    time_col = next((n for n in names if is_time(kinds[n])), None)
    if time_col is None:
        raise MarketlakeError(
            f"{where}: a time series (format 0) needs a DATE or TIMESTAMP column; got "
            f"{', '.join(f'{n} {kinds[n]}' for n in names)}"
        )
    label_cols = [n for n in names if is_text(kinds[n])]
    value_cols = [n for n in names if n != time_col and is_number(kinds[n])]
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
