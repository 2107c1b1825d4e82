"""infra/preflight.py: the variables Terraform will use, and the account's Lambda concurrency
check a reserved concurrency calls for.

moto does not implement lambda:GetAccountSettings, so the Lambda answers come from botocore's
Stubber, which checks them against the service model (the documented response shape); STS
is moto's."""

from __future__ import annotations

import json
import sys

import boto3
import botocore.session
import preflight
import pytest
from botocore.stub import Stubber
from moto import mock_aws

LIMITS = {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800}
USAGE = {"TotalCodeSize": 0, "FunctionCount": 0}
RESERVED = preflight.RESERVED


def lambda_client(limit: int, unreserved: int, reserved_now: int | None = None):
    """A Lambda client answering GetAccountSettings, then GetFunctionConcurrency."""
    client = botocore.session.get_session().create_client(
        "lambda", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    stub.add_response(
        "get_account_settings",
        {
            "AccountLimit": {
                **LIMITS,
                "ConcurrentExecutions": limit,
                "UnreservedConcurrentExecutions": unreserved,
            },
            "AccountUsage": USAGE,
        },
        {},
    )
    if reserved_now is None:
        stub.add_client_error(
            "get_function_concurrency", "ResourceNotFoundException", http_status_code=404
        )
    else:
        stub.add_response(
            "get_function_concurrency",
            {"ReservedConcurrentExecutions": reserved_now},
            {"FunctionName": "marketlake-ingest"},
        )
    stub.activate()
    return client, stub


# -- which value Terraform will use -------------------------------------------------------------


def test_variables_follow_terraforms_precedence(tmp_path):
    (tmp_path / "terraform.tfvars").write_text(
        'region = "eu-west-1"\nname_prefix = "lake"\nlambda_reserved_concurrency = 1\n'
    )
    (tmp_path / "terraform.tfvars.json").write_text(json.dumps({"name_prefix": "lakejson"}))
    (tmp_path / "b.auto.tfvars").write_text("lambda_reserved_concurrency = 3\n")
    (tmp_path / "a.auto.tfvars").write_text("lambda_reserved_concurrency = 2\n")
    (tmp_path / "extra.tfvars").write_text('region = "eu-north-1"\n')
    environ = {"TF_VAR_region": "us-west-2", "TF_VAR_tickers": '["A"]', "HOME": "/x"}

    found = preflight.terraform_variables(tmp_path, environ)
    assert found["region"] == "eu-west-1"  # terraform.tfvars beats TF_VAR_
    assert found["name_prefix"] == "lakejson"  # .tfvars.json beats .tfvars
    assert found["lambda_reserved_concurrency"] == 3  # b.auto after a.auto
    assert found["tickers"] == '["A"]' and "HOME" not in found

    flags = ["-var-file=extra.tfvars", "-var", "lambda_reserved_concurrency=7"]
    found = preflight.terraform_variables(tmp_path, environ, flags)
    assert found["region"] == "eu-north-1" and found["lambda_reserved_concurrency"] == 7
    unset = ["-var=lambda_reserved_concurrency=null"]
    found = preflight.terraform_variables(tmp_path, environ, unset)
    assert found["lambda_reserved_concurrency"] is None


def test_only_the_environment_and_the_default(tmp_path):
    assert preflight.terraform_variables(tmp_path, {}) == {}
    found = preflight.terraform_variables(tmp_path, {"TF_VAR_lambda_reserved_concurrency": "4"})
    assert found == {"lambda_reserved_concurrency": 4}


def test_a_broken_or_missing_variable_file_is_one_line(tmp_path):
    (tmp_path / "terraform.tfvars").write_text("region = \n")
    with pytest.raises(preflight.PreflightError, match=r"cannot read .*terraform.tfvars"):
        preflight.terraform_variables(tmp_path, {})
    (tmp_path / "terraform.tfvars").unlink()
    with pytest.raises(preflight.PreflightError, match=r"nowhere.tfvars not found"):
        preflight.terraform_variables(tmp_path, {}, ["-var-file=nowhere.tfvars"])


# -- the account's concurrency ------------------------------------------------------------------


def test_no_reservation_asks_nothing_of_the_account():
    for wanted in ({}, {RESERVED: None}, {RESERVED: 0}):
        assert preflight.check_account(wanted, lambda_client=object()) is None


def test_a_new_account_cannot_reserve_and_is_told_why_in_one_line():
    client, stub = lambda_client(limit=10, unreserved=10)
    with pytest.raises(preflight.PreflightError) as refused:
        preflight.check_account({"lambda_reserved_concurrency": 1}, lambda_client=client)
    message = str(refused.value)
    assert "\n" not in message
    assert "lambda_reserved_concurrency = 1 would leave 9 of this account's 10" in message
    assert "at least 100" in message and "'Concurrent executions'" in message
    stub.assert_no_pending_responses()


def test_an_account_with_room_passes_and_says_what_is_left():
    client, stub = lambda_client(limit=1000, unreserved=1000)
    said = preflight.check_account({"lambda_reserved_concurrency": 1.0}, lambda_client=client)
    assert said.startswith("Lambda concurrency: lambda_reserved_concurrency = 1 leaves 999 of 1000")
    stub.assert_no_pending_responses()


def test_the_functions_own_reservation_is_counted_back_in():
    # Deployed before with 5 reserved: the account shows 100 of 105 unreserved. Keeping 5 is
    # fine (Terraform replaces the reservation); asking 6 would leave 99.
    client, _ = lambda_client(limit=105, unreserved=100, reserved_now=5)
    assert "leaves 100 of 105" in preflight.check_reserved_concurrency(
        client, 5, "marketlake-ingest"
    )
    client, _ = lambda_client(limit=105, unreserved=100, reserved_now=5)
    with pytest.raises(preflight.PreflightError, match="would leave 99 of"):
        preflight.check_reserved_concurrency(client, 6, "marketlake-ingest")


def test_credentials_that_may_not_look_are_named():
    client = botocore.session.get_session().create_client(
        "lambda", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    stub.add_client_error("get_account_settings", "AccessDeniedException", http_status_code=403)
    stub.activate()
    with pytest.raises(preflight.PreflightError, match="lambda:GetAccountSettings"):
        preflight.check_reserved_concurrency(client, 1, "marketlake-ingest")


# -- make plan/deploy: the whole preflight ------------------------------------------------------


@pytest.fixture
def account(monkeypatch, tmp_path):
    """moto's STS, a terraform on PATH (this interpreter stands in), a terraform/ of our own."""
    for name in ("AWS_PROFILE", "TF_APPLY_FLAGS", "TF_VAR_lambda_reserved_concurrency"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("TF", sys.executable)
    monkeypatch.setattr(preflight, "TF_DIR", tmp_path)
    made = []
    real_client = boto3.client

    def client(service, **kwargs):
        if service != "lambda":
            return real_client(service, **kwargs)
        made.append(kwargs.get("region_name"))
        stubbed, _ = lambda_client(limit=10, unreserved=10)
        return stubbed

    monkeypatch.setattr(boto3, "client", client)
    with mock_aws():
        yield tmp_path, made


def test_deploy_with_a_reservation_in_a_new_account_stops_before_terraform(account, capsys):
    tf_dir, regions = account
    (tf_dir / "terraform.tfvars").write_text(
        'region = "eu-west-2"\nlambda_reserved_concurrency = 1\n'
    )
    assert preflight.main() == 1
    out, err = capsys.readouterr()
    assert out.startswith("deploying as arn:aws:")
    assert err.startswith("error: lambda_reserved_concurrency = 1 would leave 9")
    assert err.count("\n") == 1
    assert regions == ["eu-west-2"]  # the stack's region, not the shell's


def test_deploy_without_a_reservation_checks_credentials_only(account, capsys, monkeypatch):
    tf_dir, regions = account
    (tf_dir / "terraform.tfvars").write_text('region = "eu-west-2"\n')
    assert preflight.main() == 0
    assert regions == []
    # A reservation given on make's command line reaches Terraform, so it is checked too.
    monkeypatch.setenv("TF_APPLY_FLAGS", "-auto-approve -var=lambda_reserved_concurrency=2")
    assert preflight.main() == 1
    assert "lambda_reserved_concurrency = 2 would leave 8" in capsys.readouterr().err
