"""Fail fast, in one line, when `make plan/deploy/destroy` cannot reach AWS or the account
cannot take the stack.

Checks what Terraform needs before it starts: the terraform CLI, AWS credentials that work
(sts:GetCallerIdentity) and, when terraform/ sets lambda_reserved_concurrency, that the
account's Lambda concurrency leaves room for it. Run with the project's venv Python (boto3
and python-hcl2 are dev dependencies).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path

TF_DIR = Path(__file__).resolve().parents[1] / "terraform"
RESERVED = "lambda_reserved_concurrency"
# "You can reserve concurrency for as many functions as you like, as long as you leave at
# least 100 simultaneous executions unreserved" (Lambda API reference, PutFunctionConcurrency).
MIN_UNRESERVED = 100
DEFAULTS = {"region": "us-east-1", "name_prefix": "marketlake"}  # as in terraform/variables.tf


class PreflightError(Exception):
    """One line: what is wrong and what to do."""


def _literal(value):
    """A value python-hcl2 read: strings lose the quotes it keeps."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _from_env(text: str):
    """A TF_VAR_ value: Terraform converts it to the variable's type; numbers and null here."""
    text = text.strip()
    if text == "null":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _read_file(path: Path) -> dict:
    if not path.is_file():
        raise PreflightError(f"variable file {path} not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.name.endswith(".json"):
            return json.loads(text)
        import hcl2

        return {name: _literal(value) for name, value in hcl2.loads(text).items()}
    except ImportError:
        raise PreflightError("python-hcl2 is missing from the venv: run make install") from None
    except Exception as exc:  # python-hcl2 raises lark's errors; Terraform would refuse too
        raise PreflightError(f"cannot read {path} ({type(exc).__name__}): fix its syntax") from None


def _flag_sources(flags: list[str], tf_dir: Path) -> list[dict]:
    """-var NAME=VALUE and -var-file=PATH (either spelling), in command-line order."""
    sources, args = [], iter(flags)
    for arg in args:
        for name in ("-var", "-var-file"):
            if arg == name:
                value = next(args, "")
            elif arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
            else:
                continue
            if name == "-var":
                key, _, text = value.partition("=")
                sources.append({key: _from_env(text)})
            else:
                path = Path(value)
                sources.append(_read_file(path if path.is_absolute() else tf_dir / path))
            break
    return sources


def terraform_variables(tf_dir: Path | None = None, environ=None, flags: list[str] = ()) -> dict:
    """The values Terraform will give the stack's variables, from the sources it reads and in
    its order, a later source winning (Terraform docs, "Variable definition precedence"):
    TF_VAR_ environment variables, terraform.tfvars, terraform.tfvars.json, *.auto.tfvars and
    *.auto.tfvars.json in lexical order of their names, then -var and -var-file flags."""
    tf_dir = TF_DIR if tf_dir is None else tf_dir
    environ = os.environ if environ is None else environ
    values = {
        name[len("TF_VAR_") :]: _from_env(text)
        for name, text in environ.items()
        if name.startswith("TF_VAR_")
    }
    files = [tf_dir / "terraform.tfvars", tf_dir / "terraform.tfvars.json"]
    files += sorted(
        (p for p in tf_dir.iterdir() if p.name.endswith((".auto.tfvars", ".auto.tfvars.json"))),
        key=lambda p: p.name,
    )
    for path in files:
        if path.is_file():
            values.update(_read_file(path))
    for source in _flag_sources(list(flags), tf_dir):
        values.update(source)
    return values


def check_reserved_concurrency(lambda_client, wanted: int, function_name: str) -> str:
    """The account's concurrency left unreserved if the ingest function reserves `wanted`;
    PreflightError if that is under Lambda's minimum. The function's own reservation (from
    an earlier deploy) is counted back in: Terraform replaces it, it does not add to it."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        limits = lambda_client.get_account_settings()["AccountLimit"]
        try:
            current = lambda_client.get_function_concurrency(FunctionName=function_name).get(
                "ReservedConcurrentExecutions", 0
            )
        except lambda_client.exceptions.ResourceNotFoundException:
            current = 0  # not deployed yet
    except (BotoCoreError, ClientError) as exc:
        raise PreflightError(
            f"cannot check the account's Lambda concurrency for {RESERVED} = {wanted} ({exc}); "
            "your credentials need lambda:GetAccountSettings and lambda:GetFunctionConcurrency"
        ) from None
    total = limits["ConcurrentExecutions"]
    left = limits["UnreservedConcurrentExecutions"] + (current or 0) - wanted
    if left < MIN_UNRESERVED:
        raise PreflightError(
            f"{RESERVED} = {wanted} would leave {left} of this account's {total} concurrent "
            f"executions unreserved; Lambda keeps at least {MIN_UNRESERVED}: remove {RESERVED} "
            "(conditional state writes keep overlapping runs safe) or raise the quota "
            "'Concurrent executions' (Service Quotas, AWS Lambda)"
        )
    return (
        f"Lambda concurrency: {RESERVED} = {wanted} leaves {left} of {total} unreserved "
        f"(at least {MIN_UNRESERVED} needed)"
    )


def check_account(variables: dict, lambda_client=None) -> str | None:
    """The account checks the variables call for; None when there is nothing to check."""
    wanted = variables.get(RESERVED)
    if isinstance(wanted, float) and wanted.is_integer():
        wanted = int(wanted)
    # Anything but a whole number >= 1 is the variable's own validation's to refuse.
    if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 1:
        return None
    region = variables.get("region") or DEFAULTS["region"]
    function_name = f"{variables.get('name_prefix') or DEFAULTS['name_prefix']}-ingest"
    if lambda_client is None:
        import boto3

        lambda_client = boto3.client("lambda", region_name=region)
    return check_reserved_concurrency(lambda_client, wanted, function_name)


def main() -> int:
    terraform = os.environ.get("TF", "terraform")
    if shutil.which(terraform) is None:
        print(
            f"error: {terraform} not found: install Terraform >= 1.5 "
            "(https://developer.hashicorp.com/terraform/install) or run make TF=/path/to/terraform",
            file=sys.stderr,
        )
        return 1
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        print("error: boto3 is missing from the venv: run make install", file=sys.stderr)
        return 1
    try:
        identity = boto3.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        print(
            f"error: no working AWS credentials ({type(exc).__name__}): run `aws configure`, "
            "or export AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and AWS_REGION",
            file=sys.stderr,
        )
        return 1
    print(f"deploying as {identity['Arn']} (account {identity['Account']})")
    try:
        # make deploy TF_APPLY_FLAGS='-var=...' reaches Terraform, so it counts here too.
        flags = shlex.split(os.environ.get("TF_APPLY_FLAGS", ""))
        said = check_account(terraform_variables(flags=flags))
    except PreflightError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if said:
        print(said)
    return 0


if __name__ == "__main__":
    sys.exit(main())
