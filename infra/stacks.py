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
account, living an hour under a name of its own, revoked when the command ends (a revoke
that fails is said, and the token expires within the hour); for an existing Grafana
(grafana_url), TF_VAR_grafana_auth. Before the Grafana stack's apply, a managed workspace
gets the Athena data source plugin at the pinned version, with that token
(infra/grafana_plugin.py); an existing Grafana must have it already. Terraform runs in the
foreground: it asks before apply and destroy unless TF_APPLY_FLAGS says -auto-approve.
TF_APPLY_FLAGS go to the AWS stack;
the Grafana stack gets its -auto-approve, and GRAFANA_APPLY_FLAGS. A Ctrl-C (or SIGTERM,
SIGHUP) reaches Terraform, which stops gracefully; this script waits for it.

Your own Terraform CLI configuration (~/.terraformrc, TF_CLI_CONFIG_FILE) is used as it is;
only TF_PROVIDER_MIRROR, when you set it, makes a configuration that takes the aws provider
from that mirror.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import grafana_plugin
import tf

AWS_DIR = tf.REPO / "terraform"
GRAFANA_DIR = AWS_DIR / "grafana"
TOKEN_SECONDS = 3600  # long enough for one apply; AWS allows up to 30 days
TOKEN_PREFIX = "make-deploy"  # + time and pid: a name must be unique in the workspace


class StackError(Exception):
    """One line: which stack, what failed, what to do."""


def terraform(args: list[str], cwd: Path, env: dict) -> int:
    """terraform in the foreground (its prompts and progress are the user's). The terminal's
    Ctrl-C reaches it directly; this script ignores it and waits for Terraform to stop as
    it does on Ctrl-C, state written. SIGTERM and SIGHUP are passed on as that Ctrl-C."""
    process = subprocess.Popen([tf.terraform_binary(), *args], cwd=cwd, env=env)
    forward = {
        signum: signal.signal(signum, lambda *_: process.send_signal(signal.SIGINT))
        for signum in (signal.SIGTERM, signal.SIGHUP)
    }
    forward[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return process.wait()
    finally:
        for signum, handler in forward.items():
            signal.signal(signum, handler)


def init(cwd: Path, env: dict, label: str) -> None:
    if terraform(["init", "-input=false"], cwd, env) != 0:
        raise StackError(f"{label}: terraform init failed (see above)")


def aws_outputs(env: dict, required: bool = False) -> dict | None:
    """The AWS stack's outputs, or None when it has no state yet (an error if required)."""
    done = subprocess.run(
        [tf.terraform_binary(), "output", "-json", "-no-color"],
        cwd=AWS_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    outputs = {}
    if done.returncode == 0:
        outputs = {name: body["value"] for name, body in json.loads(done.stdout or "{}").items()}
    if required and "grafana_stack_inputs" not in outputs:
        raise StackError(
            "AWS stack (terraform/): terraform output has no grafana_stack_inputs "
            f"({tf.first_error(done.stderr or done.stdout)}); run make deploy again"
        )
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
        # A list, as HCL (JSON is HCL); missing from the outputs of a stack applied before it.
        "watchlist": json.dumps(inputs.get("watchlist") or []),
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
    from botocore.exceptions import BotoCoreError, ClientError

    if grafana is None:
        import boto3

        grafana = boto3.client("grafana", region_name=inputs["region"])
    ids = {"workspaceId": inputs["workspace_id"], "serviceAccountId": inputs["service_account_id"]}
    name = f"{TOKEN_PREFIX}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{os.getpid()}"
    try:
        minted = grafana.create_workspace_service_account_token(
            name=name, secondsToLive=TOKEN_SECONDS, **ids
        )["serviceAccountToken"]
    except (BotoCoreError, ClientError) as exc:
        raise StackError(
            f"Grafana stack: cannot mint a token for workspace {inputs['workspace_id']} "
            f"({exc}); your credentials need grafana:CreateWorkspaceServiceAccountToken"
        ) from None
    try:
        yield minted["key"]
    finally:
        try:
            grafana.delete_workspace_service_account_token(tokenId=minted["id"], **ids)
        except (BotoCoreError, ClientError) as exc:
            print(
                f"warning: could not revoke Grafana token {name} ({exc}); it expires by itself "
                f"within {TOKEN_SECONDS // 60} minutes",
                file=sys.stderr,
            )


def athena_plugin(inputs: dict, token: str) -> None:
    """The Athena data source plugin at the pinned version, before the data source is made:
    installed in a workspace this stack created; an existing Grafana is its owner's to equip."""
    if not inputs.get("managed"):
        print(
            f"Grafana stack: {inputs['url']} is not managed here: it needs the "
            f"{grafana_plugin.PLUGIN_ID} plugin installed (make deploy installs it only in a "
            "workspace it creates)"
        )
        return
    version = inputs.get("athena_plugin_version")
    if not version:
        raise StackError(
            "AWS stack (terraform/): grafana_stack_inputs has no athena_plugin_version; "
            "run make deploy again"
        )
    try:
        print("Grafana stack: " + grafana_plugin.ensure(inputs["url"], token, version))
    except grafana_plugin.PluginError as exc:
        raise StackError(
            f"Grafana stack: {exc}. The AWS stack is deployed; fix the cause and run make "
            "deploy again"
        ) from None


def grafana_stack(command: list[str], env: dict, inputs: dict, target: str, grafana=None) -> None:
    label = "Grafana stack (terraform/grafana)"
    init(GRAFANA_DIR, env, label)
    with grafana_token(inputs, grafana) as token:
        if command[0] == "apply":
            athena_plugin(inputs, token)
        child = dict(env, TF_VAR_grafana_auth=token)
        if terraform([*command, "-input=false", *grafana_variables(inputs)], GRAFANA_DIR, child):
            raise StackError(
                f"{label}: terraform {command[0]} failed (see above); the AWS stack is as it "
                f"was. Fix the cause and run make {target} again (the AWS stack's part is then "
                "a no-op)"
            )


def cli_environment() -> dict:
    """The user's environment; with TF_PROVIDER_MIRROR (and no CLI config of their own), a
    configuration that takes the aws provider from that mirror."""
    if not os.environ.get("TF_PROVIDER_MIRROR") or os.environ.get("TF_CLI_CONFIG_FILE"):
        return dict(os.environ)
    return tf.environment(Path(tempfile.mkdtemp(prefix="marketlake-tf-")), tf.find_mirror())


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("plan", "deploy", "destroy"):
        print("usage: python infra/stacks.py plan|deploy|destroy", file=sys.stderr)
        return 2
    action = argv[0]
    flags = shlex.split(os.environ.get("TF_APPLY_FLAGS", ""))
    grafana_flags = [f for f in flags if f == "-auto-approve"]
    grafana_flags += shlex.split(os.environ.get("GRAFANA_APPLY_FLAGS", ""))
    aws_label = "AWS stack (terraform/)"
    try:
        env = cli_environment()
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
            inputs = aws_outputs(env, required=True)["grafana_stack_inputs"]
            if inputs["enabled"]:
                grafana_stack(["apply", *grafana_flags], env, inputs, "deploy")
            else:
                print("Grafana stack: skipped (create_grafana = false and no grafana_url)")
        else:
            inputs = (aws_outputs(env) or {}).get("grafana_stack_inputs")
            if inputs and inputs["enabled"]:
                grafana_stack(["destroy", *grafana_flags], env, inputs, "destroy")
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
