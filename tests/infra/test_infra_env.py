"""Whatever the Lambda and the Glue job read from the environment, Terraform sets; and
Terraform sets nothing they do not read. The reads are collected with `ast`."""

from __future__ import annotations

import ast
import json

from infra_contract import (
    GLUE_SCRIPT,
    SRC,
    env_reads,
    function_node,
    import_closure,
    parse_py,
    terraform,
)

from marketlake.aws import lambda_ingest as aws

# Read by the code, deliberately not set on the Lambda. Each with its reason.
NOT_ON_THE_LAMBDA = {
    "ALPHAVANTAGE_API_KEY": "the key comes from Secrets Manager via ALPHAVANTAGE_SECRET_ID; "
    "a literal would sit in Terraform state and in the function's configuration",
    "LAKE_PREFIX": "the bucket is the lake's own: its root is the lake root",
    "MARKETLAKE_HOME": "the local lake directory; on AWS the lake is the bucket (S3Store)",
    "MARKETLAKE_SEED": "seeds the synthetic market; the Lambda runs alphavantage or polygon",
    "MARKETLAKE_DUCKDB_MEMORY_LIMIT": "DuckDB runs the local build only",
    "MARKETLAKE_DUCKDB_THREADS": "DuckDB runs the local build only",
    "MARKETLAKE_KEEP_VERSIONS": "a build setting: the Glue job gets it as --keep_versions",
    "MARKETLAKE_MAX_BAD_ROW_PCT": "a build setting: the Glue job gets it as --max_bad_row_pct",
    "ALPHAVANTAGE_BASE_URL": "points the tests at their loopback server; the default is the API",
    "POLYGON_API_KEY": "the key comes from Secrets Manager via POLYGON_SECRET_ID; a literal "
    "would sit in Terraform state and in the function's configuration",
    "POLYGON_BASE_URL": "points the tests at their loopback server; the default is the API",
}
# Which provider's settings a deployment gets: the variables each one's code reads.
PROVIDER_PREFIXES = {"alphavantage": "ALPHAVANTAGE_", "polygon": "POLYGON_"}


def lambda_reads() -> set[str]:
    """The Lambda's code path: marketlake.aws.lambda_ingest.run (which logs and re-raises)
    and _run (the work), key_secrets they both call (where each provider's key is), and
    Settings.from_env, which reads what its fields declare."""
    module = SRC / "aws" / "lambda_ingest.py"
    return (
        env_reads(function_node(module, "run"))
        | env_reads(function_node(module, "_run"))
        | env_reads(function_node(module, "key_secrets"))
        | env_reads(function_node(SRC / "config.py", "Settings"))
    )


def lambda_environments() -> dict[str, dict]:
    """The function's environment with each data_provider: the settings of every run merged
    with the chosen provider's (terraform/ingest.tf)."""
    tf = terraform()
    (block,) = tf.resource("aws_lambda_function", "ingest")["environment"]
    assert block["variables"] == (
        "${merge(local.ingest_environment, local.provider_environment[var.data_provider])}"
    ), "the contract reads the environment as that merge: keep it, or teach the contract"
    common = tf.locals["ingest_environment"]
    return {name: {**common, **own} for name, own in tf.locals["provider_environment"].items()}


def lambda_environment() -> dict:
    """Every variable Terraform may set on the function, whichever the provider."""
    merged: dict = {}
    for environment in lambda_environments().values():
        merged.update(environment)
    return merged


def test_the_code_reads_what_the_contract_expects_to_find():
    # Guards the collector itself: if it found nothing, every test below would pass vacuously.
    reads = lambda_reads()
    assert {"LAKE_BUCKET", "ALPHAVANTAGE_SECRET_ID", "GLUE_WORKFLOW_NAME"} <= reads
    assert {"POLYGON_SECRET_ID", "POLYGON_CALLS_PER_MINUTE"} <= reads
    assert {"MARKETLAKE_TICKERS", "ALPHAVANTAGE_CALLS_PER_DAY"} <= reads


def test_every_variable_the_lambda_reads_is_set_by_terraform():
    missing = lambda_reads() - set(lambda_environment()) - set(NOT_ON_THE_LAMBDA)
    assert not missing, (
        f"the Lambda reads {sorted(missing)} but terraform/ingest.tf does not set them: "
        "set them in aws_lambda_function.ingest's environment, or add them to "
        "NOT_ON_THE_LAMBDA with the reason"
    )


def test_terraform_sets_nothing_the_lambda_does_not_read():
    unused = set(lambda_environment()) - lambda_reads()
    assert not unused, f"terraform/ingest.tf sets {sorted(unused)}, which no code reads"


def test_the_exemptions_are_read_by_the_code_and_not_set():
    reads, environment = lambda_reads(), lambda_environment()
    stale = set(NOT_ON_THE_LAMBDA) - reads
    assert not stale, f"NOT_ON_THE_LAMBDA lists {sorted(stale)}, which the code no longer reads"
    both = set(NOT_ON_THE_LAMBDA) & set(environment)
    assert not both, f"{sorted(both)} are exempted yet set by Terraform"


def test_each_provider_gets_its_own_settings_and_no_other():
    """One map per value of data_provider, whose validation lists exactly those; the common
    map names no provider's setting, and each provider's map only its own."""
    tf = terraform()
    environments = lambda_environments()
    (validation,) = tf.variables["data_provider"]["validation"]
    listed = json.dumps(sorted(environments))
    assert validation["condition"] == f"${{contains({listed}, var.data_provider)}}"
    assert set(environments) == set(PROVIDER_PREFIXES) == set(aws.key_secrets({}))
    assert not [n for n in tf.locals["ingest_environment"] if n.startswith(("ALPHA", "POLY"))]
    for name, own in tf.locals["provider_environment"].items():
        foreign = [n for n in own if not n.startswith(PROVIDER_PREFIXES[name])]
        assert not foreign, f"the {name} deployment gets {foreign}"
        # The Lambda finds the chosen provider's secret, and that deployment names no other.
        secrets = aws.key_secrets({n: f"<{n}>" for n in environments[name]})
        assert {p for p, (_, secret) in secrets.items() if secret} == {name}


def test_the_api_keys_never_sit_in_terraform():
    tf = terraform()
    for environment in lambda_environments().values():
        assert not {"ALPHAVANTAGE_API_KEY", "POLYGON_API_KEY"} & set(environment)
    alphavantage, polygon = (tf.locals["provider_environment"][p] for p in PROVIDER_PREFIXES)
    assert alphavantage["ALPHAVANTAGE_SECRET_ID"] == "${aws_secretsmanager_secret.alphavantage.arn}"
    # The Polygon secret exists only with data_provider = "polygon" (count): one() of it.
    assert polygon["POLYGON_SECRET_ID"] == "${one(aws_secretsmanager_secret.polygon[*].arn)}"
    assert tf.resource("aws_secretsmanager_secret", "polygon")["count"] == (
        '${var.data_provider == "polygon" ? 1 : 0}'
    )
    assert not tf.of_type("aws_secretsmanager_secret_version"), (
        "a secret version in Terraform puts the key in state; set it with "
        "aws secretsmanager put-secret-value"
    )
    for name in PROVIDER_PREFIXES:
        secret = tf.resource("aws_secretsmanager_secret", name)
        assert secret["kms_key_id"] == "${aws_kms_key.main.arn}"
        assert "put-secret-value" in secret["description"]
        assert "put-secret-value" in tf.outputs[f"{name}_secret_arn"]["description"]


def test_the_lambda_points_at_the_stack_it_belongs_to():
    tf = terraform()
    environment = lambda_environment()
    assert environment["LAKE_BUCKET"] == "${aws_s3_bucket.lake.id}"
    assert environment["GLUE_WORKFLOW_NAME"] == "${aws_glue_workflow.build.name}"
    assert environment["MARKETLAKE_PROVIDER"] == "${var.data_provider}"
    assert tf.variables["data_provider"]["default"] == "alphavantage"
    assert environment["MARKETLAKE_TICKERS"] == '${join(",", var.tickers)}'


def test_the_glue_job_reads_no_environment_only_its_arguments():
    """The job's settings arrive as job arguments (checked in test_infra_glue.py): no module
    of its import closure may read os.environ, and the job's settings (lakes.job_settings,
    shared with `build --here`) come from Settings.from_env given a dict."""
    readers = []
    for path in import_closure(GLUE_SCRIPT)["files"]:
        if path.name == "config.py":
            continue  # Settings.from_env reads the mapping it is given; see below
        for node in ast.walk(parse_py(path)):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.append(f"{path.name}:{node.lineno}")
    assert not readers, f"the Glue job's code reads the environment at {readers}: wire it"
    job = parse_py(SRC / "aws" / "glue_job.py")
    assert any(
        isinstance(node, ast.Call) and getattr(node.func, "id", "") == "job_settings"
        for node in ast.walk(job)
    ), "job.py no longer builds its Settings with lakes.job_settings"
    shared = next(
        node
        for node in ast.walk(parse_py(SRC / "lakes.py"))
        if isinstance(node, ast.FunctionDef) and node.name == "job_settings"
    )
    calls = [
        node
        for node in ast.walk(shared)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "from_env"
    ]
    assert calls, "lakes.job_settings no longer builds its Settings with Settings.from_env"
    for call in calls:
        assert call.args and isinstance(call.args[0], ast.Dict), (
            "job_settings must pass Settings.from_env an explicit dict, not the environment"
        )
