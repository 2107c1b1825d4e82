"""What a second plan of the rehearsed stack may show only because the emulator does not model
a field, and the check of a plan against it (infra/rehearse.py, infra/weekday_polygon.py)."""

from __future__ import annotations

# address -> (the attributes that may differ, why). Any other change fails the rehearsal.
EXPECTED_DRIFT = {
    "aws_glue_trigger.start_build": (
        {"enabled"},
        "moto reports an ON_DEMAND trigger as disabled; AWS has no state to keep for it",
    ),
    'aws_s3_bucket_notification.this["lake"]': (
        {"eventbridge"},
        "moto does not return the bucket's EventBridge notification setting",
    ),
    'aws_s3_bucket_notification.this["athena_results"]': (
        {"eventbridge"},
        "moto does not return the bucket's EventBridge notification setting",
    ),
    "aws_lambda_function.ingest": (
        {"dead_letter_config"},
        "moto does not return the function's dead-letter queue",
    ),
    "aws_iam_role_policy.scheduler": (
        {"policy (known after apply)"},
        "knock-on of the Lambda's drift: its document names the function, so it is re-read at "
        "apply and the policy shows as known after apply; the text is the same",
    ),
    "aws_kms_key.main": (
        {"rotation_period_in_days"},
        "moto keeps a key's rotation on but not its period (GetKeyRotationStatus answers no "
        "RotationPeriodInDays)",
    ),
    **{
        f"aws_iam_role_policy.{name}": (
            {"policy (known after apply)"},
            "knock-on of the key's drift: the document names the key, so it is re-read at "
            "apply and the policy shows as known after apply; the text is the same",
        )
        for name in ("ingest", "glue_job", "crawler")
    },
    "aws_glue_job.wap": (
        {"execution_class"},
        "moto returns execution_class STANDARD for a Python shell job, which has none",
    ),
}


def changed_attributes(change: dict) -> set:
    """The attributes an update changes; one only known after apply is 'NAME (known after
    apply)', so a drift allowed for that reason never lets a known new value through."""
    before = change.get("before") or {}
    after = change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    changed = set()
    for name in set(before) | set(after) | set(unknown):
        if unknown.get(name) is True:
            changed.add(f"{name} (known after apply)")
        elif before.get(name) != after.get(name):
            changed.add(name)
    return changed


def unexpected_changes(plan: dict) -> list[str]:
    """Changes in a second plan that the emulator's known gaps (EXPECTED_DRIFT) do not
    explain: another resource, another action than an update, or another attribute."""
    found = []
    for resource in plan.get("resource_changes", []):
        change = resource["change"]
        actions = change["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        attributes = changed_attributes(change) if actions == ["update"] else {"/".join(actions)}
        allowed, _ = EXPECTED_DRIFT.get(resource["address"], (set(), ""))
        if not attributes <= allowed:
            found.append(f"{resource['address']} ({', '.join(sorted(attributes - allowed))})")
    return found
