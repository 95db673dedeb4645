"""The files in deploy/ may only use commands and settings that exist in the code."""

import re
from pathlib import Path

import typer.main

from gateway.cli.main import app
from gateway.config import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
# Variables read outside Settings: the sample recognizer's secret, and the CLIs' defaults.
OTHER_VARIABLES = {"RECOGHUB_RECOGNIZER_SECRET", "RECOGHUB_HUB", "RECOGHUB_API_KEY"}


def deploy_text() -> str:
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    assert len(files) >= 6, f"deploy/ looks incomplete: {files}"
    return "\n".join(p.read_text() for p in files)


def known_variables() -> set[str]:
    return {f"RECOGHUB_{name.upper()}" for name in Settings.model_fields} | OTHER_VARIABLES


def recoghub_commands() -> set[str]:
    group = typer.main.get_command(app)
    commands = getattr(group, "commands", None)
    assert commands, "recoghub has no sub-commands"
    return set(commands)


def test_every_variable_in_deploy_exists() -> None:
    used = set(re.findall(r"RECOGHUB_[A-Z_]+", deploy_text()))
    assert used, "deploy/ sets no RECOGHUB_ variables"
    assert used <= known_variables(), f"unknown settings: {sorted(used - known_variables())}"


def test_every_recoghub_command_in_deploy_exists() -> None:
    text = deploy_text()
    used = set(re.findall(r"bin/recoghub ([a-z-]+)", text))
    # compose.yaml passes the command as the first list item after the entrypoint.
    used |= set(re.findall(r'command: \["([a-z-]+)"', text))
    used |= set(re.findall(r'CMD \["([a-z-]+)"', text))
    used -= {"--host"}  # the recognizer's options, not a recoghub command
    assert {"serve", "worker", "migrate"} <= used
    assert used <= recoghub_commands(), f"unknown commands: {sorted(used - recoghub_commands())}"


def test_recognizer_options_in_deploy_exist() -> None:
    from sample_recognizer.main import app as recognizer_app

    command = typer.main.get_command(recognizer_app)
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    used = set(re.findall(r'"(--[a-z-]+)"', deploy_text().split("recognizer:")[-1]))
    assert used <= options, f"unknown recognizer options: {sorted(used - options)}"
