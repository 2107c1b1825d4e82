"""infra/stacks.py: `make plan`, `deploy` and `destroy` run both stacks (AWS, then Grafana)
in order, against a recording stand-in of the terraform binary, and stop it gracefully."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import botocore.session
import pytest
import stacks
import tf
from botocore.stub import ANY, Stubber
from test_terraform_runs import lay_mirror  # the provider mirror the stacks need

# -- make plan / deploy / destroy: both stacks, in order ------------------------------------------

FAKE_TERRAFORM = textwrap.dedent(
    """\
    #!{python}
    import json, os, signal, sys, time
    calls = os.environ["FAKE_TF_CALLS"]
    def record(args):
        with open(calls, "a") as out:
            out.write(json.dumps({{"cwd": os.getcwd(), "args": args,
                                  "auth": os.environ.get("TF_VAR_grafana_auth")}}) + "\\n")
    record(sys.argv[1:])
    if sys.argv[1:3] == ["output", "-json"]:
        print(os.environ["FAKE_TF_OUTPUTS"])
    if os.environ.get("FAKE_TF_HANG") == sys.argv[1]:
        def stop(signum, frame):
            record(["stopped-by", str(signum)])
            sys.exit(130)
        signal.signal(signal.SIGINT, stop)
        open(calls + ".ready", "w").close()
        time.sleep(60)
    fail = os.environ.get("FAKE_TF_FAIL", "")
    if fail and fail.split("@")[0] == sys.argv[1] and os.getcwd().endswith(fail.split("@")[1]):
        sys.exit(1)
    """
)
MANAGED = {
    "enabled": True,
    "url": "https://g-abc.grafana-workspace.us-east-1.amazonaws.com",
    "managed": True,
    "workspace_id": "g-abc",
    "service_account_id": "7",
    "name": "marketlake",
    "region": "us-east-1",
    "datasource_uid": "marketlake-athena",
    "athena_plugin_version": "3.1.10",
    "athena_auth_type": "ec2_iam_role",
    "glue_database": "marketlake",
    "athena_workgroup": "marketlake",
    "results_bucket": "results-bucket",
}


@pytest.fixture
def fake_terraform(tmp_path, monkeypatch):
    script = tmp_path / "terraform"
    script.write_text(FAKE_TERRAFORM.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("TF", str(script))
    monkeypatch.setenv("FAKE_TF_CALLS", str(calls))
    monkeypatch.setenv("TF_PROVIDER_MIRROR", str(lay_mirror(tmp_path)))
    monkeypatch.delenv("TF_APPLY_FLAGS", raising=False)
    monkeypatch.delenv("TF_VAR_grafana_auth", raising=False)
    # The plugin install talks HTTP to Grafana: tests/infra/test_grafana_plugin.py covers it.
    monkeypatch.setattr(stacks.grafana_plugin, "ensure", lambda url, token, version: "stand-in")

    def outputs(inputs: dict | None) -> None:
        body = {} if inputs is None else {"grafana_stack_inputs": {"value": inputs}}
        monkeypatch.setenv("FAKE_TF_OUTPUTS", json.dumps(body))

    def recorded() -> list[tuple[str, str, str | None]]:
        rows = [json.loads(line) for line in calls.read_text().splitlines()]
        return [
            (
                "grafana" if r["cwd"].endswith("grafana") else "aws",
                r["args"][0],
                r["auth"],
                r["args"],
            )
            for r in rows
        ]

    return outputs, recorded


def grafana_client(tokens: list, revoke_fails: bool = False):
    """A grafana client that mints one token and expects it revoked."""
    client = botocore.session.get_session().create_client(
        "grafana", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    ids = {"workspaceId": "g-abc", "serviceAccountId": "7"}
    stub.add_response(
        "create_workspace_service_account_token",
        {
            "serviceAccountToken": {"id": "tok-1", "name": "make-deploy", "key": "glsa_secret"},
            **ids,
        },
        {"name": ANY, "secondsToLive": 3600, **ids},
    )
    if revoke_fails:
        stub.add_client_error("delete_workspace_service_account_token", "AccessDeniedException")
    else:
        stub.add_response(
            "delete_workspace_service_account_token",
            {"tokenId": "tok-1", **ids},
            {"tokenId": "tok-1", **ids},
        )
    stub.activate()
    tokens.append(stub)
    return client


def test_deploy_applies_aws_then_grafana_with_a_minted_token_it_revokes(
    fake_terraform, monkeypatch
):
    outputs, recorded = fake_terraform
    outputs(MANAGED)
    stubs: list = []
    monkeypatch.setattr("boto3.client", lambda service, **kw: grafana_client(stubs))
    assert stacks.main(["deploy"]) == 0
    steps = [(stack, verb) for stack, verb, _, _ in recorded()]
    assert steps == [
        ("aws", "init"),
        ("aws", "apply"),
        ("aws", "output"),
        ("grafana", "init"),
        ("grafana", "apply"),
    ]
    grafana_apply = recorded()[-1]
    assert grafana_apply[2] == "glsa_secret"  # the minted token, through the environment
    assert f"-var=grafana_url={MANAGED['url']}" in grafana_apply[3]
    assert "-var=glue_database=marketlake" in grafana_apply[3]
    stubs[0].assert_no_pending_responses()  # minted and revoked


def test_a_failed_grafana_apply_still_revokes_the_token_and_names_the_stack(
    fake_terraform, monkeypatch, capsys
):
    outputs, _ = fake_terraform
    outputs(MANAGED)
    monkeypatch.setenv("FAKE_TF_FAIL", "apply@grafana")
    stubs: list = []
    monkeypatch.setattr("boto3.client", lambda service, **kw: grafana_client(stubs))
    assert stacks.main(["deploy"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Grafana stack (terraform/grafana): terraform apply failed")
    assert "the AWS stack is as it was" in err and "run make deploy again" in err
    stubs[0].assert_no_pending_responses()


def test_a_failed_aws_apply_touches_no_grafana(fake_terraform, capsys, monkeypatch):
    outputs, recorded = fake_terraform
    outputs(MANAGED)
    monkeypatch.setenv("FAKE_TF_FAIL", "apply@terraform")
    assert stacks.main(["deploy"]) == 1
    assert [stack for stack, *_ in recorded()] == ["aws", "aws"]
    assert "nothing of the Grafana stack was touched" in capsys.readouterr().err


def test_destroy_goes_in_reverse_and_grafana_off_means_aws_only(fake_terraform, monkeypatch):
    outputs, recorded = fake_terraform
    existing = dict(MANAGED, managed=False, workspace_id=None, service_account_id=None)
    outputs(existing)
    monkeypatch.setenv("TF_VAR_grafana_auth", "given-token")
    assert stacks.main(["destroy"]) == 0
    steps = [(stack, verb) for stack, verb, _, _ in recorded()]
    assert steps.index(("grafana", "destroy")) < steps.index(("aws", "destroy"))
    assert recorded()[steps.index(("grafana", "destroy"))][2] == "given-token"

    (Path(os.environ["FAKE_TF_CALLS"])).write_text("")
    outputs(dict(MANAGED, enabled=False))
    assert stacks.main(["deploy"]) == 0
    assert {stack for stack, *_ in recorded()} == {"aws"}


def test_an_existing_grafana_without_a_token_is_one_line_naming_the_variable(
    fake_terraform, capsys
):
    outputs, _ = fake_terraform
    outputs(dict(MANAGED, managed=False))
    assert stacks.main(["deploy"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "export TF_VAR_grafana_auth=" in err


def test_plan_before_the_first_deploy_plans_aws_and_says_why_not_grafana(fake_terraform, capsys):
    outputs, recorded = fake_terraform
    outputs(None)
    assert stacks.main(["plan"]) == 0
    assert [(s, v) for s, v, _, _ in recorded()] == [
        ("aws", "init"),
        ("aws", "plan"),
        ("aws", "output"),
    ]
    assert "planned once the AWS stack is applied" in capsys.readouterr().out


def test_first_error_of_an_apply_names_the_file_of_the_failed_resource():
    output = (
        "aws_s3_bucket.lake: Creating...\n\n"
        "Error: creating Glue Classifier (raw-csv): StatusCode: 500\n\n"
        "  with aws_glue_classifier.raw_csv,\n"
        '  on glue.tf line 35, in resource "aws_glue_classifier" "raw_csv":\n'
        '  35: resource "aws_glue_classifier" "raw_csv" {\n\n\n'
        "Error: uploading S3 Object: Forbidden\n"
    )
    assert tf.first_error(output) == (
        "Error: creating Glue Classifier (raw-csv): StatusCode: 500 (glue.tf line 35)"
    )
    assert tf.first_error("Initializing...\nsomething went wrong\n") == "something went wrong"


def test_a_revoke_that_fails_is_a_warning_and_the_deploy_still_succeeds(
    fake_terraform, monkeypatch, capsys
):
    outputs, _ = fake_terraform
    outputs(MANAGED)
    stubs: list = []
    monkeypatch.setattr(
        "boto3.client", lambda service, **kw: grafana_client(stubs, revoke_fails=True)
    )
    assert stacks.main(["deploy"]) == 0
    err = capsys.readouterr().err
    assert "warning: could not revoke Grafana token make-deploy-" in err
    assert "expires by itself within 60 minutes" in err


def test_a_token_that_cannot_be_minted_is_one_line_naming_the_permission(
    fake_terraform, monkeypatch, capsys
):
    outputs, recorded = fake_terraform
    outputs(MANAGED)

    def refusing(service, **kw):
        client = botocore.session.get_session().create_client(
            "grafana", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        stub = Stubber(client)
        stub.add_client_error("create_workspace_service_account_token", "AccessDeniedException")
        stub.activate()
        return client

    monkeypatch.setattr("boto3.client", refusing)
    assert stacks.main(["deploy"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "grafana:CreateWorkspaceServiceAccountToken" in err
    assert ("grafana", "apply") not in [(s, v) for s, v, _, _ in recorded()]


def test_apply_flags_reach_the_grafana_stack_only_as_auto_approve(fake_terraform, monkeypatch):
    outputs, recorded = fake_terraform
    outputs(dict(MANAGED, managed=False))
    monkeypatch.setenv("TF_VAR_grafana_auth", "given-token")
    monkeypatch.setenv("TF_APPLY_FLAGS", "-auto-approve -var=tickers=[]")
    monkeypatch.setenv("GRAFANA_APPLY_FLAGS", "-parallelism=2")
    assert stacks.main(["deploy"]) == 0
    applies = {stack: args for stack, verb, _, args in recorded() if verb == "apply"}
    assert "-var=tickers=[]" in applies["aws"] and "-auto-approve" in applies["aws"]
    assert "-auto-approve" in applies["grafana"] and "-parallelism=2" in applies["grafana"]
    assert "-var=tickers=[]" not in applies["grafana"]


def test_sigterm_stops_terraform_as_its_ctrl_c_does_and_waits_for_it(fake_terraform, tmp_path):
    """Terraform must get its graceful stop (state written), never a kill."""
    outputs, recorded = fake_terraform
    outputs(MANAGED)
    env = dict(os.environ, FAKE_TF_HANG="apply")
    process = subprocess.Popen(
        [sys.executable, str(Path(stacks.__file__)), "deploy"], env=env, stderr=subprocess.PIPE
    )
    ready = Path(os.environ["FAKE_TF_CALLS"] + ".ready")
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline, "the fake terraform never started its apply"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert b"AWS stack (terraform/): terraform apply failed" in err
    assert ("aws", "stopped-by", None, ["stopped-by", str(int(signal.SIGINT))]) in recorded()
    assert ("grafana", "apply") not in [(s, v) for s, v, _, _ in recorded()]


def test_an_interrupted_terraform_run_is_stopped_gracefully_not_killed(tmp_path):
    script = tmp_path / "child.py"
    marker = tmp_path / "stopped"
    script.write_text(
        "import signal, sys, time, pathlib\n"
        f"signal.signal(signal.SIGINT, lambda *a: (pathlib.Path({str(marker)!r}).write_text('ok'),"
        " sys.exit(0)))\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    time.sleep(0.5)
    tf.stop_gracefully(child, grace=20)
    assert marker.read_text() == "ok" and child.returncode == 0
