"""infra/tf.py, validate.py, stacks.py and the rehearsal's plan check, with real Terraform
where it matters (validate) and a recording stand-in where AWS would be needed (stacks)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import botocore.session
import pytest
import rehearse
import stacks
import tf
import validate
from botocore.stub import ANY, Stubber
from infra_contract import TERRAFORM

MIRROR_BINARY = "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/terraform-provider-aws_x5"


def lay_mirror(root: Path) -> Path:
    binary = root / "plugins" / MIRROR_BINARY
    binary.parent.mkdir(parents=True)
    binary.write_text("")
    return root / "plugins"


# -- finding the provider mirror ----------------------------------------------------------------


def test_a_mirror_is_found_under_the_roots_and_none_elsewhere(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_PROVIDER_MIRROR", raising=False)
    mirror = lay_mirror(tmp_path / "opt")
    (tmp_path / "empty").mkdir()
    assert tf.find_mirror(roots=(str(tmp_path / "empty"), str(tmp_path / "opt"))) == mirror
    assert tf.find_mirror(roots=(str(tmp_path / "empty"),)) is None


def test_a_provider_binary_outside_a_mirror_layout_is_not_a_mirror(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_PROVIDER_MIRROR", raising=False)
    stray = tmp_path / "bin" / "terraform-provider-aws_v5"
    stray.parent.mkdir()
    stray.write_text("")
    assert tf.find_mirror(roots=(str(tmp_path),)) is None


def test_tf_provider_mirror_wins_and_a_wrong_one_is_named(tmp_path, monkeypatch):
    mirror = lay_mirror(tmp_path)
    monkeypatch.setenv("TF_PROVIDER_MIRROR", str(mirror))
    assert tf.find_mirror(roots=()) == mirror
    monkeypatch.setenv("TF_PROVIDER_MIRROR", str(tmp_path / "nowhere"))
    with pytest.raises(tf.TerraformError, match=r"TF_PROVIDER_MIRROR=.*nowhere holds no"):
        tf.find_mirror()


def test_the_cli_config_takes_only_aws_from_the_mirror(tmp_path):
    text = tf.cli_config(tmp_path)
    assert f'path    = "{tmp_path.as_posix()}"' in text
    assert 'include = ["registry.terraform.io/hashicorp/aws"]' in text
    assert 'exclude = ["registry.terraform.io/hashicorp/aws"]' in text  # the rest: registry
    assert "provider_installation" not in tf.cli_config(None)


def test_first_error_is_one_line_with_its_detail():
    output = (
        "\x1b[31m╷\x1b[0m\n│ Error: Unsupported argument\n│ \n│   on main.tf line 3, in resource:\n"
        '│    3:   bogus = true\n│ \n│ An argument named "bogus" is not expected here.\n╵\n'
    )
    expected = "Error: Unsupported argument (main.tf line 3) An argument named"
    assert tf.first_error(output) == expected + ' "bogus" is not expected here.'


# -- terraform validate, for real -----------------------------------------------------------------

needs_terraform = pytest.mark.skipif(
    shutil.which(os.environ.get("TF", "terraform")) is None or tf.find_mirror() is None,
    reason="needs Terraform on PATH and a mirror of hashicorp/aws (make validate says the same)",
)


@needs_terraform
def test_validate_rejects_an_argument_the_aws_provider_does_not_have(tmp_path):
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".terraform*", "grafana"))
    storage = copy / "storage.tf"
    storage.write_text(
        storage.read_text().replace(
            "force_destroy = var.force_destroy_buckets",
            "force_destroy = var.force_destroy_buckets\n  no_such_argument = true",
            1,
        )
    )
    env = tf.environment(tmp_path, tf.find_mirror())
    with pytest.raises(tf.TerraformError, match='An argument named "no_such_argument"'):
        validate.validate(copy, "AWS stack", env, tmp_path / "log", required=True)


@needs_terraform
def test_the_grafana_stack_is_skipped_only_when_its_provider_cannot_be_installed(tmp_path):
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".terraform*"))
    env = tf.environment(tmp_path, tf.find_mirror())
    said = validate.validate(copy / "grafana", "Grafana stack", env, tmp_path / "log", False)
    # Here the grafana provider cannot be installed (no registry, no mirror of it); where it
    # can, the stack validates. Either way the line says which.
    assert said.startswith(("Grafana stack: not validated: its provider", "Grafana stack: Success"))
    # Installed (a registry answered) or not, a broken Grafana stack is never "not validated"
    # for a reason other than its provider.
    main = copy / "grafana" / "main.tf"
    main.write_text(
        main.read_text().replace(
            'resource "grafana_folder"',
            'resource "grafana_folder" {}\nresource "grafana_folder"',
            1,
        )
    )
    with pytest.raises(tf.TerraformError):
        validate.validate(copy / "grafana", "Grafana stack", env, tmp_path / "log2", False)


# -- the rehearsal's second plan --------------------------------------------------------------


def change(address: str, before: dict, after: dict, actions=("update",), unknown=None) -> dict:
    return {
        "address": address,
        "change": {
            "actions": list(actions),
            "before": before,
            "after": after,
            "after_unknown": unknown or {},
        },
    }


def test_only_the_emulators_known_drift_passes_the_second_plan():
    known = change("aws_glue_job.wap", {"execution_class": "STANDARD"}, {"execution_class": None})
    policy = change("aws_iam_role_policy.scheduler", {"policy": "{}"}, {}, unknown={"policy": True})
    same = change("aws_sqs_queue.ingest_dlq", {"name": "q"}, {"name": "q"}, actions=("no-op",))
    assert rehearse.unexpected_changes({"resource_changes": [known, policy, same]}) == []

    more = change(
        "aws_glue_job.wap",
        {"execution_class": "STANDARD", "timeout": 60},
        {"execution_class": None, "timeout": 30},
    )
    other = change("aws_sqs_queue.ingest_dlq", {"name": "q"}, {"name": "r"})
    replaced = change("aws_glue_job.wap", {}, {}, actions=("delete", "create"))
    found = rehearse.unexpected_changes({"resource_changes": [more, other, replaced]})
    assert found == [
        "aws_glue_job.wap (timeout)",
        "aws_sqs_queue.ingest_dlq (name)",
        "aws_glue_job.wap (delete/create)",
    ]


def test_the_rehearsal_drops_what_a_users_shell_would_change_it_with(tmp_path, monkeypatch):
    for name, value in {
        "TF_VAR_region": "eu-west-1",
        "TF_CLI_ARGS_apply": "-target=aws_s3_bucket.lake",
        "TF_WORKSPACE": "prod",
        "AWS_PROFILE": "production",
    }.items():
        monkeypatch.setenv(name, value)
    env = rehearse.rehearsal_environment(tmp_path, None, "http://127.0.0.1:5")
    assert not {"TF_VAR_region", "TF_CLI_ARGS_apply", "TF_WORKSPACE", "AWS_PROFILE"} & set(env)
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"


def test_the_rehearsals_weekday_is_the_last_the_schedule_fired_on():
    assert rehearse.last_weekday(dt.date(2026, 11, 30)) == dt.date(2026, 11, 27)  # Mon -> Fri
    assert rehearse.last_weekday(dt.date(2026, 11, 28)) == dt.date(2026, 11, 27)  # Sat -> Fri
    assert rehearse.last_weekday(dt.date(2026, 11, 27)) == dt.date(2026, 11, 26)


def test_every_gap_is_named_with_its_reason_in_the_override():
    text = rehearse.override_text("http://127.0.0.1:5")
    assert 'backend "local" {}' in text
    for name, (_, why) in rehearse.GAPS.items():
        assert f"# gap {name}: {why}" in text
    for service in rehearse.SERVICES:
        assert f'{service} = "http://127.0.0.1:5"' in text
    assert "max_retries                 = 2" in text
    for address, (attributes, why) in rehearse.EXPECTED_DRIFT.items():
        assert attributes and why, address


def test_the_rehearsals_switch_to_polygon_names_what_terraform_has():
    """What the rehearsal's second apply sets and expects to change is in terraform/: a
    rename there fails here, not three minutes into make rehearse."""
    import weekday_polygon
    from infra_contract import terraform

    tf_ = terraform()
    switched = weekday_polygon.variables({"force_destroy_buckets": True})
    assert set(switched) <= set(tf_.variables)
    assert switched["data_provider"] == "polygon" and switched["tickers"] == ["ALL"]
    for address in weekday_polygon.SWITCH:
        kind, name = address.split("[")[0].split(".")
        tf_.resource(kind, name)
    assert tf_.resource("aws_secretsmanager_secret", "polygon")["count"]  # hence [0]
    assert "polygon_secret_arn" in tf_.outputs


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
