"""The `shipyard` entry point: sub-commands, and one-line errors instead of tracebacks."""

from __future__ import annotations

import logging
import signal
import sys

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import OperationalError

from agents.model_errors import ModelError
from agents.scripted_model import ScriptError
from agents.validation import problems
from orchestrator.apps.cli import (
    campaign_commands,
    config_commands,
    env_commands,
    eval_commands,
    github_commands,
    job_commands,
    models_commands,
    sandbox_commands,
    scripted_model_commands,
    worker_commands,
)
from orchestrator.apps.cli.render import say_error
from orchestrator.config.settings import ConfigError
from orchestrator.engine.watch import JobHeldError
from orchestrator.runtime.director import JobStateError
from orchestrator.store.jobs import JobLookupError
from sandboxes.base import SandboxError
from sandboxes.git.command import WorkspaceError
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
campaign_commands.register(app)
worker_commands.register(app)
eval_commands.register(app)
app.command()(tui_command)
app.add_typer(config_commands.app, name="config")
app.add_typer(sandbox_commands.app, name="sandbox")
app.add_typer(env_commands.app, name="env")
app.add_typer(scripted_model_commands.app, name="scripted-model")
app.add_typer(github_commands.app, name="github")
app.add_typer(models_commands.app, name="models")

# Errors whose message already says what to do; anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, SandboxError, WorkspaceError, ModelError, ScriptError, JobLookupError, JobStateError,
               JobHeldError)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="log debug detail to stderr")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


# Click's error classes, wherever this typer takes click from (newer ones vendor it).
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _terminated(signum: int, frame: object) -> None:
    # SIGTERM ends a command the way Ctrl-C does: a running job stops its sandboxes and model calls.
    raise KeyboardInterrupt


def main() -> None:
    err = Console(stderr=True)
    signal.signal(signal.SIGTERM, _terminated)
    try:
        # Not standalone: click's own usage errors come here too, to be said in one line.
        code = app(standalone_mode=False)
    except _CLICK_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `shipyard` alone: the help is shown already
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if isinstance(exc, _USAGE_ERROR) and ctx else ""
        say_error(f"{' '.join(exc.format_message().split())}{hint}")
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except USER_ERRORS as exc:
        say_error(str(exc))
        sys.exit(2)
    except ValidationError as exc:  # a model built from the command line, e.g. a Task with an empty instruction
        found = problems(exc, "input")
        say_error(f"invalid {exc.title}: {found}")
        sys.exit(2)
    except OperationalError as exc:  # the state database is full, locked past its timeout, or gone
        reason = str(exc.orig or exc).strip().splitlines()[0]
        say_error(f"Shipyard's state database failed: {reason}; free disk space or end what holds the database, "
                  "then `shipyard resume` the job (its work so far is kept)")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
