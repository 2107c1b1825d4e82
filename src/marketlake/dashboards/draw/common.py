"""What every panel type draws with: Grafana's colours (its classic palette and named
colours) and HTML escaping."""

from __future__ import annotations

import html
import re

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
