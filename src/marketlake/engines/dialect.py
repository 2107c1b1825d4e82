"""Athena SQL in, DuckDB SQL out: sqlglot parses the one and writes the other."""

from __future__ import annotations

import logging
import re

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


# sqlglot's descriptions name its own classes ("Required keyword: 'expression' missing for
# <class 'sqlglot.expressions.core.Mul'>"): what they mean to someone who wrote the SQL.
_DESCRIPTIONS = (
    (re.compile(r"^Required keyword: .* missing for "), "an operand is missing"),
    (re.compile(r"^Invalid expression / Unexpected token"), "unexpected token"),
    (re.compile(r"^Expecting \)"), "expecting ) (a parenthesis is not closed)"),
)


def syntax_error(exc: sqlglot.errors.ParseError) -> str:
    """One line: where the SQL stops parsing (line, column of the token), the token with the
    one before it, and why: `syntax error at line 1, column 15 near 'FORM daily_prices':
    unexpected token`."""
    detail = exc.errors[0] if exc.errors else {}
    description = str(detail.get("description") or (str(exc).splitlines() or [""])[0])
    for pattern, plain in _DESCRIPTIONS:
        if pattern.search(description):
            description = plain
            break
    description = " ".join(description.rstrip(".").split())
    if not detail.get("line"):
        return f"syntax error: {description}"
    token = str(detail.get("highlight") or "")
    # sqlglot's column is the token's last character; people count from its first.
    column = max(1, int(detail.get("col") or 1) - len(token) + 1)
    before = str(detail.get("start_context") or "").split()
    near = " ".join([*before[-1:], *token.split()])
    at_end = "" if str(detail.get("end_context") or "").strip() else " at the end"
    return (
        f"syntax error at line {detail['line']}, column {column} near {near!r}{at_end}: "
        f"{description}"
    )


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
        raise QueryError(f"SQL does not parse as Athena SQL: {syntax_error(exc)}") from None
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
