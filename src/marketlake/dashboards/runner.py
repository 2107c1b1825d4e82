"""Running a panel's or a variable's SQL on the local lake, as `marketlake query` does, once
it parses as Trino SQL and every relation it reads is in the lake (render.py and
variables.py both run through it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlglot
import sqlglot.errors
from sqlglot import exp

from marketlake import sqlfiles
from marketlake.dashboards.grafana import MacroError, TimeRange, Variable, expand
from marketlake.errors import MarketlakeError

if TYPE_CHECKING:  # imported where a page is drawn: DuckDB loads only then
    import pyarrow as pa

    from marketlake.engines.duckdb import DuckDBEngine


def relations(sql: str) -> list[str]:
    tree = sqlglot.parse_one(sql, read="athena")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return sorted({t.name for t in tree.find_all(exp.Table) if t.name not in ctes})


class Runner:
    """Runs a panel's expanded SQL as `marketlake query` does, after checking that it parses
    as Trino SQL and that every relation it reads exists in this lake."""

    def __init__(self, engine: DuckDBEngine) -> None:
        self.engine = engine
        self.views = sqlfiles.sql_root() / "views"

    def check(self, sql: str, where: str) -> None:
        try:
            sqlglot.parse(sql, read="trino", error_level=sqlglot.errors.ErrorLevel.RAISE)
        except sqlglot.errors.ParseError as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise MarketlakeError(
                f"{where}: the SQL does not parse as Athena SQL: {first}"
            ) from None
        for name in relations(sql):
            if self.engine.has_relation(name):
                continue
            if not self.engine.has_relation("daily_prices"):
                raise MarketlakeError(
                    f"{where}: nothing is published in this lake yet; run `marketlake run` first"
                )
            if (self.views / f"{name}.sql").is_file():
                raise MarketlakeError(
                    f"{where}: the view {name} is missing from this lake (sql/views/{name}.sql "
                    "is newer than the last build); run `marketlake build --force` to create it"
                )
            raise MarketlakeError(f"{where}: the panel reads {name}, which this lake does not have")

    def fetch(self, sql: str, where: str) -> pa.Table:
        self.check(sql, where)
        try:
            return self.engine.fetch_arrow(sql)
        except MarketlakeError as exc:
            raise MarketlakeError(f"{where}: {exc}") from None


def expand_at(
    sql: str, variables: dict[str, Variable], time_range: TimeRange, target: dict, where: str
) -> str:
    """grafana.expand, its error naming the panel or variable."""
    try:
        return expand(sql, variables, time_range, target)
    except MacroError as exc:
        raise MacroError(f"{where}: {exc}") from None
