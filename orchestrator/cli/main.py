"""The `shipyard` entry point: sub-commands, and one-line errors instead of tracebacks."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from agents.models import ModelError
from agents.scripted_model import ScriptError
from orchestrator.cli import config_commands, job_commands, sandbox_commands, scripted_model_commands, worker_commands
from orchestrator.config import ConfigError
from orchestrator.jobs import JobLookupError
from orchestrator.runner import JobStateError
from sandboxes.base import SandboxError
from sandboxes.workspace import WorkspaceError
from tui.cli import tui as tui_command

app = typer.Typer(
    name="shipyard",
    help="Shipyard: a planner fans your task out to coder, test-fixer and reviewer agents "
    "working in sandboxes, each on its own git branch.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
job_commands.register(app)
worker_commands.register(app)
app.command()(tui_command)
app.add_typer(config_commands.app, name="config")
app.add_typer(sandbox_commands.app, name="sandbox")
app.add_typer(scripted_model_commands.app, name="scripted-model")

# Errors whose message already says what to do; anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, SandboxError, WorkspaceError, ModelError, ScriptError, JobLookupError, JobStateError)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="log debug detail to stderr")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    try:
        app()
    except USER_ERRORS as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)
