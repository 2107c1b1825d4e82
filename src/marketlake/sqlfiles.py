"""The shared Athena-dialect SQL under sql/: found in the repo, or inside an installed wheel."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import sqlglot
from sqlglot import exp

from marketlake.errors import MarketlakeError

_HEADER = re.compile(r"^--\s*(\w+):\s*(.+?)\s*$", re.MULTILINE)
# A SQL file starts with comments (rendered SQL with /* */ ones): still a SELECT to bind.
_LEADING_COMMENTS = re.compile(r"^(\s*(--[^\n]*(\n|$)|/\*.*?\*/))*\s*", re.DOTALL)


@lru_cache(maxsize=1)
def sql_root() -> Path:
    here = Path(__file__).resolve().parent
    # A wheel carries sql/ inside the package; a source checkout keeps it at the top.
    for candidate in (here / "sql", here.parents[1] / "sql"):
        if (candidate / "staging").is_dir():
            return candidate
    raise MarketlakeError(f"marketlake's sql/ directory is missing (looked beside {here})")


def load(relative: str) -> str:
    path = sql_root() / relative
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MarketlakeError(f"SQL file {relative} is missing from {sql_root()}") from None


@lru_cache(maxsize=64)
def _parsed(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read="athena")


def parse(sql: str) -> exp.Expr:
    """An Athena-dialect statement's tree, a fresh copy to change at will. A build binds the
    same files several times (the metrics SQL three times, a check's keys once per check):
    copying a parsed tree costs a fraction of parsing it again."""
    return _parsed(sql).copy()


def bind(sql: str, relations: dict[str, str], parameters: dict[str, Any] | None = None) -> str:
    """Replace table references by name: with another table name, or with a SELECT (which
    becomes a subquery under the old name), so one SQL file can read different inputs.

    A file with `?` parameters (Trino's prepared-statement markers) names them, in the order
    they appear, in a `-- parameters: a, b` header; each is replaced by the literal of
    parameters[name] (str, int, float, datetime.date, or None for NULL)."""
    query = parse(sql)
    names = [n.strip() for n in dict(_HEADER.findall(sql)).get("parameters", "").split(",")]
    names = [n for n in names if n]
    values = parameters or {}
    markers = [node for node in query.dfs() if isinstance(node, exp.Placeholder)]
    if len(markers) != len(names) or not set(names) <= set(values):
        raise MarketlakeError(
            f"SQL with {len(markers)} `?` marker(s) names parameters {names} in its "
            f"'-- parameters:' header, but is bound with {sorted(values)}"
        )
    for marker, name in zip(markers, names):
        marker.replace(exp.convert(values[name]))

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in relations:
            target = relations[node.name]
            alias = node.alias or node.name
            if _LEADING_COMMENTS.sub("", target).lower().startswith(("select", "with", "(")):
                inner = parse(target)
                return exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias)))
            return exp.Table(
                this=exp.to_identifier(target), alias=exp.TableAlias(this=exp.to_identifier(alias))
            )
        return node

    return query.transform(swap, copy=False).sql(dialect="athena")


def longest_lookback(sql: str, seeded: Collection[str] = ()) -> int:
    """How many earlier rows of a symbol a query's windows can reach: an incremental build
    keeps that many rows of each symbol's history before its first new bar.

    `seeded` names window columns that an incremental build continues from published state
    instead of history (rsi_14's sums, see sql/staging/daily_prices.sql): they do not count.

    Every window counts: each `n PRECEDING` frame start and each lag offset (a lag without
    an offset reaches 1 row). Within one SELECT, a frame and a lag can each reach back, so
    the SELECT reaches the longest frame plus the longest lag; a SELECT over another's
    windowed output (a CTE over a CTE) adds its reach to the other's, so the query's reach
    is the sum over its SELECTs. A window whose reach has no bound in rows (an UNBOUNDED or
    RANGE frame, a running aggregate without a frame, a lag offset that is not a number) or
    that reads later rows (lead, a FOLLOWING frame: the rows an incremental build copies
    would go stale) is a MarketlakeError."""
    query = _parsed(sql)
    frames: dict[int, int] = {}
    lags: dict[int, int] = {}
    for window in query.find_all(exp.Window):
        if isinstance(window.parent, exp.Alias) and window.parent.alias in seeded:
            continue
        scope = id(window.find_ancestor(exp.Select))
        function, spec = window.this, window.args.get("spec")
        text = window.sql(dialect="athena")
        if isinstance(function, exp.Lead):
            raise MarketlakeError(f"{text}: a window that reads later rows (lead) is not supported")
        if isinstance(function, exp.Lag):
            offset = function.args.get("offset")
            if offset is not None and not isinstance(offset, exp.Literal):
                raise MarketlakeError(f"{text}: a lag offset must be a number of rows")
            lags[scope] = max(lags.get(scope, 0), int(offset.this) if offset else 1)
            continue
        if spec is None:
            if isinstance(function, (exp.RowNumber, exp.Rank, exp.DenseRank)):
                continue
            raise MarketlakeError(f"{text}: a window without a ROWS frame reaches all history")
        if "FOLLOWING" in (spec.args.get("start_side"), spec.args.get("end_side")):
            raise MarketlakeError(f"{text}: a window that reads later rows is not supported")
        start = spec.args.get("start")
        if spec.args.get("kind") != "ROWS" or not isinstance(start, exp.Literal):
            raise MarketlakeError(f"{text}: only ROWS BETWEEN n PRECEDING frames have a bound")
        frames[scope] = max(frames.get(scope, 0), int(start.this))
    return sum(frames.get(s, 0) + lags.get(s, 0) for s in {*frames, *lags})


def output_columns(sql: str) -> list[str]:
    """The names of a query's output columns, in order."""
    query = _parsed(sql)
    if not isinstance(query, exp.Query):
        raise ValueError(f"not a query: {sql[:60]!r}")
    return list(query.named_selects)


# A row check's failing bar is excluded and quarantined; a blocking table check stops the run;
# a warning is recorded only.
Severity = Literal["row", "blocking", "warning"]


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    severity: Severity
    description: str
    sql: str  # a SELECT returning the failing rows of staging_daily_prices


def checks(kind: Literal["rows", "table"]) -> list[Check]:
    """The checks under sql/checks/KIND/: `rows` (a failing bar is excluded and quarantined)
    or `table` (blocking or warning, on the new version)."""
    allowed = {"rows": ("row",), "table": ("blocking", "warning")}[kind]
    found = []
    for path in sorted((sql_root() / "checks" / kind).glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        header = dict(_HEADER.findall(text))
        severity = header.get("severity", "")
        if severity not in allowed:
            raise MarketlakeError(
                f"{path.name}: header '-- severity:' must be {' or '.join(allowed)}"
            )
        found.append(Check(path.stem, severity, header.get("description", ""), text))
    return found


def fingerprint() -> str:
    """Changes whenever any SQL file changes, so a new metric definition forces a rebuild."""
    digest = hashlib.sha256()
    for path in sorted(sql_root().rglob("*.sql")):
        digest.update(path.relative_to(sql_root()).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
