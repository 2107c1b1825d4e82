"""The rehearsal's emulator: moto's server on loopback, the environment that points
Terraform and boto3 at it, stand-in layers, and the generated working copy of terraform/
whose override handles the emulator's known gaps (`make rehearse`, infra/rehearse.py)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import socket
import time
import urllib.request
import zipfile
from pathlib import Path

import tf

REPO = tf.REPO
WORK = REPO / ".rehearsal"  # git-ignored; recreated on every run
REGION = "us-east-1"
SERVICES = (
    *("athena", "cloudwatch", "events", "logs", "glue", "grafana", "iam", "kms", "lambda"),
    *("s3", "scheduler", "secretsmanager", "sns", "sqs", "sts"),
)


# Where the emulator differs from AWS, handled in the override (never in terraform/).
# Each entry: what the override says, and why.
GAPS = {
    "glue_classifier": (
        'resource "aws_glue_classifier" "raw_csv" {\n  count = 0\n}\n\n'
        'resource "aws_glue_crawler" "raw" {\n  classifiers = []\n}\n',
        "moto has not implemented Glue CreateClassifier (it answers 500); the crawler is "
        "played by athena_fake.crawl_raw, which reads the CSV the way the classifier says",
    ),
    "tls_only_bucket_policy": (
        'resource "aws_s3_bucket_policy" "tls_only" {\n  for_each = {}\n}\n',
        "moto evaluates the TLS-only bucket policy without understanding aws:SecureTransport, "
        "so it denies every object PUT, TLS or not",
    ),
}
# What a second plan after apply shows only because the emulator does not model a field:
# address -> (the attributes that may differ, why). Any other change fails the rehearsal.


class StageFailed(Exception):
    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage


def say(text: str) -> None:
    print(f"rehearse: {text}", flush=True)


# -- the emulator -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def emulator(log: Path):
    """moto's server on 127.0.0.1:<free port>, in a thread of this process: it cannot
    outlive the rehearsal, however the rehearsal ends. Its request log goes to `log`."""
    from moto.server import ThreadedMotoServer

    handler = logging.FileHandler(log, mode="w")
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(handler)
    werkzeug.propagate = False
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise StageFailed("emulator", f"moto not answering on {url}") from None
                time.sleep(0.2)
        yield url
    finally:
        server.stop()
        werkzeug.removeHandler(handler)
        handler.close()


# What a user's shell may hold that would change what the rehearsal applies or where.
FOREIGN_TERRAFORM = ("TF_VAR_", "TF_CLI_ARGS", "TF_WORKSPACE", "TF_DATA_DIR", "AWS_")


def rehearsal_environment(work: Path, mirror, endpoint: str) -> dict:
    ours = aws_environment(endpoint)
    env = tf.environment(work / ".tfcli", mirror, ours)
    for name in list(env):
        if name.startswith(FOREIGN_TERRAFORM) and name not in ours:
            del env[name]
    return env


def aws_environment(endpoint: str) -> dict:
    """Test credentials and every boto3 client pointed at the emulator."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }


@contextlib.contextmanager
def patched_environ(values: dict, clear_prefixes: tuple = ()):
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name.startswith(clear_prefixes):
                del os.environ[name]
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def client(service: str, endpoint: str):
    import boto3

    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def stand_in_layers(endpoint: str) -> dict:
    """Publish empty layers in place of the public ones (other accounts' layers don't exist in
    the emulator); the real contents (pandas, powertools) are in this venv for the run."""
    lam = client("lambda", endpoint)
    arns = {}
    for variable, name in (
        ("sdk_pandas_layer_arn", "rehearsal-AWSSDKPandas-Python313"),
        ("powertools_layer_arn", "rehearsal-AWSLambdaPowertoolsPythonV3-python313-x86_64"),
    ):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("python/README.txt", f"stand-in for {name}\n")
        published = lam.publish_layer_version(
            LayerName=name,
            Content={"ZipFile": buffer.getvalue()},
            CompatibleRuntimes=["python3.13"],
        )
        arns[variable] = published["LayerVersionArn"]
    return arns


# -- the working copy -------------------------------------------------------------------------


def override_text(endpoint: str) -> str:
    endpoints = "\n".join(f'    {name} = "{endpoint}"' for name in SERVICES)
    gaps = "\n".join(f"# gap {name}: {why}\n{text}" for name, (text, why) in GAPS.items())
    return (
        "# Generated by infra/rehearse.py for `make rehearse`; never part of terraform/.\n"
        "# State stays in this folder, whatever backend the module is given.\n"
        'terraform {\n  backend "local" {}\n}\n\n'
        "# The aws provider talks to moto's server on loopback with test credentials, and\n"
        "# retries little: an unimplemented call should fail fast, not back off for minutes.\n"
        'provider "aws" {\n'
        '  access_key                  = "testing"\n'
        '  secret_key                  = "testing"\n'
        "  skip_credentials_validation = true\n"
        "  skip_metadata_api_check     = true\n"
        "  s3_use_path_style           = true\n"
        "  max_retries                 = 2\n"
        "  endpoints {\n"
        f"{endpoints}\n"
        "  }\n"
        "}\n\n" + gaps
    )


def without_lines(work: Path, text: str) -> int:
    """Remove every line of the working copy's .tf files that mentions `text`, as a person
    removing a grant would (`rehearse.py --without TEXT`); returns how many went."""
    removed = 0
    for path in sorted(work.glob("*.tf")):
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if text not in line]
        removed += len(lines) - len(kept)
        path.write_text("".join(kept))
    return removed


def working_copy(endpoint: str, variables: dict, without: str | None = None) -> Path:
    """terraform/ copied to .rehearsal/ (one level under the repo, as terraform/ is, so the
    module's ${path.module}/.. is still the repository), plus the override and the vars;
    with `without`, less every line that mentions it (the proof that the IAM check bites)."""
    if WORK.exists():
        shutil.rmtree(WORK)
    shutil.copytree(
        REPO / "terraform",
        WORK,
        ignore=shutil.ignore_patterns(
            ".terraform",
            "*.tfstate*",
            ".terraform.lock.hcl",
            "grafana",
            "*.tfvars",
            "*.tfvars.json",
        ),
    )
    if without is not None and not without_lines(WORK, without):
        raise StageFailed("setup", f"no line of terraform/*.tf mentions {without!r}")
    (WORK / "rehearse_override.tf").write_text(override_text(endpoint))
    (WORK / "rehearse.auto.tfvars.json").write_text(json.dumps(variables, indent=2) + "\n")
    return WORK
