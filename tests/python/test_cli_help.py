"""The CLI's surface: help that fits 80 columns, grouped by panel; --version; --engine as a choice; completion."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata

import pytest
from typer.testing import CliRunner

from embed import cli
from tests.support import REPO

COMMANDS = ["sql", "run", "status", "failures", "validate", "similar", "plan-review", "doctor"]


@pytest.fixture
def narrow(monkeypatch) -> CliRunner:
    """A runner whose terminal is 80 columns wide."""
    monkeypatch.setenv("COLUMNS", "80")
    return CliRunner()


def help_of(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli.app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def flags_of(command: str) -> list[str]:
    """Every flag a command declares (long and short names, both sides of --x/--no-x)."""
    import typer.main

    click_command = typer.main.get_command(cli.app).commands[command]  # type: ignore[attr-defined]
    options = [param for param in click_command.params if param.param_type_name == "option"]
    return [name for param in options for name in (*param.opts, *param.secondary_opts)]


def test_the_commands_are_listed_with_their_whole_summary(narrow: CliRunner) -> None:
    text = help_of(narrow)
    listed = re.findall(r"^  ([a-z-]+)\s{2,}(.*)$", text.split("Commands:")[1], re.M)
    assert [name for name, _ in listed] == COMMANDS
    assert all(not summary.endswith("...") for _, summary in listed), listed


@pytest.mark.parametrize("command", COMMANDS)
def test_help_at_80_columns_cuts_no_flag_name(narrow: CliRunner, command: str) -> None:
    text = help_of(narrow, command)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text.replace("gs://…", "").replace("file://…", "")
    words = set(re.findall(r"(?<![\w-])-{1,2}[a-z][a-z-]*", text))
    missing = [flag for flag in flags_of(command) if flag not in words]
    assert not missing, f"{command} --help does not show {missing} whole:\n{text}"


def test_run_options_are_grouped_in_panels(narrow: CliRunner) -> None:
    text = help_of(narrow, "run")
    headings = re.findall(r"^(\w[\w ]*):$", text, re.M)
    assert headings == [
        "Engine",
        "Connection and settings sources",
        "Embedding options",
        "Video",
        "Run tuning",
        "Output",
        "Options",
    ]
    panel_of = {}
    heading = None
    for line in text.splitlines():
        if re.fullmatch(r"\w[\w ]*:", line):
            heading = line[:-1]
        for flag in re.findall(r"^  (--[a-z-]+)", line):
            panel_of[flag] = heading
    assert panel_of["--engine"] == panel_of["--images"] == "Engine"
    assert panel_of["--outputs"] == panel_of["--connection-service-account"] == "Connection and settings sources"
    assert panel_of["--output-dimensionality"] == "Embedding options"
    assert panel_of["--interval-seconds"] == "Video"
    assert panel_of["--batch-size"] == panel_of["--retry-delay"] == "Run tuning"
    assert panel_of["--json"] == "Output" and panel_of["--help"] == "Options"


def test_engine_is_a_choice_listed_in_help(narrow: CliRunner) -> None:
    assert "--engine [bigquery|local]" in help_of(narrow, "status").replace("<", "[").replace(">", "]")
    result = narrow.invoke(cli.app, ["status", "--engine", "locl"])
    assert result.exit_code == 2 and "'locl' is not one of 'bigquery', 'local'" in result.output


def test_version_is_the_installed_distribution() -> None:
    result = CliRunner().invoke(cli.app, ["--version"])
    assert result.exit_code == 0 and result.output == f"embed-kit {metadata.version('embed-kit')}\n"


def complete(words: str) -> list[str]:
    """What bash completion offers after ``words`` (typer's completion protocol, as the installed script calls it)."""
    cword = str(len(words.split(" ")) - 1)
    env = {**os.environ, "_EMBED_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
    done = subprocess.run(
        [sys.executable, "-c", "from embed.cli import app; app(prog_name='embed')"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_shell_completion_offers_commands_and_engines() -> None:
    assert complete("embed fa") == ["failures"]
    assert complete("embed run --engine ") == ["bigquery", "local"]
    assert "--install-completion" in CliRunner().invoke(cli.app, ["--help"]).output
