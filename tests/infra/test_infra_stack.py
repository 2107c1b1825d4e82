"""The rest of the issue's list, one test per promise: inputs, outputs, storage, Athena,
alerts and Grafana."""

from __future__ import annotations

import re
import subprocess

import hcl2
from infra_contract import REPO, TERRAFORM, grafana_stack, terraform

VALIDATED = [
    "region",
    "name_prefix",
    "tickers",
    "schedule_expression",
    "alphavantage_calls_per_minute",
    "alphavantage_calls_per_day",
    "alert_email",
]


def test_every_variable_is_described_and_typed_and_the_issues_are_validated():
    variables = terraform().variables
    for name, body in variables.items():
        assert body.get("description"), f"variable {name} has no description"
        assert body.get("type"), f"variable {name} has no type"
    for name in VALIDATED:
        assert variables[name].get("validation"), f"variable {name} is not validated"
    assert variables["create_grafana"]["type"] in ("bool", "${bool}")


def test_the_tfvars_example_only_sets_declared_variables():
    example = hcl2.loads((TERRAFORM / "terraform.tfvars.example").read_text(encoding="utf-8"))
    unknown = {k for k in example if not k.startswith("__")} - set(terraform().variables)
    assert not unknown, f"terraform.tfvars.example sets undeclared {sorted(unknown)}"
    assert {"region", "tickers", "alert_email", "create_grafana"} <= set(example)


def test_the_outputs_the_issue_asks_for():
    outputs = terraform().outputs
    assert outputs["lake_bucket"]["value"] == "${aws_s3_bucket.lake.id}"
    assert outputs["glue_database"]["value"] == "${aws_glue_catalog_database.lake.name}"
    assert outputs["athena_workgroup"]["value"] == "${aws_athena_workgroup.lake.name}"
    assert outputs["grafana_url"]["value"] == "${local.grafana_url}"
    assert "aws_grafana_workspace.this[0].endpoint" in terraform().locals["grafana_url"]


def test_both_buckets_are_locked_down():
    tf = terraform()
    assert set(tf.resources) >= {("aws_s3_bucket", "lake"), ("aws_s3_bucket", "athena_results")}
    for kind, name in (
        ("aws_s3_bucket_public_access_block", "this"),
        ("aws_s3_bucket_versioning", "this"),
        ("aws_s3_bucket_server_side_encryption_configuration", "this"),
        ("aws_s3_bucket_policy", "tls_only"),
    ):
        assert tf.resource(kind, name)["for_each"] == "${local.buckets}", f"{kind}: both buckets"
    block = tf.resource("aws_s3_bucket_public_access_block", "this")
    for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls"):
        assert block[setting] is True
    assert block["restrict_public_buckets"] is True
    (rule,) = tf.resource("aws_s3_bucket_server_side_encryption_configuration", "this")["rule"]
    (default,) = rule["apply_server_side_encryption_by_default"]
    assert default == {"sse_algorithm": "aws:kms", "kms_master_key_id": "${aws_kms_key.main.arn}"}
    (statement,) = tf.policy_document("tls_only")
    assert statement["effect"] == "Deny"
    assert statement["condition"][0]["variable"] == "aws:SecureTransport"
    assert tf.resource("aws_kms_key", "main")["enable_key_rotation"] is True
    # Rotation stays on; its period is the user's (the bill counts each rotation).
    assert tf.resource("aws_kms_key", "main")["rotation_period_in_days"] == (
        "${var.kms_rotation_period_days}"
    )


def test_lifecycle_expires_results_noncurrent_versions_and_scratch():
    tf = terraform()
    lake = {
        r["id"]: r for r in tf.resource("aws_s3_bucket_lifecycle_configuration", "lake")["rule"]
    }
    noncurrent = lake["expire-noncurrent-versions"]
    assert noncurrent["noncurrent_version_expiration"][0]["noncurrent_days"]
    assert lake["expire-athena-scratch"]["filter"] == [{"prefix": "tmp/athena/"}]
    (results,) = tf.resource("aws_s3_bucket_lifecycle_configuration", "athena_results")["rule"]
    assert results["expiration"] == [{"days": "${var.athena_results_expiration_days}"}]


def test_the_athena_workgroup_is_enforced_encrypted_v3_and_capped():
    workgroup = terraform().resource("aws_athena_workgroup", "lake")
    (configuration,) = workgroup["configuration"]
    assert configuration["enforce_workgroup_configuration"] is True
    assert configuration["bytes_scanned_cutoff_per_query"] == "${var.athena_bytes_scanned_cutoff}"
    assert configuration["engine_version"] == [
        {"selected_engine_version": "Athena engine version 3"}
    ]
    (results,) = configuration["result_configuration"]
    assert results["output_location"].startswith("s3://${aws_s3_bucket.athena_results.id}/")
    (encryption,) = results["encryption_configuration"]
    assert encryption["encryption_option"] == "SSE_KMS"
    assert workgroup["tags"] == {"GrafanaDataSource": "true"}


def test_the_build_has_its_own_workgroup_that_lets_ctas_choose_its_location():
    # Athena fails a CTAS with external_location in a workgroup that enforces its settings.
    build = terraform().resource("aws_athena_workgroup", "build")
    (configuration,) = build["configuration"]
    assert configuration["enforce_workgroup_configuration"] is False
    assert configuration["engine_version"] == [
        {"selected_engine_version": "Athena engine version 3"}
    ]
    (results,) = configuration["result_configuration"]
    assert results["output_location"].startswith("s3://${aws_s3_bucket.athena_results.id}/")
    (encryption,) = results["encryption_configuration"]
    assert encryption["encryption_option"] == "SSE_KMS"
    assert configuration["bytes_scanned_cutoff_per_query"] == (
        "${var.athena_build_bytes_scanned_cutoff}"
    )


def test_failures_reach_the_encrypted_alerts_topic():
    tf = terraform()
    assert tf.resource("aws_sns_topic", "alerts")["kms_master_key_id"] == "${aws_kms_key.main.arn}"
    job_rule = tf.resource("aws_cloudwatch_event_rule", "glue_job_failed")["event_pattern"]
    assert '"Glue Job State Change"' in job_rule and '["FAILED", "TIMEOUT"]' in job_rule
    crawler_rule = tf.resource("aws_cloudwatch_event_rule", "glue_crawler_failed")["event_pattern"]
    assert '"Glue Crawler State Change"' in crawler_rule and '["Failed"]' in crawler_rule
    for target in tf.of_type("aws_cloudwatch_event_target").values():
        assert target["arn"] == "${aws_sns_topic.alerts.arn}"
    alarm = tf.resource("aws_cloudwatch_metric_alarm", "ingest_errors")
    assert (alarm["namespace"], alarm["metric_name"]) == ("AWS/Lambda", "Errors")
    assert alarm["alarm_actions"] == ["${aws_sns_topic.alerts.arn}"]
    email = tf.resource("aws_sns_topic_subscription", "email")
    assert email["count"] == '${var.alert_email != "" ? 1 : 0}'


def test_grafana_is_optional_and_reads_athena():
    tf = terraform()
    workspace = tf.resource("aws_grafana_workspace", "this")
    assert workspace["count"] == "${var.create_grafana ? 1 : 0}"
    assert workspace["data_sources"] == ["ATHENA"]
    attachment = tf.resource("aws_iam_role_policy_attachment", "grafana_athena")
    assert attachment["policy_arn"].endswith(
        ":iam::aws:policy/service-role/AmazonGrafanaAthenaAccess"
    )
    source = grafana_stack().resource("grafana_data_source", "athena")
    assert source["type"] == "grafana-athena-datasource"
    for name in ("curated", "audit", "reference"):
        assert any(
            name in r for s in tf.policy_document("grafana_lake_read") for r in s["resources"]
        )


def test_the_workspace_pins_its_grafana_version_and_turns_plugin_management_on():
    tf = terraform()
    workspace = tf.resource("aws_grafana_workspace", "this")
    assert workspace["grafana_version"] == "${local.grafana_version}"
    assert re.fullmatch(r"\d+\.\d+", tf.locals["grafana_version"]), "not pinned to a release"
    assert workspace["configuration"] == "${jsonencode(local.grafana_workspace_configuration)}"
    configuration = tf.locals["grafana_workspace_configuration"]
    assert configuration["plugins"] == {"pluginAdminEnabled": True}
    assert configuration["unifiedAlerting"] == {"enabled": True}  # stated, not a default


def test_a_managed_workspace_requires_an_admin_and_associates_every_one():
    tf = terraform()
    (lifecycle,) = tf.resource("aws_grafana_workspace", "this")["lifecycle"]
    (precondition,) = lifecycle["precondition"]
    assert "length(var.grafana_admin_user_ids) > 0" in precondition["condition"]
    message = precondition["error_message"]
    assert "\n" not in message
    for needle in ("grafana_admin_user_ids", "IAM Identity Center", "AWS Organizations"):
        assert needle in message
    association = tf.resource("aws_grafana_role_association", "admins")
    assert association["count"] == "${var.create_grafana ? 1 : 0}"  # not "if ids were given"
    assert (association["role"], association["user_ids"]) == (
        "ADMIN",
        "${var.grafana_admin_user_ids}",
    )


def test_the_athena_plugin_version_is_validated_and_reaches_make_deploy():
    import grafana_plugin

    variable = terraform().variables["grafana_athena_plugin_version"]
    (validation,) = variable["validation"]
    found = re.search(
        r'regex\("(.+)", var\.grafana_athena_plugin_version\)', validation["condition"]
    )
    assert found, validation["condition"]
    pattern = found.group(1).replace("\\\\", "\\")  # HCL's string escapes
    assert re.search(pattern, variable["default"])
    for wrong in ("latest", "3.1", "v3.1.10", "3.1.10-beta", ""):
        assert not re.search(pattern, wrong), wrong
    inputs = terraform().outputs["grafana_stack_inputs"]["value"]
    assert inputs["athena_plugin_version"] == "${var.grafana_athena_plugin_version}"
    # The plugin make deploy installs is the type of the data source the Grafana stack makes.
    source = grafana_stack().resource("grafana_data_source", "athena")
    assert source["type"] == grafana_plugin.PLUGIN_ID


def test_the_readme_points_to_the_deployment_guide_which_documents_it():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "## Deploying to AWS" in readme
    assert "docs/deploying.md" in readme.split("## Deploying to AWS", 1)[1]
    guide = (REPO / "docs" / "deploying.md").read_text(encoding="utf-8")
    for needle in (
        "make deploy",
        "put-secret-value",
        "aws lambda invoke",
        "start-workflow-run",
        "make destroy",
    ):
        assert needle in guide, f"docs/deploying.md does not mention {needle}"


def test_the_aws_stack_has_no_grafana_provider_nor_anything_inside_grafana():
    """A provider's settings must be known before apply: the grafana provider cannot take the
    URL of a workspace the same run creates. Everything inside Grafana is terraform/grafana/."""
    tf = terraform()
    inside = [f"{kind}.{name}" for kind, name in tf.resources if kind.startswith("grafana_")]
    assert not inside, f"terraform/ manages {inside}; they belong in terraform/grafana/"
    for path in TERRAFORM.glob("*.tf"):
        doc = hcl2.loads(path.read_text(encoding="utf-8"))
        assert not [p for p in doc.get("provider", []) if "grafana" in p], f"{path.name}"
        for block in doc.get("terraform", []):
            for providers in block.get("required_providers", []):
                named = {name for name in providers if not name.startswith("__")}
                assert named == {"aws"}, f"{path.name} requires {sorted(named)}"
    token = tf.of_type("aws_grafana_workspace_service_account_token")
    assert not token, "the Grafana token is minted per deploy by infra/stacks.py, not kept in state"


def test_the_aws_provider_is_held_to_the_rehearsed_release_line():
    doc = hcl2.loads((TERRAFORM / "versions.tf").read_text(encoding="utf-8"))
    aws = doc["terraform"][0]["required_providers"][0]["aws"]
    assert aws["version"].strip('"') == "~> 5.100"
    tracked = subprocess.run(
        [
            "git",
            "ls-files",
            "terraform/.terraform.lock.hcl",
            "terraform/grafana/.terraform.lock.hcl",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not tracked, "a lock file is committed: one made here holds only this platform"


def test_the_grafana_stack_gets_every_input_it_declares_from_the_aws_stack():
    """infra/stacks.py passes grafana_stack_inputs on as -var flags: every flag is a declared
    variable, every input it reads is in that output, and every variable without a default is
    passed (grafana_auth through TF_VAR_grafana_auth)."""
    import stacks

    declared = grafana_stack().variables
    output = terraform().outputs["grafana_stack_inputs"]["value"]
    keys = set(output)
    sample = {key: f"<{key}>" for key in keys}
    passed = {
        flag.removeprefix("-var=").split("=", 1)[0] for flag in stacks.grafana_variables(sample)
    }
    assert passed <= set(declared), f"undeclared: {sorted(passed - set(declared))}"
    required = {name for name, body in declared.items() if "default" not in body}
    assert required - passed == {"grafana_auth"}
    for key in ("workspace_id", "service_account_id", "managed", "enabled", "region"):
        assert key in keys, f"grafana_stack_inputs lacks {key}, which infra/stacks.py reads"
