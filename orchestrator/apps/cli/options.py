"""Options shared by the commands: those that take a task (`run`, `submit`, `campaign`) and those about a job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from orchestrator.config.settings import Settings, load_settings
from orchestrator.store.jobs import Task

JOB_ID = typer.Argument(..., help="the job (an id or its prefix)")
INSTRUCTION = typer.Argument(..., help="what to do, in plain words")
REPO = typer.Option(Path("."), "--repo", help="the git repository to work on (path or URL)")
BASE = typer.Option("HEAD", "--base", help="the ref to start from")
APPROVE_PLAN = typer.Option(False, "--approve-plan", help="wait for your approval of the plan")
CANDIDATES = typer.Option(1, "--candidates", min=1, max=5, help="coders attempting each subtask")
MAX_COST = typer.Option(None, "--max-cost", min=0, help="USD budget for the whole job")
NETWORK = typer.Option(False, "--network", help="let the sandboxes reach the network")
DB = typer.Option(None, "--db", help="postgresql://... to share jobs with workers on other machines (default: the "
                  "configuration's database_url)")


def is_local(repo: Path | str) -> bool:
    """A path rather than a URL: its shipyard.toml then counts."""
    return "://" not in str(repo) and not str(repo).startswith("git@")


def make_task(instruction: str, repo: Path, base: str, approve_plan: bool, candidates: int,
              max_cost: float | None, network: bool) -> Task:
    # A path is kept absolute: a job may be resumed, shown or accepted from any directory.
    source = str(repo.expanduser().resolve()) if is_local(repo) else str(repo)
    return Task(instruction=instruction, repo=source, base=base, approve_plan=approve_plan,
                candidates=candidates, max_cost=max_cost, network=network)


def settings(db: str | None, repo: Path | None = None, **overrides: Any) -> Settings:
    """The settings for work on `repo` (its shipyard.toml counts), on the database `db` when given."""
    if db:
        overrides["database_url"] = db
    return load_settings(repo, **overrides)
