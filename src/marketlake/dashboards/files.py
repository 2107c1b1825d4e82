"""The dashboard files (grafana/dashboards/*.json): where they are, reading them, and what
a panel's Athena target must hold for the plugin (render.py runs and draws them)."""

from __future__ import annotations

import json
from pathlib import Path

from marketlake.errors import MarketlakeError

DATASOURCE_TYPE = "grafana-athena-datasource"
TARGET_FIELDS = ("rawSQL", "format", "connectionArgs", "refId")
CONNECTION_ARGS = ("region", "catalog", "database")
FORMATS = {"timeseries": 0, "table": 1}


def default_dashboards_dir() -> Path:
    here = Path(__file__).resolve()
    # A source checkout keeps grafana/ at the top; a wheel may carry it inside the package
    # (hatch force-include "grafana/dashboards" = "marketlake/grafana/dashboards").
    top, package = here.parents[3], here.parents[1]
    for candidate in (top / "grafana" / "dashboards", package / "grafana" / "dashboards"):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    raise MarketlakeError(
        f"the Grafana dashboards (grafana/dashboards/*.json) are not beside {here.parents[1]}; "
        "run marketlake from its source checkout"
    )


def load_dashboards(directory: Path) -> list[dict]:
    files = sorted(Path(directory).glob("*.json"))
    if not files:
        raise MarketlakeError(f"no dashboard JSON files in {directory}")
    dashboards = []
    for path in files:
        try:
            dashboard = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MarketlakeError(f"{path}: not a readable dashboard JSON file ({exc})") from None
        if not isinstance(dashboard, dict) or not isinstance(dashboard.get("panels"), list):
            raise MarketlakeError(f"{path}: not a Grafana dashboard (no panels list)")
        for panel in panels_of(dashboard, ordered=False):
            grid = panel.get("gridPos") if isinstance(panel, dict) else None
            if not isinstance(grid, dict) or not all(
                isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")
            ):
                name = panel.get("title", panel.get("id")) if isinstance(panel, dict) else panel
                raise MarketlakeError(f"{path}: panel {name!r} has no gridPos x, y, w and h")
        dashboard["_file"] = path.name
        dashboards.append(dashboard)
    return dashboards


def panels_of(dashboard: dict, ordered: bool = True) -> list[dict]:
    """Every panel, collapsed rows opened, in layout order (top to bottom, left to right)."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        if isinstance(panel, dict) and panel.get("type") == "row":
            found.extend(panel.get("panels") or [])
    if not ordered:
        return found
    return sorted(found, key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))


def targets_of(panel: dict) -> list[dict]:
    return [t for t in panel.get("targets") or [] if not t.get("hide")]


def check_target(panel: dict, target: dict, where: str) -> None:
    """What the plugin needs of a target; a target without them breaks the panel."""
    missing = [f for f in TARGET_FIELDS if f not in target]
    args = target.get("connectionArgs")
    if isinstance(args, dict):
        missing += [f"connectionArgs.{a}" for a in CONNECTION_ARGS if not args.get(a)]
    if missing:
        raise MarketlakeError(f"{where}: the target lacks {', '.join(missing)}")
    for source in (panel.get("datasource"), target.get("datasource")):
        if isinstance(source, dict) and source.get("type") not in (None, DATASOURCE_TYPE):
            raise MarketlakeError(
                f"{where}: the data source is {source.get('type')}, not {DATASOURCE_TYPE}"
            )
    wanted = FORMATS.get(panel.get("type", ""))
    if wanted is not None and target["format"] != wanted:
        raise MarketlakeError(
            f"{where}: a {panel['type']} panel needs format {wanted}, the target has "
            f"{target['format']}"
        )
