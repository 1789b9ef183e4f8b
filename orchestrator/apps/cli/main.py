"""The `shipyard` entry point: sub-commands, and one-line errors instead of tracebacks."""

from __future__ import annotations

import logging
import signal
import sys
from typing import TYPE_CHECKING, cast

import typer
from rich.console import Console

from orchestrator.apps.cli.lazy import Lazy, LazyGroup

if TYPE_CHECKING:  # caught only once loaded (USER_ERRORS)
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError

_CLI = "orchestrator.apps.cli."
_JOBS, _WORKERS = _CLI + "job_commands", _CLI + "worker_commands"

# Every command, in the order `shipyard --help` lists them. A command's module is imported only when the
# command runs or shows its own help; the help here is its own, word for word (tests/orchestrator/test_cli_lazy.py).
COMMANDS: dict[str, Lazy] = {
    "run": Lazy(_JOBS, "Run a task: plan, fan out to agents, integrate, test; ends with the report."),
    "submit": Lazy(_JOBS, "Queue a task for the workers (`shipyard serve`) and print its job id at once."),
    "demo": Lazy(_JOBS, "The whole flow on a bundled sample repo, with a SCRIPTED model (no model endpoint needed): "
                 "a job, or\n(`demo campaign`) a campaign of three iterations towards a goal its verifier checks."),
    "resume": Lazy(_JOBS, "Continue a job whose process died, from its last checkpoint; finished work is not redone."),
    "jobs": Lazy(_JOBS, "List jobs, newest first."),
    "show": Lazy(_JOBS, "Show a job: its task, plan, status and report."),
    "logs": Lazy(_JOBS, "Print the job's events: every agent step, test run, review and merge."),
    "export": Lazy(_JOBS, "Write the job's whole trajectory (every event) as JSON Lines."),
    "diff": Lazy(_JOBS, "Show the job branch's changes against where it started."),
    "approve": Lazy(_JOBS, "Approve the plan of a waiting job (optionally an edited plan) and run it."),
    "reject": Lazy(_JOBS, "Reject the plan of a waiting job; the job ends."),
    "replan": Lazy(_JOBS, "Send the plan of a waiting job back to the planner with a note; the new plan waits for "
                   "approval."),
    "accept": Lazy(_JOBS, "Merge the job branch into the base branch of your repository."),
    "retry": Lazy(_JOBS, "Run a failed job's failed subtasks again; what succeeded stays, earlier attempts keep "
                  "their branches."),
    "cancel": Lazy(_JOBS, "Cancel a job; its agents stop at their next step and its branches stay."),
    "note": Lazy(_JOBS, "Send a note to a job's agents."),
    "work": Lazy(_JOBS, "Run, answer or retry a job without a live view (what background launches use).",
                 hidden=True),
    "campaign": Lazy(_CLI + "campaign_commands", "Pursue a goal over iterations of jobs on one branch, until its "
                     "verifier says it holds."),
    "serve": Lazy(_WORKERS, "Run a worker: take queued jobs and run them, resuming the jobs of workers that died."),
    "result": Lazy(_WORKERS, "Print a job's report. Exit 0 if it succeeded verified, 3 unverified, 4 partially, 1 "
                   "if it ended otherwise,\n5 if it has not ended (the README's table)."),
    "inbox": Lazy(_WORKERS, "What needs you: jobs that finished, failed or wait for your approval. Shown entries "
                  "are marked read."),
    "prune": Lazy(_WORKERS, "Forget old finished jobs (events, checkpoints, reports); jobs whose branches exist "
                  "stay."),
    "eval": Lazy(_CLI + "eval_commands", "Run SWE-bench-style instances as Shipyard jobs and grade them by their "
                 "hidden tests."),
    "tui": Lazy("tui.cli", "Open the TUI: watch every job live, approve plans, read diffs, accept the work."),
    "config": Lazy(_CLI + "config_commands", "Show the configuration.", group=True),
    "sandbox": Lazy(_CLI + "sandbox_commands", "Build and check the sandboxes agents work in.", group=True),
    "env": Lazy(_CLI + "env_commands", "Project environments: set up once per repository, reused by every job.",
                group=True),
    "scripted-model": Lazy(_CLI + "scripted_model_commands", "Serve a scripted OpenAI-compatible model (no real "
                           "model needed).", group=True),
    "github": Lazy(_CLI + "github_commands", "The GitHub App: issues and comments in, pull requests out (see "
                   "docs/github-app.md).", group=True),
    "models": Lazy(_CLI + "models_commands", "Check the configured models.", group=True),
}


class _Commands(LazyGroup):
    table = COMMANDS


app = typer.Typer(
    name="shipyard",
    help="Shipyard: a planner fans your task out to coder, test-fixer and reviewer agents "
    "working in sandboxes, each on its own git branch.",
    cls=_Commands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Errors whose message already says what to do; anything else is a bug and keeps its traceback. Named by
# module, so that none is imported to be caught: an error of a class can only come from a module already loaded.
USER_ERRORS = (("orchestrator.config.settings", "ConfigError"), ("sandboxes.base", "SandboxError"),
               ("sandboxes.git.command", "WorkspaceError"), ("orchestrator.store.jobs", "JobLookupError"),
               ("orchestrator.runtime.director", "JobStateError"), ("orchestrator.engine.watch", "JobHeldError"),
               ("agents.model_errors", "ModelError"), ("agents.scripted_model.script", "ScriptError"))
# A model built from the command line, e.g. a Task with an empty instruction.
VALIDATION_ERROR = ("pydantic_core", "ValidationError")
# The state database is full, locked past its timeout, or gone.
DATABASE_ERROR = ("sqlalchemy.exc", "OperationalError")


def _loaded(*names: tuple[str, str]) -> tuple[type[BaseException], ...]:
    return tuple(getattr(sys.modules[module], name) for module, name in names if module in sys.modules)


def say_error(message: str) -> None:
    from orchestrator.apps.cli.render import say_error as say  # the event models: loaded for an error only

    say(message)


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
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        said = _said(exc)
        if said is None:
            raise
        sys.exit(said)
    sys.exit(code if isinstance(code, int) else 0)


def _said(exc: Exception) -> int | None:
    """The exit code of a user's error, said in one line; None for a bug."""
    if isinstance(exc, _loaded(VALIDATION_ERROR)):
        from agents.validation import problems

        invalid = cast("ValidationError", exc)
        say_error(f"invalid {invalid.title}: {problems(invalid, 'input')}")
        return 2
    if isinstance(exc, _loaded(DATABASE_ERROR)):
        reason = str(cast("OperationalError", exc).orig or exc).strip().splitlines()[0]
        say_error(f"Shipyard's state database failed: {reason}; free disk space or end what holds the database, "
                  "then `shipyard resume` the job (its work so far is kept)")
        return 2
    if isinstance(exc, _loaded(*USER_ERRORS)):
        say_error(str(exc))
        return 2
    return None
