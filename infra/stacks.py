"""`make plan`, `make deploy`, `make destroy`: the two root modules, in order.

  terraform/          the AWS stack: lake, ingest, Glue, Athena, alerts, the Grafana workspace
  terraform/grafana/  what lives inside Grafana: the Athena data source, a folder, dashboards

The Grafana stack's provider needs the workspace URL and a token, which exist only once the
AWS stack is applied (a provider's settings must be known before apply), so:
  deploy   applies the AWS stack, then the Grafana stack when Grafana is enabled;
  destroy  destroys the Grafana stack first, then the AWS stack;
  plan     plans the AWS stack, then the Grafana stack when the AWS stack has been applied.
The Grafana stack's inputs are the AWS stack's output grafana_stack_inputs. Its token: for
a managed workspace (create_grafana = true), one minted here for the Terraform service
account, living an hour, revoked when the command ends, success or not; for an existing
Grafana (grafana_url), TF_VAR_grafana_auth. Terraform runs in the foreground: it asks before
apply and destroy unless TF_APPLY_FLAGS says -auto-approve.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import tf

AWS_DIR = tf.REPO / "terraform"
GRAFANA_DIR = AWS_DIR / "grafana"
TOKEN_SECONDS = 3600  # long enough for one apply; AWS allows up to 30 days
TOKEN_NAME = "make-deploy"


class StackError(Exception):
    """One line: which stack, what failed, what to do."""


def terraform(args: list[str], cwd: Path, env: dict) -> int:
    """terraform in the foreground (its prompts and progress are the user's)."""
    return subprocess.run([tf.terraform_binary(), *args], cwd=cwd, env=env).returncode


def init(cwd: Path, env: dict, label: str) -> None:
    if terraform(["init", "-input=false"], cwd, env) != 0:
        raise StackError(f"{label}: terraform init failed (see above)")


def aws_outputs(env: dict) -> dict | None:
    """The AWS stack's outputs, or None when it has no state yet."""
    done = subprocess.run(
        [tf.terraform_binary(), "output", "-json", "-no-color"],
        cwd=AWS_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return None
    outputs = {name: body["value"] for name, body in json.loads(done.stdout or "{}").items()}
    return outputs or None


def grafana_variables(inputs: dict) -> list[str]:
    """-var flags for terraform/grafana/ from the AWS stack's grafana_stack_inputs."""
    values = {
        "grafana_url": inputs["url"],
        "name": inputs["name"],
        "region": inputs["region"],
        "glue_database": inputs["glue_database"],
        "athena_workgroup": inputs["athena_workgroup"],
        "results_bucket": inputs["results_bucket"],
        "datasource_uid": inputs["datasource_uid"],
        "athena_auth_type": inputs["athena_auth_type"],
    }
    return [f"-var={name}={value}" for name, value in values.items()]


@contextlib.contextmanager
def grafana_token(inputs: dict, grafana=None):
    """The token the Grafana stack signs in with: minted for a managed workspace and revoked
    on exit; for an existing Grafana, TF_VAR_grafana_auth (never minted, never revoked)."""
    if not inputs.get("managed"):
        token = os.environ.get("TF_VAR_grafana_auth", "")  # noqa: SIM112 - Terraform's spelling
        if not token:
            raise StackError(
                f"Grafana stack: no token for {inputs['url']}: export TF_VAR_grafana_auth="
                "<service account token of that Grafana>, then run make deploy again"
            )
        yield token
        return
    if grafana is None:
        import boto3

        grafana = boto3.client("grafana", region_name=inputs["region"])
    ids = {"workspaceId": inputs["workspace_id"], "serviceAccountId": inputs["service_account_id"]}
    minted = grafana.create_workspace_service_account_token(
        name=TOKEN_NAME, secondsToLive=TOKEN_SECONDS, **ids
    )["serviceAccountToken"]
    try:
        yield minted["key"]
    finally:
        grafana.delete_workspace_service_account_token(tokenId=minted["id"], **ids)


def grafana_stack(command: list[str], env: dict, inputs: dict, target: str, grafana=None) -> None:
    label = "Grafana stack (terraform/grafana)"
    init(GRAFANA_DIR, env, label)
    with grafana_token(inputs, grafana) as token:
        child = dict(env, TF_VAR_grafana_auth=token)
        if terraform([*command, "-input=false", *grafana_variables(inputs)], GRAFANA_DIR, child):
            raise StackError(
                f"{label}: terraform {command[0]} failed (see above); the AWS stack is as it "
                f"was. Fix the cause and run make {target} again (the AWS stack's part is then "
                "a no-op)"
            )


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("plan", "deploy", "destroy"):
        print("usage: python infra/stacks.py plan|deploy|destroy", file=sys.stderr)
        return 2
    action = argv[0]
    flags = shlex.split(os.environ.get("TF_APPLY_FLAGS", ""))
    aws_label = "AWS stack (terraform/)"
    try:
        env = tf.environment(tf.REPO / ".terraform-cli", tf.find_mirror())
        init(AWS_DIR, env, aws_label)
        if action == "plan":
            if terraform(["plan", "-input=false"], AWS_DIR, env) != 0:
                raise StackError(f"{aws_label}: terraform plan failed (see above)")
            inputs = (aws_outputs(env) or {}).get("grafana_stack_inputs")
            if inputs is None:
                print(
                    "Grafana stack: planned once the AWS stack is applied (its URL comes from it)"
                )
            elif inputs["enabled"]:
                grafana_stack(["plan"], env, inputs, "plan")
        elif action == "deploy":
            if terraform(["apply", "-input=false", *flags], AWS_DIR, env) != 0:
                raise StackError(
                    f"{aws_label}: terraform apply failed (see above); nothing of the Grafana "
                    "stack was touched. Fix the cause and run make deploy again"
                )
            inputs = aws_outputs(env)["grafana_stack_inputs"]
            if inputs["enabled"]:
                grafana_stack(["apply", *flags], env, inputs, "deploy")
            else:
                print("Grafana stack: skipped (create_grafana = false and no grafana_url)")
        else:
            inputs = (aws_outputs(env) or {}).get("grafana_stack_inputs")
            if inputs and inputs["enabled"]:
                grafana_stack(["destroy", *flags], env, inputs, "destroy")
            if terraform(["destroy", "-input=false", *flags], AWS_DIR, env) != 0:
                raise StackError(
                    f"{aws_label}: terraform destroy failed (see above); run make destroy again"
                )
    except (StackError, tf.TerraformError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
