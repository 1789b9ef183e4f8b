"""`shipyard env`: a repository's project environment, set up ahead of its jobs, shown, pruned."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.apps.cli import options
from orchestrator.apps.cli.render import event_line
from orchestrator.engine.runner import open_repo
from orchestrator.environments import manage
from orchestrator.runtime.prune import parse_age
from orchestrator.store.events import Event
from tui.format import age

app = typer.Typer(help="Project environments: set up once per repository, reused by every job.", no_args_is_help=True)
console = Console(highlight=False)
REPO = typer.Option(Path("."), "--repo", help="the repository (its shipyard.toml counts)")
BASE = typer.Option("HEAD", "--base", help="the commit whose files define the environment")


def _print(event: Event) -> object:
    console.print(event_line(event))
    return event


@app.command("build")
def build(repo: Path = REPO, base: str = BASE,
          rebuild: bool = typer.Option(False, "--rebuild", help="set it up again even if it is cached")) -> None:
    """Set the repository's environment up now (or find it cached), as its next job would."""
    settings = options.settings(None, repo)
    prepared = manage.build(settings, open_repo(settings, str(repo)), base, _print, rebuild=rebuild)
    if prepared is None:
        described = manage.describe(settings, open_repo(settings, str(repo)), base)
        console.print(f"nothing to set up: {'; '.join(described.recipe.evidence) or described.backend}")
        return
    where = prepared.image or str(prepared.root)
    console.print(f"environment {prepared.key[:12]} ({prepared.source} on {prepared.backend}): {where}")


@app.command("show")
def show(repo: Path = REPO, base: str = BASE) -> None:
    """The repository's environment (where it comes from, its setup commands, whether it is cached), and
    every cached environment."""
    settings = options.settings(None, repo)
    described = manage.describe(settings, open_repo(settings, str(repo)), base)
    recipe = described.recipe
    console.print(f"source: {recipe.source} (backend {described.backend})")
    for line in recipe.evidence:
        console.print(f"  {line}")
    for step in recipe.steps:
        console.print(f"  $ {step.command}    [{step.origin}]", markup=False)
    if described.key is not None:
        state = "cached" if described.cached is not None else "not set up yet (`shipyard env build`)"
        console.print(f"key: {described.key[:12]} — {state}")
    environments = manage.cached(settings)
    if not environments:
        console.print("no environments cached")
        return
    table = Table("key", "source", "backend", "image or directory", "repo", "set up", "used", title="cached")
    now = time.time()
    for env in environments:
        table.add_row(env.key[:12], env.source, env.backend, env.image or str(env.root), env.repo,
                      f"{env.setup_seconds:.1f} s", age(env.used, now))
    console.print(table)


@app.command("prune")
def prune(older_than: str | None = typer.Option(None, "--older-than",
                                                help="only those unused for this long, e.g. 30d, 12h")) -> None:
    """Remove cached environments (their images too); the next job on their repositories sets them up again."""
    try:
        seconds = parse_age(older_than) if older_than else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
    removed = manage.prune(options.settings(None), seconds)
    console.print(f"removed {len(removed)} environment(s)"
                  + (": " + ", ".join(env.key[:12] for env in removed) if removed else ""))
