"""Evaluate identity-based IAM policies against one request, as AWS documents it.

The rehearsal asks this whether each recorded AWS call is allowed by its role's policies, so
it must fail loudly on anything it does not understand rather than guess. References:
  evaluation: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
  resources:  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
  conditions: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
  sets:       https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
"""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

ContextValue = Union[str, list[str], bool]


@dataclass(frozen=True)
class Request:
    action: str  # "s3:GetObject"
    resource: str  # an ARN, or "*" for actions without resource-level permissions
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    statement: str | None = None  # the Sid, or "#<document>.<statement>" when it has none


def parse_document(text: str) -> dict[str, Any]:
    """A policy document from JSON text; IAM's GetRolePolicy API returns it URL-encoded."""
    if text[:3].upper() == "%7B":
        text = urllib.parse.unquote(text)
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError(f"a policy document is a JSON object, not {type(document).__name__}")
    return document


def evaluate(documents: Iterable[dict[str, Any] | str], request: Request) -> Decision:
    """An explicit Deny anywhere wins, then any Allow, else the implicit deny."""
    context = {key.lower(): value for key, value in request.context.items()}
    denied: str | None = None
    allowed: str | None = None
    # Every statement is checked, so a malformed one fails even when another decides.
    for d, document in enumerate(documents):
        if isinstance(document, str):
            document = parse_document(document)
        statements = document.get("Statement")
        if isinstance(statements, dict):
            statements = [statements]
        if not isinstance(statements, list):
            raise ValueError(f"policy document {d} has no Statement list")
        for s, statement in enumerate(statements):
            if not isinstance(statement, dict):
                raise ValueError(f"policy document {d} statement {s} is not an object")
            label = str(statement.get("Sid") or f"#{d}.{s}")
            effect = _check(statement, label)
            if _applies(statement, request, context):
                if effect == "Deny" and denied is None:
                    denied = label
                elif effect == "Allow" and allowed is None:
                    allowed = label
    if denied is not None:
        return Decision(False, f"explicitly denied by statement {denied}", denied)
    if allowed is not None:
        return Decision(True, f"allowed by statement {allowed}", allowed)
    return Decision(False, "no statement allows it")


def _check(statement: dict[str, Any], label: str) -> str:
    """Reject statements this evaluator would otherwise misread; return the Effect."""
    if "${" in json.dumps(statement):
        raise ValueError(f"statement {label} uses a policy variable (${{...}}): not supported")
    if "Principal" in statement or "NotPrincipal" in statement:
        raise ValueError(f"statement {label} names a Principal: not an identity-based policy")
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise ValueError(f"statement {label} has Effect {effect!r}, not Allow or Deny")
    for a, b in (("Action", "NotAction"), ("Resource", "NotResource")):
        if (a in statement) == (b in statement):
            raise ValueError(f"statement {label} needs exactly one of {a} and {b}")
    for operator in statement.get("Condition", {}):
        _operator(operator)
    return str(effect)


def _applies(statement: dict[str, Any], request: Request, context: dict[str, Any]) -> bool:
    if "Action" in statement:
        hit = any(_action_matches(p, request.action) for p in _strings(statement["Action"]))
    else:
        hit = not any(_action_matches(p, request.action) for p in _strings(statement["NotAction"]))
    if not hit:
        return False
    if "Resource" in statement:
        hit = any(_glob(p).fullmatch(request.resource) for p in _strings(statement["Resource"]))
    else:
        patterns = _strings(statement["NotResource"])
        hit = not any(_glob(p).fullmatch(request.resource) for p in patterns)
    return hit and all(
        _operator_holds(operator, keys, context)
        for operator, keys in statement.get("Condition", {}).items()
    )


def _strings(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [_text(v) for v in values]


def _text(value: Any) -> str:
    # JSON true/false in a policy means the strings "true"/"false" to IAM.
    return str(value).lower() if isinstance(value, bool) else str(value)


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """IAM wildcards: * is any run of characters (across ':' and '/'), ? is one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _action_matches(pattern: str, action: str) -> bool:
    if pattern == "*":
        return True
    service, sep, name = pattern.partition(":")
    if not sep or not service or "*" in service or "?" in service:
        raise ValueError(f"action {pattern!r} is not 'service:action' with a literal service")
    got_service, _, got_name = action.partition(":")
    return service.lower() == got_service.lower() and bool(
        _glob(name, ignore_case=True).fullmatch(got_name)
    )


def _arn_like(pattern: str, value: str) -> bool:
    """ArnEquals/ArnLike: each of the six colon-separated parts is matched on its own."""
    want, got = pattern.split(":", 5), value.split(":", 5)
    return len(want) == len(got) == 6 and all(_glob(w).fullmatch(g) for w, g in zip(want, got))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _numeric(test: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def compare(wanted: str, got: str) -> bool:
        want, have = _number(wanted), _number(got)
        if want is None:
            raise ValueError(f"numeric condition value {wanted!r} is not a number")
        return have is not None and test(have, want)

    return compare


# base operator -> (does the policy value match the request value, is it a negated operator)
_BASE: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda w, g: w == g, False),
    "StringNotEquals": (lambda w, g: w == g, True),
    "StringEqualsIgnoreCase": (lambda w, g: w.casefold() == g.casefold(), False),
    "StringNotEqualsIgnoreCase": (lambda w, g: w.casefold() == g.casefold(), True),
    "StringLike": (lambda w, g: bool(_glob(w).fullmatch(g)), False),
    "StringNotLike": (lambda w, g: bool(_glob(w).fullmatch(g)), True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (lambda w, g: w.lower() == g.lower(), False),
    "NumericEquals": (_numeric(lambda g, w: g == w), False),
    "NumericNotEquals": (_numeric(lambda g, w: g == w), True),
    "NumericLessThan": (_numeric(lambda g, w: g < w), False),
    "NumericLessThanEquals": (_numeric(lambda g, w: g <= w), False),
    "NumericGreaterThan": (_numeric(lambda g, w: g > w), False),
    "NumericGreaterThanEquals": (_numeric(lambda g, w: g >= w), False),
}
_QUALIFIERS = ("ForAnyValue:", "ForAllValues:")


def _operator(name: str) -> tuple[str | None, str, bool]:
    """(set qualifier, base operator, IfExists) of an operator name; unknown ones raise."""
    qualifier = next((q for q in _QUALIFIERS if name.startswith(q)), None)
    base = name[len(qualifier) :] if qualifier else name
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[: -len("IfExists")]
    if base == "Null" and not qualifier and not if_exists:
        return None, base, False
    if base not in _BASE:
        raise ValueError(f"condition operator {name!r} is not supported by this evaluator")
    return qualifier, base, if_exists


def _operator_holds(name: str, keys: dict[str, Any], context: dict[str, Any]) -> bool:
    """Keys under one operator are ANDed; the values of one key are ORed (NORed if negated)."""
    qualifier, base, if_exists = _operator(name)
    for key, raw_wanted in keys.items():
        wanted = _strings(raw_wanted)
        got = context.get(key.lower())
        if base == "Null":
            absent = got is None or got == []
            holds = any(w.lower() == str(absent).lower() for w in wanted)
        elif got is None:
            # A missing key: IfExists passes it; ForAllValues is vacuously true;
            # a negated operator is true; everything else is false.
            negated = _BASE[base][1]
            holds = if_exists or qualifier == "ForAllValues:" or (negated and not qualifier)
        elif qualifier == "ForAllValues:":
            holds = all(_value_holds(base, wanted, v) for v in _as_list(got))
        elif qualifier == "ForAnyValue:":
            holds = any(_value_holds(base, wanted, v) for v in _as_list(got))
        elif isinstance(got, list):
            raise ValueError(
                f"context key {key!r} has several values: {name} needs ForAnyValue/ForAllValues"
            )
        else:
            holds = _value_holds(base, wanted, got)
        if not holds:
            return False
    return True


def _value_holds(base: str, wanted: list[str], value: Any) -> bool:
    """One request value against the policy's values: any match, or none for a negated one."""
    compare, negated = _BASE[base]
    return any(compare(w, _text(value)) for w in wanted) != negated


def _as_list(value: ContextValue) -> list[Any]:
    return value if isinstance(value, list) else [value]
