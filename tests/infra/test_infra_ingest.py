"""The ingest Lambda and its schedule, as the issue and the code ask."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from infra_contract import (
    LAMBDA_HANDLER,
    SRC,
    TERRAFORM,
    function_node,
    module_constant,
    terraform,
)

AWS = SRC / "aws" / "lambda_ingest.py"
# The providers' shared HTTP constants, which the Lambda's time budget is computed from.
HTTP = SRC / "providers" / "http.py"


def function() -> dict:
    return terraform().resource("aws_lambda_function", "ingest")


def test_the_handler_is_the_packaged_function():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "infra_package", LAMBDA_HANDLER.parents[2] / "infra" / "package.py"
    )
    package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)
    module, _, name = function()["handler"].rpartition(".")
    assert f"{module}.py" == package.ZIP_HANDLER, "the zip's handler file and Terraform disagree"
    assert package.HANDLER == LAMBDA_HANDLER
    function_node(LAMBDA_HANDLER, name)  # raises if handler.py defines no such function


def test_runtime_concurrency_tracing_and_dead_letters():
    body = function()
    assert body["runtime"] == "python3.13"
    assert body["architectures"] == ["x86_64"]
    # No reservation unless asked for: a new account (limit 10) cannot reserve any.
    assert body["reserved_concurrent_executions"] == (
        "${var.lambda_reserved_concurrency == null ? -1 : var.lambda_reserved_concurrency}"
    )
    variable = terraform().variables["lambda_reserved_concurrency"]
    assert variable["default"] is None and variable["type"] == "number"
    assert "conditional writes" in variable["description"]
    assert body["tracing_config"] == [{"mode": "Active"}]
    assert body["dead_letter_config"] == [{"target_arn": "${aws_sqs_queue.ingest_dlq.arn}"}]
    assert body["layers"] == ["${local.sdk_pandas_layer_arn}", "${local.powertools_layer_arn}"]
    group = terraform().resource("aws_cloudwatch_log_group", "ingest")
    assert group["name"] == "/aws/lambda/${local.function_name}"
    assert group["retention_in_days"] == "${var.log_retention_days}"


def lambda_settings(variables: dict):
    """The Settings the deployed Lambda reads with these Terraform variables (defaults for
    the rest), and the pace's interval in seconds."""
    from marketlake.config import Settings

    values = {name: body.get("default") for name, body in terraform().variables.items()}
    values.update(variables)
    provider = values["data_provider"]
    prefix, short = (
        ("POLYGON", "polygon") if provider == "polygon" else ("ALPHAVANTAGE", "alphavantage")
    )
    env = {"MARKETLAKE_PROVIDER": provider, f"{prefix}_API_KEY": "k"}
    for setting in ("calls_per_minute", "max_retries", "backoff_seconds"):
        env[f"{prefix}_{setting.upper()}"] = str(values[f"{short}_{setting}"])
    per_minute = values[f"{short}_calls_per_minute"]
    return Settings.from_env(env), 60 / per_minute if per_minute else 0.0


def test_the_time_budget_in_terraform_is_the_codes():
    """aws.py stops taking requests when less than the limiter's wait + one request's worst
    case + SAFETY_SECONDS is left; Terraform mirrors that sum, for the chosen provider, to
    refuse a timeout that leaves no time to work. Its constants are the code's, and either
    provider's defaults leave room."""
    from marketlake.aws.lambda_ingest import worst_case_symbol_seconds

    tf = terraform()
    for local, path, constant in (
        ("ingest_request_timeout_seconds", HTTP, "TIMEOUT_SECONDS"),
        ("ingest_backoff_cap_seconds", HTTP, "MAX_BACKOFF_SECONDS"),
        ("ingest_safety_seconds", AWS, "SAFETY_SECONDS"),
    ):
        assert tf.locals[local] == module_constant(path, constant), f"{local} != {constant}"
    check = function()["lifecycle"][0]["precondition"][0]
    assert "var.lambda_timeout_seconds >= local.ingest_reserve_seconds" in check["condition"]

    timeout = tf.variables["lambda_timeout_seconds"]["default"]
    assert function()["timeout"] == "${var.lambda_timeout_seconds}"
    for provider in ("alphavantage", "polygon"):
        settings, wait = lambda_settings({"data_provider": provider})
        reserve = (
            wait + worst_case_symbol_seconds(settings) + module_constant(AWS, "SAFETY_SECONDS")
        )
        assert timeout <= 900 and timeout - reserve >= 300, (
            f"with {provider}'s default settings a {timeout} s Lambda keeps {reserve:.0f} s "
            "in reserve"
        )
    assert "get_remaining_time_in_millis" in AWS.read_text(encoding="utf-8")


needs_terraform = pytest.mark.skipif(
    shutil.which(os.environ.get("TF", "terraform")) is None, reason="needs Terraform on PATH"
)


@needs_terraform
@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"data_provider": "polygon"},
        # Unpaced (0): no interval, and no division by zero in Terraform.
        {"data_provider": "polygon", "polygon_calls_per_minute": 0, "polygon_max_retries": 2},
        # A retry waits for the limiter too: at 1 a minute the interval outlasts the backoffs.
        {"data_provider": "polygon", "polygon_calls_per_minute": 1, "polygon_backoff_seconds": 0.5},
        {"alphavantage_max_retries": 10, "alphavantage_backoff_seconds": 120},
    ],
    ids=["alphavantage", "polygon", "polygon-unpaced", "polygon-slow", "alphavantage-long"],
)
def test_terraform_computes_the_codes_budget_for_either_provider(tmp_path, variables):
    """ingest.tf's budget locals, evaluated by Terraform itself with these variables, equal
    worst_case_symbol_seconds of the settings the Lambda then reads."""
    import math
    import subprocess

    from marketlake.aws.lambda_ingest import SAFETY_SECONDS, worst_case_symbol_seconds

    text = (TERRAFORM / "ingest.tf").read_text(encoding="utf-8")
    start = text.index("locals {", text.index("# The time budget of"))
    block = text[start : text.index("\n}\n", start) + 3]
    (tmp_path / "budget.tf").write_text(block)
    shutil.copy(TERRAFORM / "variables.tf", tmp_path / "variables.tf")
    (tmp_path / "cli.tfrc").write_text("")
    flags = [f"-var={name}={value}" for name, value in variables.items()]
    answer = subprocess.run(
        [os.environ.get("TF", "terraform"), "console", *flags],
        input="jsonencode([local.ingest_worst_symbol_seconds, local.ingest_reserve_seconds])",
        cwd=tmp_path,
        env={
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(tmp_path / "cli.tfrc"),
            "CHECKPOINT_DISABLE": "1",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    worst, reserve = json.loads(json.loads(answer.stdout))
    settings, wait = lambda_settings(variables)
    assert worst == pytest.approx(worst_case_symbol_seconds(settings))
    assert reserve == pytest.approx(math.ceil(wait) + worst + SAFETY_SECONDS)


def test_whole_market_tickers_need_polygon():
    """tickers = ["ALL"] is the whole market (config.parse_tickers), which only Polygon
    answers: the variable's checks let it through, and the function refuses it with
    alphavantage at plan."""
    import re

    from marketlake.config import WHOLE_MARKET, parse_tickers

    assert parse_tickers(",".join(["ALL"])) == (WHOLE_MARKET,)
    (symbols, length) = terraform().variables["tickers"]["validation"]
    pattern = re.search(r'regex\("(.+?)", t\)', symbols["condition"]).group(1)
    assert re.search(pattern.replace("\\\\", "\\"), "ALL")
    assert "<= 3000" in length["condition"]
    conditions = [c["condition"] for c in function()["lifecycle"][0]["precondition"]]
    assert '${var.data_provider == "polygon" || join(",", var.tickers) != "ALL"}' in conditions


def test_the_schedule_is_weekdays_at_22_utc_with_retries_and_a_dlq():
    tf = terraform()
    assert tf.variables["schedule_expression"]["default"] == "cron(0 22 ? * MON-FRI *)"
    schedule = tf.resource("aws_scheduler_schedule", "ingest")
    assert schedule["schedule_expression"] == "${var.schedule_expression}"
    assert schedule["schedule_expression_timezone"] == "UTC"
    assert schedule["flexible_time_window"] == [{"mode": "OFF"}]
    (target,) = schedule["target"]
    assert target["arn"] == "${aws_lambda_function.ingest.arn}"
    assert target["role_arn"] == "${aws_iam_role.scheduler.arn}"
    (retry,) = target["retry_policy"]
    assert retry["maximum_retry_attempts"] >= 1
    assert target["dead_letter_config"] == [{"arn": "${aws_sqs_queue.scheduler_dlq.arn}"}]
    assert [
        s["actions"]
        for s in tf.policy_document("scheduler")
        if "lambda:InvokeFunction" in s["actions"]
    ] == [["lambda:InvokeFunction"]]


def test_the_tfvars_example_schedules_the_same_cron():
    import hcl2

    example = hcl2.loads((SRC.parents[1] / "terraform" / "terraform.tfvars.example").read_text())
    assert example["schedule_expression"].strip('"') == "cron(0 22 ? * MON-FRI *)"


def test_the_default_layers_are_built_for_the_functions_runtime():
    """The layer names carry the Python version (AWSSDKPandas-Python313,
    AWSLambdaPowertoolsPythonV3-python313-x86_64): they must follow the runtime."""
    tf = terraform()
    version = function()["runtime"].removeprefix("python").replace(".", "")  # "313"
    assert f":layer:AWSSDKPandas-Python{version}:" in tf.locals["sdk_pandas_layer_arn"]
    powertools = tf.locals["powertools_layer_arn"]
    assert f":layer:AWSLambdaPowertoolsPythonV3-python{version}-x86_64:" in powertools
    for name in ("sdk_pandas_layer_arn", "powertools_layer_arn"):
        assert "Python 3." + version[1:] in tf.variables[name]["description"]


def test_the_ingest_alarms_reach_the_encrypted_topic():
    """The Errors alarm (CloudWatch) and the Glue failure rules (EventBridge) publish to the
    alerts topic, encrypted with the project key. The key grants both services the
    statement the SNS guide gives, with no condition a service might not send."""
    import re

    text = (TERRAFORM / "kms.tf").read_text(encoding="utf-8")
    found = re.search(
        r'\{\s*Sid\s*=\s*"AlarmsAndRulesPublishToTheEncryptedTopic"(?P<body>.*?)\n\s*\},',
        text,
        re.S,
    )
    assert found, "kms.tf has no statement for the alerts topic's publishers"
    body = found.group("body")
    assert '["events.amazonaws.com", "cloudwatch.amazonaws.com"]' in body
    assert '["kms:Decrypt", "kms:GenerateDataKey*"]' in body
    assert "Condition" not in body
    alarm = terraform().resource("aws_cloudwatch_metric_alarm", "ingest_errors")
    assert alarm["alarm_actions"] == ["${aws_sns_topic.alerts.arn}"]
