"""The Glue side matches the code: the job's arguments are what marketlake.aws.glue_job parses,
the job is a Python 3.9 shell job, Terraform defines the raw table the build reads (the
crawler only checks its schema, weekly), and the workflow starts the job alone."""

from __future__ import annotations

import re
import sys

from iam_policy import Request, evaluate
from infra_contract import REPO, SRC, module_constant, normalize, requirement_pins, terraform
from packaging.requirements import Requirement
from packaging.version import Version

from marketlake.config import default
from marketlake.lake import raw
from marketlake.wap import pipeline as wap

sys.path.insert(0, str(REPO / "tests" / "integration"))  # the stand-ins the table must equal
import athena_fake

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
    # Not "analytics": its pandas 1.4 and numpy 1.22 conflict with the job's pins.
    assert body["default_arguments"][GLUE_LIBRARY_SET] == "none"
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


# An S3 URI of an object the stack uploads: s3://<lake>/<its key>, one of a for_each's or not.
UPLOADED = re.compile(
    r"s3://\$\{aws_s3_bucket\.lake\.id\}/\$\{aws_s3_object\.(\w+)(\[name\])?\.key\}"
)


def test_the_job_installs_only_wheels_the_stack_uploads_under_artifacts():
    """Every module the job installs is an S3 wheel under artifacts/glue/ (the job role reads
    artifacts/glue/*), the lock's wheels in its order, then marketlake's: no requirement for
    pip to fetch from PyPI. A Python shell job takes S3 wheels in --extra-py-files only."""
    tf, arguments = terraform(), job()["default_arguments"]
    assert "--additional-python-modules" not in arguments, "Python shell installs those from PyPI"
    value = arguments["--extra-py-files"]
    uploaded = UPLOADED.findall(value)
    assert uploaded == [("glue_wheel", "[name]"), ("marketlake_wheel", "")], value
    assert "[for name in module.artifacts.glue_wheel_files :" in value  # the lock's order
    # Nothing else is named: what is left once the URIs are out is the join and the lists.
    rest = UPLOADED.sub("", value)
    assert set(re.findall(r'"([^"]*)"', rest)) == {",", ""}, f"--extra-py-files names {rest}"
    objects = tf.of_type("aws_s3_object")
    for name, _ in uploaded:
        key = objects[name]["key"]
        assert key.startswith("artifacts/glue/${substr(filesha256("), f"{name}: {key}"
        assert key.endswith("}/${each.key}" if name == "glue_wheel" else "}/${local.wheel_name}")
        assert objects[name]["kms_key_id"] == "${aws_kms_key.main.arn}"
    assert any(
        "s3:GetObject" in s["actions"]
        and "${aws_s3_bucket.lake.arn}/artifacts/glue/*" in s["resources"]
        for s in tf.policy_document("glue_job")
    ), "the job role cannot read artifacts/glue/*"
    # The stack refuses to plan while dist/aws/glue-wheels/ is not the lock's wheels.
    ((precondition,),) = [block["precondition"] for block in job()["lifecycle"]]
    assert precondition["condition"] == (
        "${length(module.artifacts.glue_wheels_missing) == 0"
        " && length(module.artifacts.glue_wheel_strays) == 0}"
    )


# -- the raw table, its weekly schema check, the daily workflow ---------------------------------

LAKE_ARN = "arn:aws:s3:::lake"
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/k"


def raw_table() -> dict:
    return terraform().resource("aws_glue_catalog_table", "raw_daily_prices")


def hcl_table_input(bucket: str) -> dict:
    """The HCL table as the Glue TableInput it creates, for a lake bucket named `bucket`."""
    tf, body = terraform(), raw_table()
    (descriptor,) = body["storage_descriptor"]
    (serde,) = descriptor["ser_de_info"]
    ((dynamic,),) = [[d["columns"] for d in descriptor["dynamic"]]]
    assert dynamic["for_each"] == "${local.raw_columns}"
    assert dynamic["content"] == [{"name": "${columns.value}", "type": "string"}]
    assert body["name"] == "${local.raw_table_name}"
    assert descriptor["location"] == "s3://${aws_s3_bucket.lake.id}/${local.raw_prefix}"
    return {
        "Name": tf.locals["raw_table_name"],
        "TableType": body["table_type"],
        "Parameters": body["parameters"],
        "StorageDescriptor": {
            "Columns": [{"Name": c, "Type": "string"} for c in tf.locals["raw_columns"]],
            "Location": f"s3://{bucket}/{tf.locals['raw_prefix']}",
            "InputFormat": descriptor["input_format"],
            "OutputFormat": descriptor["output_format"],
            "SerdeInfo": {
                "SerializationLibrary": serde["serialization_library"],
                "Parameters": serde["parameters"],
            },
        },
        "PartitionKeys": [{"Name": k["name"], "Type": k["type"]} for k in body["partition_keys"]],
    }


def test_terraform_defines_the_raw_table_the_build_reads():
    """The table the crawler used to make, column for column: the code's raw columns, the
    name the build registers partitions on, and exactly what the integration tests' stand-in
    (athena_fake.raw_table_input, which FakeAthena reads) creates."""
    tf = terraform()
    assert tf.locals["raw_columns"] == raw.RAW_COLUMNS
    assert tf.locals["raw_table_name"] == wap.RAW_TABLE == athena_fake.RAW_TABLE
    assert tf.locals["raw_prefix"] == raw.RAW_PREFIX
    assert raw_table()["database_name"] == "${aws_glue_catalog_database.lake.name}"
    assert hcl_table_input("lake") == athena_fake.raw_table_input("lake", raw.RAW_PREFIX)


def test_the_crawler_checks_the_raw_table_weekly_and_never_changes_it():
    crawler = terraform().resource("aws_glue_crawler", "raw")
    assert crawler["schedule"] == "cron(0 6 ? * SUN *)"
    (target,) = crawler["catalog_target"]
    assert target == {
        "database_name": "${aws_glue_catalog_database.lake.name}",
        "tables": ["${aws_glue_catalog_table.raw_daily_prices.name}"],
    }
    # A catalog target is its only target (AWS refuses a mix), and AWS refuses
    # CRAWL_NEW_FOLDERS_ONLY on it.
    others = {"s3_target", "jdbc_target", "dynamodb_target", "delta_target"} & set(crawler)
    assert not others
    assert "table_prefix" not in crawler, "a catalog target creates no table to prefix"
    (recrawl,) = crawler["recrawl_policy"]
    assert recrawl["recrawl_behavior"] == "CRAWL_EVERYTHING"
    (policy,) = crawler["schema_change_policy"]
    assert policy == {"update_behavior": "LOG", "delete_behavior": "LOG"}
    configuration = crawler["configuration"]
    assert 'TableGroupingPolicy = "CombineCompatibleSchemas"' in configuration
    assert 'AddOrUpdateBehavior = "InheritFromTable"' in configuration
    assert crawler["classifiers"] == ["${aws_glue_classifier.raw_csv.name}"]


def crawler_policy() -> dict:
    """data.aws_iam_policy_document.crawler as IAM JSON, every expression resolved."""
    tf = terraform()
    values = {
        "${aws_s3_bucket.lake.arn}": LAKE_ARN,
        "${local.raw_prefix}": raw.RAW_PREFIX,
        '${trimsuffix(local.raw_prefix, "/")}': raw.RAW_PREFIX.rstrip("/"),
        "${aws_kms_key.main.arn}": KEY_ARN,
        "${local.partition}": "aws",
        "${var.region}": "us-east-1",
        "${local.account_id}": "111122223333",
        "${local.glue_database_name}": "marketlake",
    }

    def resolve(text: str) -> str:
        for expression, value in values.items():
            text = text.replace(expression, value)
        assert "${" not in text, f"the test cannot resolve {text}"
        return text

    def resources(value) -> list[str]:
        if isinstance(value, str):  # a whole list from a local
            name = value.removeprefix("${local.").removesuffix("}")
            value = tf.locals[name]
        return [resolve(v) for v in value]

    statements = []
    for s in tf.policy_document("crawler"):
        statement = {"Effect": "Allow", "Action": s["actions"]}
        statement["Resource"] = resources(s["resources"])
        for c in s.get("condition", []):
            condition = statement.setdefault("Condition", {}).setdefault(c["test"], {})
            condition[c["variable"]] = [resolve(v) for v in c["values"]]
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def crawler_may(action: str, resource: str, **context) -> bool:
    return evaluate([crawler_policy()], Request(action, resource, context)).allowed


def test_the_crawler_role_has_what_a_crawler_of_the_raw_table_needs():
    """AWS's crawler prerequisites: S3 read of the data (KMS-encrypted here), the bucket's
    location and listing, the table and its partitions, its logs; and nothing beyond."""
    table = "arn:aws:glue:us-east-1:111122223333:table/marketlake/raw_daily_prices"
    key = f"{raw.RAW_PREFIX}ingest_date=2024-01-02/NVDA.csv"
    assert crawler_may("s3:GetBucketLocation", LAKE_ARN)
    assert crawler_may("s3:GetObject", f"{LAKE_ARN}/{key}")
    assert crawler_may("kms:Decrypt", KEY_ARN)
    for prefix in (raw.RAW_PREFIX, raw.RAW_PREFIX.rstrip("/"), key.rsplit("/", 1)[0] + "/"):
        assert crawler_may("s3:ListBucket", LAKE_ARN, **{"s3:prefix": prefix}), prefix
    for action in ("glue:GetTable", "glue:GetPartitions", "glue:BatchCreatePartition"):
        assert crawler_may(action, table), action
    assert crawler_may(
        "logs:PutLogEvents",
        "arn:aws:logs:us-east-1:111122223333:log-group:/aws-glue/crawlers:log-stream:x",
    )
    # Terraform makes the table; the crawler reads only the raw zone.
    assert not crawler_may("glue:CreateTable", table)
    assert not crawler_may("s3:ListBucket", LAKE_ARN, **{"s3:prefix": "curated/"})
    assert not crawler_may("s3:ListBucket", LAKE_ARN, **{"s3:prefix": ""})
    assert not crawler_may("s3:GetObject", f"{LAKE_ARN}/state/ingest_state.json")


def test_the_csv_classifier_knows_the_raw_layout():
    (csv,) = terraform().resource("aws_glue_classifier", "raw_csv")["csv_classifier"]
    assert csv["contains_header"] == "PRESENT"
    assert csv["quote_symbol"] == '"'
    assert csv["delimiter"] == ","
    assert csv["serde"] == "OpenCSVSerDe"
    assert csv["header"] == "${local.raw_columns}"  # == raw.RAW_COLUMNS, checked above


def test_the_workflows_only_trigger_starts_the_job():
    """No crawler on the daily path: the Lambda's workflow run starts the WAP job, which
    adds the new raw partitions itself (AthenaEngine.register_raw)."""
    tf = terraform()
    triggers = tf.of_type("aws_glue_trigger")
    assert list(triggers) == ["start_build"]
    (trigger,) = triggers.values()
    assert trigger["type"] == "ON_DEMAND"
    assert trigger["workflow_name"] == "${aws_glue_workflow.build.name}"
    assert trigger["actions"] == [{"job_name": "${aws_glue_job.wap.name}"}]
    assert "predicate" not in trigger
