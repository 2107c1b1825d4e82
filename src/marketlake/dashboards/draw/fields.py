"""Field config as Grafana applies it: fieldConfig.defaults, then each matching override;
display names, value mappings and threshold colours."""

from __future__ import annotations

import re

from marketlake.dashboards.draw.units import format_cell
from marketlake.errors import MarketlakeError


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
