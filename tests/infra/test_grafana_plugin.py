"""The Athena plugin install of `make deploy` (infra/grafana_plugin.py, infra/stacks.py)
against a loopback stand-in that answers like Grafana's plugin API, and the workspace's
admin precondition with real Terraform (`terraform test`, the aws provider mocked).

What no test here can prove: that Amazon Managed Grafana's catalog serves the pinned version
to a 10.4 workspace. There is no Grafana emulator; the stand-in follows Grafana's source
(pkg/api/plugins.go) and AWS's "Plugin API" page."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grafana_plugin
import pytest
import stacks
import tf
from infra_contract import TERRAFORM
from test_deploy_stacks import FAKE_TERRAFORM, MANAGED, grafana_client
from test_terraform_runs import lay_mirror

PINNED = "3.1.10"
TOKEN = "glsa_secret"
SETTINGS = "/api/plugins/grafana-athena-datasource/settings"
INSTALL = "/api/plugins/grafana-athena-datasource/install"


class FakeGrafana:
    """Grafana's plugin API on 127.0.0.1: GET settings (404 until installed, then 200 with
    info.version), POST install (200, or 409 for the version already there). Records every
    request; `refuse` maps a method to the status it answers instead; `transient` answers 503
    that many times first; `on_install` runs when an install arrives; `inert` answers 200 to
    an install and changes nothing; `redirect` answers every request with a 302 there."""

    def __init__(self, installed=None, refuse=None, transient=0, redirect=None, inert=False):
        self.installed = installed
        self.inert = inert
        self.refuse = refuse or {}
        self.transient = transient
        self.on_install = None
        self.redirect = redirect
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def answer(self, status: int, body: dict | None = None, headers=()):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def handle_one(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                owner.requests.append(
                    {
                        "method": method,
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "body": body,
                    }
                )
                if owner.redirect:
                    return self.answer(302, None, [("Location", owner.redirect)])
                if owner.transient:
                    owner.transient -= 1
                    return self.answer(503, {"message": "workspace restarting"})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self.answer(401, {"message": "Unauthorized"})
                if method in owner.refuse:
                    # Echo the credentials, as a careless proxy might: they must stay masked.
                    message = f"refused for {self.headers.get('Authorization')}"
                    return self.answer(owner.refuse[method], {"message": message})
                if method == "GET" and self.path == SETTINGS:
                    if owner.installed is None:
                        message = "Plugin not found, no installed plugin with that id"
                        return self.answer(404, {"message": message})
                    info = {"version": owner.installed}
                    return self.answer(200, {"id": "grafana-athena-datasource", "info": info})
                if method == "POST" and self.path == INSTALL:
                    if owner.on_install:
                        owner.on_install()
                    if body["version"] == owner.installed:
                        return self.answer(409, {"message": "Plugin already installed"})
                    if not owner.inert:
                        owner.installed = body["version"]
                    return self.answer(200)
                return self.answer(404, {"message": "Not found"})

            def do_GET(self):
                self.handle_one("GET")

            def do_POST(self):
                self.handle_one("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def ensure(grafana: FakeGrafana, **kwargs) -> str:
    kwargs.setdefault("sleep", lambda seconds: None)
    return grafana_plugin.ensure(grafana.url, TOKEN, PINNED, **kwargs)


# -- the install, idempotent ----------------------------------------------------------------


def test_not_installed_is_one_install_of_the_pinned_version_with_the_bearer_token():
    with FakeGrafana(installed=None) as grafana:
        said = ensure(grafana)
    assert grafana.calls() == [("GET", SETTINGS), ("POST", INSTALL), ("GET", SETTINGS)]
    (post,) = [r for r in grafana.requests if r["method"] == "POST"]
    assert post["body"] == {"version": PINNED}
    assert {r["auth"] for r in grafana.requests} == {f"Bearer {TOKEN}"}
    assert said == f"plugin grafana-athena-datasource installed {PINNED} in {grafana.url}"


def test_the_pinned_version_installed_already_is_left_alone():
    with FakeGrafana(installed=PINNED) as grafana:
        said = ensure(grafana)
    assert grafana.calls() == [("GET", SETTINGS)]
    assert said.endswith(f"{PINNED} already installed in {grafana.url}")


def test_another_version_installed_is_updated_to_the_pinned_one():
    with FakeGrafana(installed="2.12.0") as grafana:
        said = ensure(grafana)
    posts = [r for r in grafana.requests if r["method"] == "POST"]
    assert [p["body"] for p in posts] == [{"version": PINNED}]
    assert grafana.installed == PINNED
    assert f"updated from 2.12.0 to {PINNED}" in said


def test_an_install_that_races_another_is_accepted_once_grafana_reports_the_version():
    # Grafana answers 409 when that version is already there (installed meanwhile).
    with FakeGrafana(installed=None) as grafana:
        grafana.on_install = lambda: setattr(grafana, "installed", PINNED)
        said = ensure(grafana)
    assert "installed" in said and grafana.installed == PINNED


@pytest.mark.parametrize(
    ("method", "status"), [("POST", 403), ("POST", 409), ("POST", 500), ("GET", 403)]
)
def test_a_refusal_is_one_line_naming_url_plugin_and_status_without_the_token(method, status):
    with (
        FakeGrafana(installed=None, refuse={method: status}) as grafana,
        pytest.raises(grafana_plugin.PluginError) as raised,
    ):
        ensure(grafana)
    message = str(raised.value)
    assert "\n" not in message and TOKEN not in message
    assert grafana.url in message and "grafana-athena-datasource" in message
    assert f"HTTP {status}" in message
    assert "refused for Bearer ***" in message  # Grafana's echo of the token, masked
    assert [m for m, _ in grafana.calls()].count("POST") == (1 if method == "POST" else 0)


def test_a_restarting_workspace_is_waited_for_then_a_lasting_outage_is_an_error():
    slept: list[float] = []
    with FakeGrafana(installed=None, transient=2) as grafana:
        ensure(grafana, sleep=slept.append)
    assert slept == [2.0, 4.0] and grafana.installed == PINNED

    slept.clear()
    with (
        FakeGrafana(installed=None, transient=99) as grafana,
        pytest.raises(grafana_plugin.PluginError, match="HTTP 503"),
    ):
        ensure(grafana, sleep=slept.append)
    assert slept == [2.0, 4.0, 8.0, 16.0] and len(grafana.requests) == grafana_plugin.ATTEMPTS


def test_nothing_listening_is_an_error_after_the_retries():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(grafana_plugin.PluginError, match="no answer after 5 attempts") as raised:
        grafana_plugin.ensure(f"http://127.0.0.1:{port}", TOKEN, PINNED, sleep=lambda s: None)
    assert TOKEN not in str(raised.value)


def test_a_redirect_is_reported_and_never_followed_with_the_token():
    with (
        FakeGrafana(installed=None) as elsewhere,
        FakeGrafana(redirect=elsewhere.url + SETTINGS) as grafana,
        pytest.raises(grafana_plugin.PluginError, match="HTTP 302"),
    ):
        ensure(grafana)
    assert elsewhere.requests == []


def test_an_install_grafana_accepts_but_does_not_show_is_an_error():
    with (
        FakeGrafana(installed="2.12.0", inert=True) as grafana,
        pytest.raises(grafana_plugin.PluginError, match=r"reports version 2\.12\.0 inst"),
    ):
        ensure(grafana)


# -- make deploy: between the AWS stack and the Grafana stack ------------------------------------


@pytest.fixture
def terraform_stand_in(tmp_path, monkeypatch):
    """The recording terraform of test_terraform_runs (its script), set up here so that this
    module's deploys reach the loopback Grafana whatever that module's fixtures stub."""
    script = tmp_path / "terraform"
    script.write_text(FAKE_TERRAFORM.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("TF", str(script))
    monkeypatch.setenv("FAKE_TF_CALLS", str(calls))
    monkeypatch.setenv("TF_PROVIDER_MIRROR", str(lay_mirror(tmp_path)))
    for name in ("TF_APPLY_FLAGS", "TF_VAR_grafana_auth", "FAKE_TF_FAIL", "FAKE_TF_HANG"):
        monkeypatch.delenv(name, raising=False)

    def outputs(inputs: dict) -> None:
        monkeypatch.setenv(
            "FAKE_TF_OUTPUTS", json.dumps({"grafana_stack_inputs": {"value": inputs}})
        )

    def recorded() -> list[tuple[str, str]]:
        rows = [json.loads(line) for line in calls.read_text().splitlines()]
        return [("grafana" if r["cwd"].endswith("grafana") else "aws", r["args"][0]) for r in rows]

    return outputs, recorded


def test_deploy_installs_the_plugin_after_the_token_and_before_the_grafana_apply(
    terraform_stand_in,
    monkeypatch,
    capsys,
):
    outputs, recorded = terraform_stand_in
    stubs: list = []
    monkeypatch.setattr("boto3.client", lambda service, **kw: grafana_client(stubs))
    seen: list = []
    with FakeGrafana(installed=None) as grafana:
        grafana.on_install = lambda: seen.extend(recorded())
        outputs(dict(MANAGED, url=grafana.url, athena_plugin_version=PINNED))
        assert stacks.main(["deploy"]) == 0
    assert seen == [("aws", "init"), ("aws", "apply"), ("aws", "output"), ("grafana", "init")]
    assert ("grafana", "apply") in recorded()
    assert grafana.installed == PINNED
    assert {r["auth"] for r in grafana.requests} == {"Bearer glsa_secret"}  # the minted token
    assert f"installed {PINNED}" in capsys.readouterr().out
    stubs[0].assert_no_pending_responses()


def test_a_refused_install_stops_before_the_grafana_apply_and_still_revokes_the_token(
    terraform_stand_in,
    monkeypatch,
    capsys,
):
    outputs, recorded = terraform_stand_in
    stubs: list = []
    monkeypatch.setattr("boto3.client", lambda service, **kw: grafana_client(stubs))
    with FakeGrafana(installed=None, refuse={"POST": 403}) as grafana:
        outputs(dict(MANAGED, url=grafana.url, athena_plugin_version=PINNED))
        assert stacks.main(["deploy"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "glsa_secret" not in err
    assert err.startswith("error: Grafana stack: POST " + grafana.url)
    assert "grafana-athena-datasource" in err and "HTTP 403" in err
    assert ("grafana", "apply") not in recorded()
    stubs[0].assert_no_pending_responses()


def test_an_existing_grafana_is_told_it_needs_the_plugin_and_is_not_touched(capsys):
    with FakeGrafana(installed=None) as grafana:
        stacks.athena_plugin(dict(MANAGED, url=grafana.url, managed=False), TOKEN)
    assert grafana.requests == []
    assert "needs the grafana-athena-datasource plugin installed" in capsys.readouterr().out


def test_plan_and_destroy_install_nothing(terraform_stand_in, monkeypatch):
    outputs, _ = terraform_stand_in
    monkeypatch.setattr("boto3.client", lambda service, **kw: grafana_client([]))
    with FakeGrafana(installed=None) as grafana:
        outputs(dict(MANAGED, url=grafana.url, athena_plugin_version=PINNED))
        assert stacks.main(["plan"]) == 0
        monkeypatch.setattr("boto3.client", lambda service, **kw: grafana_client([]))
        assert stacks.main(["destroy"]) == 0
    assert grafana.requests == []


# -- the workspace's admin precondition, with real Terraform -------------------------------------

needs_terraform_test = pytest.mark.skipif(
    shutil.which(os.environ.get("TF", "terraform")) is None or tf.find_mirror() is None,
    reason="needs Terraform >= 1.7 (terraform test, mock_provider) and a mirror of hashicorp/aws",
)
MOCKS = """
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
}
"""
# Only Grafana's resources: a whole plan also needs make package's files, which are not here.
RUN = """
run "{name}" {{
  command = plan
  plan_options {{
    target = [aws_grafana_workspace.this, aws_grafana_role_association.admins]
  }}
  variables {{
    create_grafana         = {create}
    grafana_admin_user_ids = {ids}
  }}
{body}}}
"""
WORKSPACE = "aws_grafana_workspace.this[0]"
ACCEPTED_CHECKS = f"""
  assert {{
    condition     = {WORKSPACE}.grafana_version == "10.4"
    error_message = "grafana_version is not pinned to 10.4"
  }}
  assert {{
    condition     = jsondecode({WORKSPACE}.configuration).plugins.pluginAdminEnabled
    error_message = "plugin management is off"
  }}
  assert {{
    condition     = toset(aws_grafana_role_association.admins[0].user_ids) == toset(["u-1"])
    error_message = "the admins are not associated"
  }}
"""


def refused(ids: str) -> str:
    """One failing case per file: terraform test skips every run after a failed one."""
    return MOCKS + RUN.format(name="refused", create="true", ids=ids, body="")


ACCEPTED = (
    MOCKS
    + RUN.format(name="one_admin", create="true", ids='["u-1"]', body=ACCEPTED_CHECKS)
    + RUN.format(name="no_grafana_no_admin_needed", create="false", ids="[]", body="")
)


def terraform_test(tmp_path: Path, name: str, text: str) -> subprocess.CompletedProcess:
    copy = tmp_path / "terraform"
    if not copy.exists():
        shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".terraform*", "grafana"))
        env = tf.environment(tmp_path, tf.find_mirror())
        tf.run(["init", "-backend=false", "-input=false"], copy, env)
    (copy / "tests").mkdir(exist_ok=True)
    (copy / "tests" / f"{name}.tftest.hcl").write_text(text)
    return subprocess.run(
        [tf.terraform_binary(), "test", "-no-color", f"-filter=tests/{name}.tftest.hcl"],
        cwd=copy,
        env=tf.environment(tmp_path, tf.find_mirror()),
        capture_output=True,
        text=True,
    )


@needs_terraform_test
def test_create_grafana_without_an_admin_fails_at_plan_with_the_reason(tmp_path):
    reason = (
        "create_grafana = true needs at least one admin: set grafana_admin_user_ids to IAM "
        "Identity Center user ids (Identity Center requires AWS Organizations"
    )
    for name, ids in (("no_admin", "[]"), ("blank_admin", '[" "]')):
        done = terraform_test(tmp_path, name, refused(ids))
        output = " ".join((done.stdout + done.stderr).split())
        assert done.returncode == 1, output
        assert 'run "refused"... fail' in output
        assert "Resource precondition failed" in output and reason in output

    # The same harness passes with an admin: the failure above is the precondition's.
    accepted = terraform_test(tmp_path, "accepted", ACCEPTED)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "2 passed, 0 failed" in accepted.stdout


def test_the_stand_in_refuses_a_wrong_token():
    """The stand-in checks the header: a test that passes the wrong token must fail."""
    with (
        FakeGrafana(installed=None) as grafana,
        pytest.raises(grafana_plugin.PluginError, match="HTTP 401"),
    ):
        grafana_plugin.ensure(grafana.url, "other", PINNED, sleep=lambda s: None)
