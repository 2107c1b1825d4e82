"""Athena SQL in, DuckDB SQL out: sqlglot parses the one and writes the other."""

from __future__ import annotations

import logging

import sqlglot
import sqlglot.errors
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import Token, TokenType

from marketlake.errors import QueryError


def _glob_calls_anonymous(tokens: list[Token]) -> list[Token]:
    """sqlglot reads glob(...) as SQLite's glob(pattern, text) and fails on DuckDB's table
    function glob('raw/**'); its anonymous marker, a comment after the call's closing
    parenthesis, makes it a plain function call (marking tokens keeps error columns true)."""
    for i, token in enumerate(tokens[:-1]):
        if token.token_type != TokenType.GLOB or tokens[i + 1].token_type != TokenType.L_PAREN:
            continue
        depth = 0
        for after in tokens[i + 1 :]:
            depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(after.token_type, 0)
            if depth == 0:
                after.comments = [*(after.comments or []), exp.SQLGLOT_ANONYMOUS]
                break
    return tokens


def literal(text: str) -> str:
    """A SQL string literal of `text`."""
    return "'" + text.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted SQL identifier of `name`."""
    return '"' + name.replace('"', '""') + '"'


def parse(sql: str) -> list:
    """The statements of Athena-dialect `sql`; a QueryError saying where it does not parse."""
    # sqlglot logs a warning when it falls back to a bare Command (SHOW, LOAD ...): the
    # caller decides what to do with those, and a user's stderr keeps one line.
    sqlglot_log = logging.getLogger("sqlglot")
    level = sqlglot_log.level
    sqlglot_log.setLevel(logging.ERROR)
    try:
        athena = Dialect.get_or_raise("athena")
        tokens = _glob_calls_anonymous(athena.tokenize(sql))
        statements = [s for s in athena.parser().parse(tokens, sql) if s is not None]
    except sqlglot.errors.ParseError as exc:
        detail = exc.errors[0] if exc.errors else {}
        where = f" at line {detail.get('line')}, column {detail.get('col')}" if detail else ""
        message = (detail.get("description") or str(exc).splitlines()[0]).rstrip(".")
        raise QueryError(f"SQL does not parse as Athena SQL{where}: {message}") from None
    except sqlglot.errors.SqlglotError as exc:
        raise QueryError(f"SQL cannot be translated: {str(exc).splitlines()[0]}") from None
    finally:
        sqlglot_log.setLevel(level)
    for statement in statements:
        for node in statement.walk():
            if node.comments and exp.SQLGLOT_ANONYMOUS in node.comments:
                node.comments = [c for c in node.comments if c != exp.SQLGLOT_ANONYMOUS]
    return statements


def generate(statement) -> str:
    try:
        return statement.sql(dialect="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise QueryError(f"SQL cannot be translated: {str(exc).splitlines()[0]}") from None


def transpile(sql: str) -> str:
    """One Athena-dialect statement in, one DuckDB statement out."""
    statements = parse(sql)
    if len(statements) != 1:
        raise QueryError(f"expected one SQL statement, got {len(statements)}")
    return generate(statements[0])
