"""The dashboards the Grafana stack provisions default their symbol variable to the watchlist,
the AWS stack's tickers: terraform/modules/dashboards, evaluated by real Terraform offline
(it has no provider), and the wiring from var.tickers through grafana_stack_inputs,
infra/stacks.py and terraform/grafana/ to every grafana_dashboard."""

from __future__ import annotations

import json
import shutil

import pytest
import tf
from infra_contract import REPO, TERRAFORM, grafana_stack, interp, parse_dir, terraform

from marketlake.config import DEFAULT_TICKERS

DASHBOARDS = REPO / "grafana" / "dashboards"
MODULE = TERRAFORM / "modules" / "dashboards"
FILES = sorted(p.name for p in DASHBOARDS.glob("*.json"))
needs_terraform = pytest.mark.skipif(
    shutil.which("terraform") is None, reason="needs Terraform on PATH"
)


def provisioned(tmp_path, watchlist: list[str], folder=DASHBOARDS, files=FILES) -> dict:
    """terraform apply of the provider-less module (offline): file -> the decoded JSON."""
    work = tmp_path / "dashboards"
    shutil.copytree(MODULE, work)
    env = tf.environment(tmp_path / "cli", None)
    tf.run(["init", "-backend=false", "-input=false"], work, env)
    flags = [
        f"-var=dashboards_dir={folder}",
        f"-var=files={json.dumps(files)}",
        f"-var=watchlist={json.dumps(watchlist)}",
    ]
    tf.run(["apply", "-auto-approve", "-input=false", *flags], work, env)
    _, output = tf.run(["output", "-json", "config_json"], work, env)
    return {file: json.loads(text) for file, text in json.loads(output).items()}


def symbol_variable(dashboard: dict) -> dict:
    return next(v for v in dashboard["templating"]["list"] if v["name"] == "symbol")


def as_in_repo(file: str) -> dict:
    return json.loads((DASHBOARDS / file).read_text(encoding="utf-8"))


@needs_terraform
def test_every_dashboards_symbol_default_is_the_watchlist_and_nothing_else_changes(tmp_path):
    watchlist = ["AAPL", "MSFT", "BRK.B"]
    found = provisioned(tmp_path, watchlist)
    assert sorted(found) == FILES and len(FILES) >= 2
    for file, dashboard in found.items():
        expected = as_in_repo(file)
        symbol_variable(expected)["current"] = {
            "selected": True,
            "text": watchlist,
            "value": watchlist,
        }
        assert dashboard == expected, file  # panels, ids (null), every other variable alike


@needs_terraform
def test_no_watchlist_the_whole_market_or_no_variables_keep_the_files_as_they_are(tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for file in FILES:
        shutil.copyfile(DASHBOARDS / file, bare / file)
    (bare / "plain.json").write_text('{"title": "plain", "panels": [], "id": null}')
    found = provisioned(tmp_path, [], bare, [*FILES, "plain.json"])
    assert found["plain.json"] == {"title": "plain", "panels": [], "id": None}
    for file in FILES:
        assert found[file] == as_in_repo(file)
    changed = provisioned(tmp_path / "again", ["AMD"], bare, [*FILES, "plain.json"])
    assert changed["plain.json"] == found["plain.json"]  # no templating: nothing to set
    # tickers = ["ALL"] is the whole market: no watchlist, never Allstate alone.
    whole = provisioned(tmp_path / "whole", ["ALL"], bare, FILES)
    assert whole == {file: as_in_repo(file) for file in FILES}


def test_the_files_default_is_the_default_watchlist_never_all():
    """What a self-hosted Grafana provisions from the files (grafana/provisioning), and what
    the AWS stack provisions with its default tickers, is one list: config.DEFAULT_TICKERS."""
    assert terraform().variables["tickers"]["default"] == list(DEFAULT_TICKERS)
    for file in FILES:
        current = symbol_variable(as_in_repo(file))["current"]
        assert current["value"] == current["text"] == list(DEFAULT_TICKERS), file


def test_the_tickers_reach_every_provisioned_dashboard():
    """var.tickers -> grafana_stack_inputs.watchlist -> infra/stacks.py -var=watchlist ->
    terraform/grafana var.watchlist -> module.dashboards -> grafana_dashboard.config_json."""
    import stacks

    inputs = terraform().outputs["grafana_stack_inputs"]["value"]
    assert interp(inputs["watchlist"]) == "var.tickers"
    sample = {key: f"<{key}>" for key in inputs} | {"watchlist": ["NVDA", "BRK.B"]}
    flags = stacks.grafana_variables(sample)
    assert '-var=watchlist=["NVDA", "BRK.B"]' in flags
    older = {key: f"<{key}>" for key in inputs if key != "watchlist"}  # applied before it
    assert "-var=watchlist=[]" in stacks.grafana_variables(older)
    stack = grafana_stack()
    assert stack.variables["watchlist"]["type"] in ("list(string)", "${list(string)}")
    module = stack.modules["dashboards"]
    assert module["source"] == "../modules/dashboards"
    assert interp(module["watchlist"]) == "var.watchlist"
    assert interp(module["files"]) == "module.artifacts.dashboard_files"
    dashboard = stack.resource("grafana_dashboard", "this")
    assert interp(dashboard["config_json"]) == "module.dashboards.config_json[each.value]"
    assert interp(dashboard["for_each"]) == "toset(module.artifacts.dashboard_files)"
    declared = parse_dir(MODULE).variables
    assert set(declared) == {"dashboards_dir", "files", "watchlist"}
