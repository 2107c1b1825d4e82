"""The ingest as the scheduled Lambda runs it: settings from env, the key from Secrets
Manager, the lake in S3, progress saved before the Lambda's time runs out, and the Glue
workflow started only when new bars landed. lambdas/ingest/handler.py is the entry point.

What is no symbol's fault (the role denied on the lake or the secret, a KMS key refusing, a
secret with no value) fails the invocation after one ERROR line naming the resource, so the
Errors alarm, the async retry and the dead-letter queue apply."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from typing import Callable

from marketlake.aws.runtime import sdk_versions
from marketlake.config import Settings
from marketlake.errors import ConfigError, LakeUnreachable, MarketlakeError, Unreachable
from marketlake.ingest.report import SymbolStatus
from marketlake.ingest.runner import DEFERRED, FAILED, FETCHED, INVALID, run_ingest
from marketlake.lock import store_lock
from marketlake.providers.alphavantage import MAX_BACKOFF_SECONDS, TIMEOUT_SECONDS
from marketlake.redaction import redact
from marketlake.refusals import error_summary, refusal
from marketlake.sessions import parse_as_of
from marketlake.storage import S3Store, require_conditional_writes

# Seconds kept free at the end: saving state and returning the summary.
SAFETY_SECONDS = 15.0
# Symbols named per list in the run's summary (the log line); more are counted.
SUMMARY_SYMBOLS = 50


def worst_case_symbol_seconds(settings: Settings) -> float:
    """The longest one request (a symbol, or a whole-market session) can take beyond the
    limiter's first wait: every attempt timing out (TIMEOUT_SECONDS), with the backoff
    between attempts (capped at MAX_BACKOFF_SECONDS), at the provider's settings."""
    if settings.provider == "polygon":
        retries, backoff = settings.polygon_max_retries, settings.polygon_backoff_seconds
        per_minute = settings.polygon_calls_per_minute
    else:
        retries, backoff = settings.av_max_retries, settings.av_backoff_seconds
        per_minute = settings.av_calls_per_minute
    interval = 60.0 / per_minute if per_minute else 0.0  # each retry waits for the limiter
    backoffs = sum(max(min(backoff * 2**n, MAX_BACKOFF_SECONDS), interval) for n in range(retries))
    return (retries + 1) * TIMEOUT_SECONDS + backoffs


_SECRET_CACHE: dict = {}  # secret id -> key, kept across warm invocations


# What to do when Secrets Manager refuses the Lambda's role, by kind (marketlake.refusals).
_SECRET_REMEDIES = {
    "access": "grant secretsmanager:GetSecretValue on it to the ingest Lambda's role",
    "kms": "the secret's KMS key refused to decrypt it: enable the key and allow kms:Decrypt "
    "on it to the ingest Lambda's role",
    "credentials": "the ingest Lambda's role gave no valid credentials: check its execution role",
    "missing": "check ALPHAVANTAGE_SECRET_ID",
}


_WORKFLOW_REMEDIES = {
    "access": "grant glue:StartWorkflowRun on it to the ingest Lambda's role; the bars have "
    "landed, so start it by hand: aws glue start-workflow-run --name <workflow>",
    "credentials": "the ingest Lambda's role gave no valid credentials: check its execution role",
    "kms": "a KMS key refused the call: allow the ingest Lambda's role to use it",
    "missing": "check GLUE_WORKFLOW_NAME against the deployed workflow (make deploy creates it)",
}


def _read_secret(secret_id: str, client) -> str:
    """The secret's string; a clear error, naming the secret, when there is none to read."""
    try:
        answer = client.get_secret_value(SecretId=secret_id)
    except client.exceptions.ResourceNotFoundException as exc:
        # Also a secret created without a value: Secrets Manager answers "can't find the
        # specified secret value for staging label: AWSCURRENT".
        raise ConfigError(
            f"secret {secret_id}: {error_summary(exc)}; give it the Alpha Vantage key with: aws "
            f"secretsmanager put-secret-value --secret-id {secret_id} --secret-string <key> "
            "(or point ALPHAVANTAGE_SECRET_ID at the secret that holds it)"
        ) from exc
    except Exception as exc:
        kind = refusal(exc)
        if kind is None:
            raise
        raise Unreachable(
            f"secret {secret_id}", error_summary(exc), _SECRET_REMEDIES[kind]
        ) from exc
    return answer.get("SecretString") or ""  # a binary secret holds no key either


def key_secrets(env: Mapping[str, str]) -> dict[str, tuple[str, str | None]]:
    """Each provider's key: the variable the settings read it from, and the Secrets Manager
    secret that holds it in the deployed stack (terraform/secrets.tf). Read here, literally,
    so the contract tests between Terraform and code see every variable the Lambda reads."""
    return {
        "alphavantage": ("ALPHAVANTAGE_API_KEY", env.get("ALPHAVANTAGE_SECRET_ID")),
        "polygon": ("POLYGON_API_KEY", env.get("POLYGON_SECRET_ID")),
    }


def api_key_from_secret(secret_id: str, client, field: str = "ALPHAVANTAGE_API_KEY") -> str:
    """The provider's key: the secret string itself, or its JSON field `field`
    (ALPHAVANTAGE_API_KEY, POLYGON_API_KEY) or api_key."""
    vendor = "Polygon" if field.startswith("POLYGON") else "Alpha Vantage"
    if secret_id not in _SECRET_CACHE:
        text = _read_secret(secret_id, client).strip()
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        if isinstance(body, dict):
            body = body.get(field) or body.get("api_key") or ""
        if not isinstance(body, str) or not body.strip():
            raise ConfigError(
                f"secret {secret_id} holds no {vendor} key; set it with: aws "
                "secretsmanager put-secret-value --secret-id <id> --secret-string <key>"
            )
        _SECRET_CACHE[secret_id] = body.strip()
    return _SECRET_CACHE[secret_id]


def lock_holder(context) -> str:
    """What the lake's lock says while this invocation holds it: the request to look up."""
    function = getattr(context, "function_name", None) or "ingest"
    request = getattr(context, "aws_request_id", None) or "unknown"
    return f"ingest lambda {function} request {request}"


def _unbuilt_raw(store: S3Store) -> bool:
    """Raw bars newer than what the published version of daily_prices has read, or splits,
    dividends or earnings other than those it applied (a split can land on a day with no new
    bar: an exchange holiday on a weekday)."""
    from marketlake.lake.actions import build_frames
    from marketlake.lake.state import load_state
    from marketlake.wap.restate import applied_actions
    from marketlake.wap.versions import load_registry

    newest = load_state(store).newest_ingest_date
    current = load_registry(store, "daily_prices").current_version()
    if newest is None:
        return False
    if current is None or (current.raw_through or "") < newest:
        return True
    try:
        return applied_actions(build_frames(store)) != (current.actions or {})
    except LakeUnreachable:
        raise  # the role refused a read: not a damaged object, and the build would fail too
    except MarketlakeError:
        return True  # a damaged actions object: the build stops on it and says which


def run(
    event: Mapping | None,
    context,
    env: Mapping[str, str] = os.environ,
    s3=None,
    secrets=None,
    glue=None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    log: Callable[[str, dict], None] | None = None,
    log_error: Callable[[str], None] | None = None,
) -> dict:
    """One scheduled ingest; its summary. A MarketlakeError (a setting, a bad key, the lake
    or the secret refusing the role) is logged as one line through `log_error`, naming the
    resource and the remedy, then raised: the invocation fails."""
    log_error = log_error or logging.getLogger(__name__).error
    try:
        return _run(event, context, env, s3, secrets, glue, now, clock, sleep, log)
    except MarketlakeError as exc:
        # Redacted: a message may quote what the vendor answered, and that can echo the key.
        line = " ".join(str(exc).split())
        for key_name, secret_id in key_secrets(env).values():
            line = redact(line, env.get(key_name) or _SECRET_CACHE.get(secret_id or ""))
        log_error(line)
        raise


def _run(
    event: Mapping | None,
    context,
    env: Mapping[str, str],
    s3,
    secrets,
    glue,
    now: Callable[[], dt.datetime],
    clock: Callable[[], float] | None,
    sleep: Callable[[float], None] | None,
    log: Callable[[str, dict], None] | None,
) -> dict:
    log = log or (lambda message, fields: None)
    bucket = env.get("LAKE_BUCKET")
    if not bucket:
        raise ConfigError("LAKE_BUCKET is not set")
    if secrets is None or s3 is None or glue is None:
        import boto3

        secrets = secrets or boto3.client("secretsmanager")
        s3 = s3 or boto3.client("s3")
        glue = glue or boto3.client("glue")
    # Before the secret or any request of the day's quota: the state writes need an SDK
    # with S3 conditional writes, and the log says which SDK this run imported.
    require_conditional_writes(s3)
    log("sdk", sdk_versions())
    environ = dict(env)
    # Only the chosen provider's secret is read: the other may have no value.
    chosen = (env.get("MARKETLAKE_PROVIDER") or "alphavantage").strip().lower()
    secrets_of = key_secrets(env)
    key_name, secret_id = secrets_of.get(chosen, secrets_of["alphavantage"])
    if secret_id and not environ.get(key_name):
        environ[key_name] = api_key_from_secret(secret_id, secrets, key_name)
    tickers = (event or {}).get("tickers")
    settings = Settings.from_env(
        environ, tickers=",".join(tickers) if isinstance(tickers, list) else tickers
    )
    store = S3Store(bucket, env.get("LAKE_PREFIX", ""), client=s3)

    per_symbol = worst_case_symbol_seconds(settings)

    def out_of_time(next_wait: float) -> bool:
        left = context.get_remaining_time_in_millis() / 1000.0
        return left < next_wait + per_symbol + SAFETY_SECONDS

    as_of = parse_as_of((event or {}).get("as_of")) if (event or {}).get("as_of") else now()
    # Released before the workflow starts: the build it runs takes the lock next.
    with store_lock(store, lock_holder(context)):
        report = run_ingest(
            settings, store, None, as_of, now=now, out_of_time=out_of_time, clock=clock, sleep=sleep
        )
    summary = {
        "session": report.session.isoformat(),
        "provider": report.provider,
        "requests": report.requests,
        "new_bars": report.new_bars,
        "quarantined": report.quarantined,
        "sessions_waiting": report.market_waiting,
        "earnings_landed": report.earnings_landed,
        "workflow_run_id": None,
    }
    if report.earnings_off:
        summary["earnings_off"] = report.earnings_off
    statuses: tuple[tuple[str, SymbolStatus], ...] = (
        ("fetched", FETCHED),
        ("skipped", INVALID),
        ("deferred", DEFERRED),
        ("failed", FAILED),
    )
    for name, status in statuses:
        # A whole-market day fetches 10,000 symbols: the log line names a few and counts.
        symbols = [r.symbol for r in report.with_status(status)]
        summary[name] = symbols[:SUMMARY_SYMBOLS]
        if len(symbols) > SUMMARY_SYMBOLS:
            summary[f"{name}_count"] = len(symbols)
    workflow = env.get("GLUE_WORKFLOW_NAME")
    # Earnings can land on a day that brings no bar, like a split (see _unbuilt_raw).
    if workflow and (report.new_bars or report.earnings_landed or _unbuilt_raw(store)):
        # Also when an earlier invocation landed data but died before starting the build.
        try:
            started = glue.start_workflow_run(Name=workflow)
            summary["workflow_run_id"] = started["RunId"]
        except glue.exceptions.ConcurrentRunsExceededException:
            summary["workflow_run_id"] = "already running"
        except Exception as exc:
            # The bars landed but nothing will build them: fail the invocation, naming why.
            kind = refusal(exc)
            if kind is None and not isinstance(exc, glue.exceptions.EntityNotFoundException):
                raise
            raise Unreachable(
                f"Glue workflow {workflow}",
                error_summary(exc),
                _WORKFLOW_REMEDIES.get(kind or "missing", _WORKFLOW_REMEDIES["missing"]),
            ) from exc
    log("ingest finished", summary)
    return summary
