"""`--help` reads as paragraphs, and the settings' environment variables are named."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from marketlake.cli import app


def commands(typer_app):
    yield from typer_app.registered_commands
    for group in typer_app.registered_groups:
        yield from commands(group.typer_instance)


def test_each_commands_help_is_paragraphs_without_the_sources_line_breaks():
    helps = [info.help for info in commands(app)]
    assert len(helps) >= 12 and all(helps)
    for text in helps:
        for paragraph in text.split("\n\n"):
            assert "\n" not in paragraph, paragraph


def test_a_paragraph_wraps_to_the_terminal_not_to_the_source():
    result = CliRunner().invoke(app, ["build", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    # The docstring breaks after "are left"; reflowed, the sentence runs on in one line.
    assert re.search(r"\.\.\.\) are left out and kept", result.stdout)


def flat(args: list[str]) -> str:
    """The help as one line of words: the panel's borders and wrapping taken out."""
    text = CliRunner().invoke(app, args, env={"COLUMNS": "200"}).stdout
    return re.sub(r"[\s│]+", " ", text)


def test_the_environment_variables_show_in_the_options_help():
    # Rich reads a bare "[env: ...]" as a markup tag and drops it: the help escapes it.
    assert "[env: MARKETLAKE_HOME, default ./lake]" in flat(["--help"])
    ingest = flat(["ingest", "--help"])
    for name in ("MARKETLAKE_TICKERS", "MARKETLAKE_PROVIDER", "MARKETLAKE_SEED"):
        assert f"[env: {name}" in ingest
