"""The Engine protocol: the few operations the build needs from a SQL engine.

Only SELECT bodies are shared SQL (Athena dialect); CTAS, views and publishing are each
engine's own syntax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pandas as pd


class Engine(Protocol):
    def fetch_df(self, sql: str) -> pd.DataFrame:
        """Run an Athena-dialect query and return its rows."""

    def ctas(self, select_sql: str, location: str, partitioned_by: Sequence[str]) -> int:
        """Write the result of an Athena-dialect SELECT as Parquet at `location` (a lake key
        prefix), partitioned by the given columns; return the row count."""

    def create_or_replace_view(self, name: str, select_sql: str) -> None:
        """Create or replace a view from an Athena-dialect SELECT."""

    def publish(self, table: str, location: str, run_id: str, fingerprint: str) -> None:
        """Point `table` at the data under `location`, atomically."""

    def current_version(self, table: str) -> dict | None:
        """The published version of `table`: run_id, location, fingerprint; None if none."""
