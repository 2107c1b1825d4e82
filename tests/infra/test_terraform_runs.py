"""infra/tf.py, validate.py and the rehearsal's plan check, with real Terraform where it
matters (validate). How stacks.py runs both stacks is in test_deploy_stacks.py."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
import rehearse
import tf
import validate
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
