"""The Engine protocol: what the build asks of a SQL engine (DuckDBEngine, AthenaEngine).

SQL handed to an engine is shared Athena-dialect SQL naming logical relations (raw,
bars, staging_daily_prices, ...); each engine maps those names to what it has. CTAS,
views and publishing are each engine's own syntax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pandas as pd
import pyarrow as pa

# year -> location (a lake key prefix, no trailing slash): a table's partitions.
Partitions = dict[str, str]


class Engine(Protocol):
    def fetch_df(self, sql: str) -> pd.DataFrame:
        """Run an Athena-dialect query and return its rows."""

    def register_raw(self, name: str, prefix: str, since: str | None = None) -> None:
        """Make the raw CSV under `prefix` readable as `name`, every column text; with
        `since` (an ingest_date), this run reads no older partition's objects."""

    def raw_rejects(self) -> pd.DataFrame:
        """Raw rows the engine's CSV reader could not parse since register_raw, with
        raw_object, raw_line and reason; empty where the reader never rejects a row."""

    def register_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Keep a small reference table (e.g. the NYSE sessions) as `name`."""

    def register_audit(
        self, name: str, prefix: str, schema: pa.Schema, has_data: bool = True
    ) -> dict[str, str]:
        """Make the audit Parquet under `prefix` readable as `name`, empty until written;
        return the objects found unreadable (lake key -> why), which the caller sets aside."""

    def materialize(self, name: str, select_sql: str) -> int:
        """Compute a SELECT once into relation `name` for this run; return its row count."""

    def derive(self, name: str, select_sql: str) -> int:
        """Like materialize, for a relation read once or twice (a view where that is free)."""

    def alias(self, name: str, target: str) -> None:
        """Make relation `target` of this run readable as `name` too, copying nothing."""

    def attach(self, name: str, partitions: Partitions) -> None:
        """Make the Parquet partitions (value -> location) readable as `name` for this run."""

    def ctas(self, select_sql: str, location: str, partitioned_by: Sequence[str]) -> int:
        """Write a SELECT's rows as Parquet at `location`, partitioned; return the count."""

    def publish(self, table: str, partitions: Partitions) -> None:
        """Point `table` at these partitions (value -> location) in one step readers can't
        see half of; {} unpublishes it."""

    def forget_versions(self, table: str, kept: list[Partitions]) -> None:
        """Drop whatever the engine keeps per version of `table` (e.g. a table each) for the
        versions not in `kept` (a list of their partitions)."""

    def create_or_replace_view(self, name: str, select_sql: str) -> None:
        """Create or replace a view from an Athena-dialect SELECT."""
