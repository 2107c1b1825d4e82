"""The Glue side matches the code: the job's arguments are what marketlake.aws.glue_job parses,
the job is a Python 3.9 shell job, the crawler makes the table the build reads, and the
workflow runs crawler -> job."""

from __future__ import annotations

import re

from infra_contract import REPO, SRC, module_constant, normalize, requirement_pins, terraform
from packaging.requirements import Requirement
from packaging.version import Version

from marketlake.config import default
from marketlake.lake import raw
from marketlake.wap import pipeline as wap

JOB = SRC / "aws" / "glue_job.py"
# Arguments Glue itself reads (not the script): they may sit beside the job's own.
GLUE_ARGUMENTS = {"--job-language", "--extra-py-files", "--additional-python-modules"}
GLUE_LIBRARY_SET = "library-set"


def job() -> dict:
    return terraform().resource("aws_glue_job", "wap")


def script_arguments() -> dict:
    arguments = job()["default_arguments"]
    return {k: v for k, v in arguments.items() if k not in GLUE_ARGUMENTS | {GLUE_LIBRARY_SET}}


def test_every_required_argument_is_set():
    required = module_constant(JOB, "REQUIRED")
    missing = {f"--{name}" for name in required} - set(script_arguments())
    assert not missing, f"the WAP job needs {sorted(missing)} (job.py REQUIRED)"


def test_no_argument_the_job_does_not_know():
    known = {f"--{n}" for n in module_constant(JOB, "REQUIRED")} | {
        f"--{n}" for n in module_constant(JOB, "OPTIONAL")
    }
    unknown = set(script_arguments()) - known
    assert not unknown, f"terraform/glue.tf passes {sorted(unknown)}, which job.py never reads"


def test_the_arguments_point_at_this_stack():
    arguments = job()["default_arguments"]
    assert arguments["--lake_bucket"] == "${aws_s3_bucket.lake.id}"
    assert arguments["--glue_database"] == "${aws_glue_catalog_database.lake.name}"
    # Its own workgroup: an enforced one refuses CTAS with external_location.
    assert arguments["--athena_workgroup"] == "${aws_athena_workgroup.build.name}"
    assert arguments["--alerts_topic_arn"] == "${aws_sns_topic.alerts.arn}", (
        "a blocked audit must reach the alerts topic"
    )
    assert "--lake_prefix" not in arguments  # the bucket root is the lake root


def test_the_build_settings_are_passed_and_default_as_the_code_does():
    """glue.tf passes --max_bad_row_pct and --keep_versions from its variables; the job
    repeats no default (OPTIONAL leaves them empty, so Settings' own applies), and the
    variables' defaults are Settings' (config.py), so a stack left at its defaults builds
    as the CLI does."""
    arguments, variables = job()["default_arguments"], terraform().variables
    optional = module_constant(JOB, "OPTIONAL")
    for name in ("max_bad_row_pct", "keep_versions"):
        assert arguments[f"--{name}"] == f"${{tostring(var.{name})}}"
        assert optional[name] == "", f"job.py repeats the default of {name}; leave it empty"
        assert float(variables[name]["default"]) == float(default(name)), (
            f"terraform's var.{name} defaults to {variables[name]['default']}, "
            f"Settings.{name} to {default(name)}"
        )


def test_it_is_a_python_39_shell_job_sized_by_max_capacity():
    body = job()
    (command,) = body["command"]
    assert command["name"] == "pythonshell"
    assert command["python_version"] == "3.9"
    assert body["glue_version"] == "3.0"
    assert "max_capacity" in body
    assert "worker_type" not in body and "number_of_workers" not in body
    (validation,) = terraform().variables["glue_max_capacity"]["validation"]
    assert "[0.0625, 1]" in validation["condition"]
    assert body["default_arguments"][GLUE_LIBRARY_SET] == "analytics"
    (execution,) = body["execution_property"]
    assert execution["max_concurrent_runs"] == 1


def test_the_script_and_the_wheel_are_the_code():
    tf = terraform()
    (command,) = job()["command"]
    assert command["script_location"] == (
        "s3://${aws_s3_bucket.lake.id}/${aws_s3_object.glue_script.key}"
    )
    script = tf.resource("aws_s3_object", "glue_script")
    assert script["source"] == "${local.glue_script_path}"
    assert script["key"].endswith("/wap_job.py")
    assert "filesha256(local.glue_script_path)" in script["key"], "the key carries a hash"
    assert script["source_hash"] == "${filemd5(local.glue_script_path)}"
    wheel = tf.resource("aws_s3_object", "marketlake_wheel")
    assert wheel["key"].endswith("/${local.wheel_name}"), "pip needs the wheel's own name"
    assert "filesha256(local.wheel_path)" in wheel["key"]
    assert job()["default_arguments"]["--extra-py-files"] == (
        "s3://${aws_s3_bucket.lake.id}/${aws_s3_object.marketlake_wheel.key}"
    )
    # The script Glue runs calls the job's entry point.
    assert "from marketlake.aws.glue_job import main" in (REPO / "glue" / "wap_job.py").read_text()


def test_the_glue_pins_cover_the_library_and_match_its_ranges():
    pins = requirement_pins(REPO / "requirements" / "glue-job.txt")
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"(?ms)^dependencies = \[(.*?)^\]", text).group(1)
    dependencies = [Requirement(d) for d in re.findall(r'"([^"]+)"', block)]
    for dep in dependencies:
        name = normalize(dep.name)
        assert name in pins, f"requirements/glue-job.txt lacks {dep.name} (a runtime dependency)"
        assert dep.specifier.contains(pins[name]), f"{name}=={pins[name]} violates {dep}"
    extra = set(pins) - {normalize(d.name) for d in dependencies} - {"boto3", "botocore"}
    assert not extra, f"requirements/glue-job.txt pins {sorted(extra)}, not marketlake deps"
    # Glue's own boto3 predates S3 conditional writes, which every state write uses.
    assert Version(pins["botocore"]) >= Version("1.35.69"), "botocore without If-Match on PUT"
    assert pins["boto3"] == pins["botocore"], "boto3 and botocore are released in step"
    tested = requirement_pins(REPO / "constraints.txt")
    assert pins["sqlglot"] == tested["sqlglot"], "the SQL is tested with the constrained sqlglot"
    assert job()["default_arguments"]["--additional-python-modules"] == (
        '${join(",", local.glue_python_modules)}'
    )


def test_the_crawler_makes_the_table_the_build_reads():
    tf = terraform()
    crawler = tf.resource("aws_glue_crawler", "raw")
    (target,) = crawler["s3_target"]
    assert target["path"] == "s3://${aws_s3_bucket.lake.id}/${local.raw_prefix}"
    assert tf.locals["raw_prefix"] == raw.RAW_PREFIX
    # A crawler names the table after its target folder, then adds the prefix.
    folder = raw.RAW_PREFIX.rstrip("/").rsplit("/", 1)[-1]
    assert crawler["table_prefix"] == "${local.crawler_table_prefix}"
    assert tf.locals["crawler_table_prefix"] + folder == wap.RAW_TABLE == "raw_daily_prices"
    (recrawl,) = crawler["recrawl_policy"]
    assert recrawl["recrawl_behavior"] == "CRAWL_NEW_FOLDERS_ONLY"
    (policy,) = crawler["schema_change_policy"]
    assert policy == {"update_behavior": "LOG", "delete_behavior": "LOG"}
    configuration = crawler["configuration"]
    assert 'AddOrUpdateBehavior = "InheritFromTable"' in configuration
    assert crawler["classifiers"] == ["${aws_glue_classifier.raw_csv.name}"]


def test_the_csv_classifier_knows_the_raw_layout():
    (csv,) = terraform().resource("aws_glue_classifier", "raw_csv")["csv_classifier"]
    assert csv["contains_header"] == "PRESENT"
    assert csv["quote_symbol"] == '"'
    assert csv["delimiter"] == ","
    assert csv["serde"] == "OpenCSVSerDe"
    assert csv["header"] == raw.RAW_COLUMNS


def test_the_workflow_crawls_then_builds_on_success():
    tf = terraform()
    triggers = tf.of_type("aws_glue_trigger")
    start = [t for t in triggers.values() if t["type"] == "ON_DEMAND"]
    conditional = [t for t in triggers.values() if t["type"] == "CONDITIONAL"]
    assert len(start) == 1 and len(conditional) == 1
    workflow = "${aws_glue_workflow.build.name}"
    assert start[0]["workflow_name"] == conditional[0]["workflow_name"] == workflow
    assert start[0]["actions"] == [{"crawler_name": "${aws_glue_crawler.raw.name}"}]
    ((condition,),) = [p["conditions"] for p in conditional[0]["predicate"]]
    assert condition == {"crawler_name": "${aws_glue_crawler.raw.name}", "crawl_state": "SUCCEEDED"}
    assert conditional[0]["actions"] == [{"job_name": "${aws_glue_job.wap.name}"}]
