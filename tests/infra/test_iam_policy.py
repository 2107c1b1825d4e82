"""The rehearsal's IAM evaluator on known cases, each checked against AWS's documented rules
(policy evaluation logic, Resource wildcards, condition operators)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import iam_policy
import pytest
from iam_policy import Request, evaluate, parse_document

BUCKET = "arn:aws:s3:::marketlake-lake-123456789012-us-east-1"
RAW_OBJECT = f"{BUCKET}/raw/daily_prices/ingest_date=2024-01-02/NVDA.csv"
STATE_OBJECT = f"{BUCKET}/state/x"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:marketlake/alphavantage-AbCdEf"
TOPIC = "arn:aws:sns:us-east-1:123456789012:marketlake-alerts"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", sid: str = "A", **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource, **extra}


def cond(operator: str, keys: dict[str, Any], resource: str = "*") -> list[dict[str, Any]]:
    return [doc(allow("s3:ListBucket", resource, Condition={operator: keys}))]


LIST_RAW = cond("StringLike", {"s3:prefix": ["raw/daily_prices/", "raw/daily_prices/*"]}, BUCKET)


def list_req(**context: Any) -> Request:
    return Request("s3:ListBucket", BUCKET, context)


# (documents, request, allowed, deciding statement)
CASES: dict[str, tuple[list[Any], Request, bool, str | None]] = {
    "exact allow": (
        [doc(allow("s3:GetObject", RAW_OBJECT, sid="Get"))],
        Request("s3:GetObject", RAW_OBJECT),
        True,
        "Get",
    ),
    "exact action, other action": (
        [doc(allow("s3:GetObject", RAW_OBJECT))],
        Request("s3:PutObject", RAW_OBJECT),
        False,
        None,
    ),
    "action prefix wildcard": (
        [doc(allow("s3:Get*", f"{BUCKET}/*"))],
        Request("s3:GetObjectVersion", RAW_OBJECT),
        True,
        "A",
    ),
    "action prefix wildcard, other verb": (
        [doc(allow("s3:Get*", f"{BUCKET}/*"))],
        Request("s3:PutObject", RAW_OBJECT),
        False,
        None,
    ),
    "service wildcard": ([doc(allow("s3:*"))], Request("s3:PutObject", RAW_OBJECT), True, "A"),
    "service wildcard, other service": (
        [doc(allow("s3:*"))],
        Request("glue:GetTable", "*"),
        False,
        None,
    ),
    "everything": ([doc(allow("*"))], Request("athena:StartQueryExecution", "*"), True, "A"),
    "action ? wildcard": (
        [doc(allow("s3:GetObjec?"))],
        Request("s3:GetObject", RAW_OBJECT),
        True,
        "A",
    ),
    "action case-insensitive": (
        [doc(allow("S3:getobject", RAW_OBJECT))],
        Request("s3:GetObject", RAW_OBJECT),
        True,
        "A",
    ),
    "resource wildcard across /": (
        [doc(allow("s3:GetObject", f"{BUCKET}/raw/*"))],
        Request("s3:GetObject", RAW_OBJECT),
        True,
        "A",
    ),
    "resource wildcard, other prefix": (
        [doc(allow("s3:GetObject", f"{BUCKET}/raw/*"))],
        Request("s3:GetObject", STATE_OBJECT),
        False,
        None,
    ),
    "resource case-sensitive": (
        [doc(allow("s3:GetObject", f"{BUCKET}/RAW/*"))],
        Request("s3:GetObject", RAW_OBJECT),
        False,
        None,
    ),
    "resource list": (
        [doc(allow("s3:GetObject", [f"{BUCKET}/state/*", f"{BUCKET}/raw/*"]))],
        Request("s3:GetObject", RAW_OBJECT),
        True,
        "A",
    ),
    "resource * across colons": (
        [doc(allow("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:*"))],
        Request("secretsmanager:GetSecretValue", SECRET),
        True,
        "A",
    ),
    "bucket ARN does not grant objects": (
        [doc(allow("s3:GetObject", BUCKET))],
        Request("s3:GetObject", RAW_OBJECT),
        False,
        None,
    ),
    "object ARN does not grant the bucket": (
        [doc(allow("s3:ListBucket", f"{BUCKET}/*"))],
        Request("s3:ListBucket", BUCKET),
        False,
        None,
    ),
    "ARN pattern does not match resource *": (
        [doc(allow("glue:GetDatabases", f"{BUCKET}*"))],
        Request("glue:GetDatabases", "*"),
        False,
        None,
    ),
    "deny in another document beats allow": (
        [
            doc(allow("s3:*", f"{BUCKET}/*")),
            {"Statement": {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"}},
        ],
        Request("s3:PutObject", RAW_OBJECT),
        False,
        "#1.0",
    ),
    "deny of another action leaves allow": (
        [
            doc(
                allow("s3:*", f"{BUCKET}/*"),
                {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"},
            )
        ],
        Request("s3:PutObject", RAW_OBJECT),
        True,
        "A",
    ),
    "NotAction allows the rest": (
        [doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})],
        Request("sns:Publish", TOPIC),
        True,
        "#0.0",
    ),
    "NotAction excludes its own": (
        [doc({"Effect": "Allow", "NotAction": ["iam:*", "s3:Delete*"], "Resource": "*"})],
        Request("s3:DeleteObject", RAW_OBJECT),
        False,
        None,
    ),
    "NotResource allows elsewhere": (
        [doc({"Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET}/state/*"})],
        Request("s3:GetObject", RAW_OBJECT),
        True,
        "#0.0",
    ),
    "NotResource excludes its own": (
        [doc({"Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET}/state/*"})],
        Request("s3:GetObject", STATE_OBJECT),
        False,
        None,
    ),
    "implicit deny with no documents": ([], Request("s3:GetObject", RAW_OBJECT), False, None),
    "StringLike prefix under raw": (
        LIST_RAW,
        list_req(**{"s3:prefix": "raw/daily_prices/ingest_date=2024-01-02/"}),
        True,
        "A",
    ),
    "StringLike exact prefix": (
        LIST_RAW,
        list_req(**{"s3:prefix": "raw/daily_prices/"}),
        True,
        "A",
    ),
    "StringLike other prefix": (LIST_RAW, list_req(**{"s3:prefix": "state/"}), False, None),
    "StringLike key absent": (LIST_RAW, list_req(), False, None),
    "condition key case-insensitive": (
        LIST_RAW,
        list_req(**{"S3:Prefix": "raw/daily_prices/"}),
        True,
        "A",
    ),
    "StringEquals list is OR": (
        cond("StringEquals", {"s3:prefix": ["state/", "raw/"]}),
        list_req(**{"s3:prefix": "raw/"}),
        True,
        "A",
    ),
    "StringEquals has no wildcards": (
        cond("StringEquals", {"s3:prefix": "raw/*"}),
        list_req(**{"s3:prefix": "raw/x"}),
        False,
        None,
    ),
    "two keys are AND, both hold": (
        cond("StringEquals", {"s3:prefix": "raw/", "s3:delimiter": "/"}),
        list_req(**{"s3:prefix": "raw/", "s3:delimiter": "/"}),
        True,
        "A",
    ),
    "two keys are AND, one fails": (
        cond("StringEquals", {"s3:prefix": "raw/", "s3:delimiter": "/"}),
        list_req(**{"s3:prefix": "raw/"}),
        False,
        None,
    ),
    "StringNotEquals NOR, other value": (
        cond("StringNotEquals", {"s3:prefix": ["state/", "audit/"]}),
        list_req(**{"s3:prefix": "raw/"}),
        True,
        "A",
    ),
    "StringNotEquals NOR, listed value": (
        cond("StringNotEquals", {"s3:prefix": ["state/", "audit/"]}),
        list_req(**{"s3:prefix": "audit/"}),
        False,
        None,
    ),
    "negated operator, key absent, is true": (
        cond("StringNotLike", {"s3:prefix": "state/*"}),
        list_req(),
        True,
        "A",
    ),
    "StringEqualsIgnoreCase": (
        cond("StringEqualsIgnoreCase", {"s3:prefix": "RAW/"}),
        list_req(**{"s3:prefix": "raw/"}),
        True,
        "A",
    ),
    "Bool true": (
        cond("Bool", {"aws:SecureTransport": "true"}),
        list_req(**{"aws:SecureTransport": True}),
        True,
        "A",
    ),
    "Bool false": (
        cond("Bool", {"aws:SecureTransport": True}),
        list_req(**{"aws:SecureTransport": "false"}),
        False,
        None,
    ),
    "Null true, key absent": (cond("Null", {"s3:prefix": "true"}), list_req(), True, "A"),
    "Null true, key present": (
        cond("Null", {"s3:prefix": "true"}),
        list_req(**{"s3:prefix": "raw/"}),
        False,
        None,
    ),
    "Null false, key present": (
        cond("Null", {"s3:prefix": "false"}),
        list_req(**{"s3:prefix": "raw/"}),
        True,
        "A",
    ),
    "ArnLike matches": (
        cond("ArnLike", {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/*"}),
        list_req(**{"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/marketlake"}),
        True,
        "A",
    ),
    "ArnLike checks each part": (
        cond("ArnLike", {"aws:SourceArn": "arn:aws:events:*:123456789012:rule/*"}),
        list_req(**{"aws:SourceArn": "arn:aws:events:us-east-1:999999999999:rule/marketlake"}),
        False,
        None,
    ),
    "ArnLike * stays within its part": (
        cond("ArnLike", {"aws:SourceArn": "arn:aws:events:*:123456789012:rule/*"}),
        list_req(**{"aws:SourceArn": "arn:aws:events:us-east-1:999999999999:123456789012:rule/x"}),
        False,
        None,
    ),
    "ArnNotEquals other account": (
        cond("ArnNotEquals", {"aws:SourceArn": "arn:aws:events:*:123456789012:*"}),
        list_req(**{"aws:SourceArn": "arn:aws:events:us-east-1:999999999999:rule/x"}),
        True,
        "A",
    ),
    "IfExists, key absent": (
        cond("StringEqualsIfExists", {"s3:prefix": "raw/"}),
        list_req(),
        True,
        "A",
    ),
    "IfExists, key present and wrong": (
        cond("StringEqualsIfExists", {"s3:prefix": "raw/"}),
        list_req(**{"s3:prefix": "state/"}),
        False,
        None,
    ),
    "NumericLessThanEquals": (
        cond("NumericLessThanEquals", {"s3:max-keys": "1000"}),
        list_req(**{"s3:max-keys": "1000"}),
        True,
        "A",
    ),
    "NumericGreaterThan fails": (
        cond("NumericGreaterThan", {"s3:max-keys": "1000"}),
        list_req(**{"s3:max-keys": "10"}),
        False,
        None,
    ),
    "ForAnyValue, one matches": (
        cond("ForAnyValue:StringEquals", {"aws:TagKeys": ["project", "owner"]}),
        list_req(**{"aws:TagKeys": ["cost", "project"]}),
        True,
        "A",
    ),
    "ForAnyValue, key absent": (
        cond("ForAnyValue:StringEquals", {"aws:TagKeys": ["project"]}),
        list_req(),
        False,
        None,
    ),
    "ForAnyValue negated, key absent": (
        cond("ForAnyValue:StringNotEquals", {"aws:TagKeys": ["project"]}),
        list_req(),
        False,
        None,
    ),
    "ForAllValues negated, every value unlisted": (
        cond("ForAllValues:StringNotLike", {"aws:TagKeys": "key1*"}),
        list_req(**{"aws:TagKeys": ["key2:audit"]}),
        True,
        "A",
    ),
    "ForAllValues negated, one value listed": (
        cond("ForAllValues:StringNotLike", {"aws:TagKeys": "key1*"}),
        list_req(**{"aws:TagKeys": ["key2:audit", "key1:hr"]}),
        False,
        None,
    ),
    "ForAllValues, all match": (
        cond("ForAllValues:StringLike", {"aws:TagKeys": ["project", "owner*"]}),
        list_req(**{"aws:TagKeys": ["project", "owner-team"]}),
        True,
        "A",
    ),
    "ForAllValues, one does not": (
        cond("ForAllValues:StringLike", {"aws:TagKeys": ["project", "owner*"]}),
        list_req(**{"aws:TagKeys": ["project", "cost"]}),
        False,
        None,
    ),
    "ForAllValues, key absent is vacuously true": (
        cond("ForAllValues:StringEquals", {"aws:TagKeys": ["project"]}),
        list_req(),
        True,
        "A",
    ),
    "conditioned Deny applies only when it holds": (
        [
            doc(allow("s3:ListBucket", BUCKET)),
            doc(
                {
                    "Sid": "NoState",
                    "Effect": "Deny",
                    "Action": "s3:ListBucket",
                    "Resource": BUCKET,
                    "Condition": {"StringLike": {"s3:prefix": "state/*"}},
                }
            ),
        ],
        list_req(**{"s3:prefix": "state/raw_landed/"}),
        False,
        "NoState",
    ),
}


@pytest.mark.parametrize(
    ("documents", "request_", "allowed", "statement"), CASES.values(), ids=CASES.keys()
)
def test_known_case(
    documents: list[Any], request_: Request, allowed: bool, statement: str | None
) -> None:
    decision = evaluate(documents, request_)
    assert decision.allowed is allowed, decision.reason
    assert decision.statement == statement
    if statement is None:
        assert decision.reason == "no statement allows it"
    elif allowed:
        assert decision.reason == f"allowed by statement {statement}"
    else:
        assert decision.reason == f"explicitly denied by statement {statement}"


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ({"Condition": {"StringEqualsSometimes": {"s3:prefix": "raw/"}}}, "StringEqualsSometimes"),
        ({"Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}}, "DateLessThan"),
        ({"Condition": {"ForAnyValue:Null": {"s3:prefix": "true"}}}, "ForAnyValue:Null"),
        ({"Resource": f"{BUCKET}/home/${{aws:username}}/*"}, "policy variable"),
        ({"Principal": {"AWS": "*"}}, "Principal"),
        ({"Effect": "allow"}, "Effect"),
        ({"NotAction": "iam:*"}, "exactly one of Action and NotAction"),
        ({"Action": "s3*"}, "service:action"),
    ],
)
def test_malformed_statement_raises(statement: dict[str, Any], message: str) -> None:
    base = allow("s3:ListBucket", BUCKET)
    # Raised even though the request is for another action: never silently skipped.
    with pytest.raises(ValueError, match=message.replace("$", r"\$").replace("{", r"\{")):
        evaluate([doc({**base, **statement})], Request("sns:Publish", TOPIC))


def test_multivalued_key_needs_a_set_qualifier() -> None:
    with pytest.raises(ValueError, match="ForAnyValue/ForAllValues"):
        evaluate(
            cond("StringEquals", {"aws:TagKeys": "project"}),
            list_req(**{"aws:TagKeys": ["project"]}),
        )


def test_url_encoded_document_parses_and_evaluates() -> None:
    policy = doc(allow("secretsmanager:GetSecretValue", SECRET, sid="ReadKey"))
    encoded = urllib.parse.quote(json.dumps(policy))
    assert encoded.startswith("%7B")
    assert parse_document(encoded) == policy
    assert parse_document(json.dumps(policy)) == policy
    decision = evaluate([encoded], Request("secretsmanager:GetSecretValue", SECRET))
    assert decision == iam_policy.Decision(True, "allowed by statement ReadKey", "ReadKey")


def test_document_must_be_an_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        parse_document("[]")
