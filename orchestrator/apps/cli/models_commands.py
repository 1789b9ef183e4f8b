"""`shipyard models`: whether the configured models can do the agents' work."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from orchestrator.config.settings import ROLES, load_settings

app = typer.Typer(help="Check the configured models.", no_args_is_help=True)


@app.command("check")
def check(
    role: str | None = typer.Option(None, "--role", help=f"only this role: {', '.join(ROLES)}"),
    repo: Path = typer.Option(Path("."), "--repo", help="the repo whose shipyard.toml counts"),
) -> None:
    """Ask each role's endpoint whether it is reachable, calls tools and how large its context is: a line per role."""
    if role is not None and role not in ROLES:
        raise typer.BadParameter(f"{role!r} is not a role: use one of {', '.join(ROLES)}", param_hint="--role")
    from agents.model_check import check_model

    settings = load_settings(repo)
    console = Console(highlight=False, soft_wrap=True)
    failed = False
    for name in ROLES if role is None else (role,):
        result = check_model(settings.model_for(name), name)
        console.print(result.line(), markup=False)
        failed |= not result.ok
    if failed:
        raise typer.Exit(1)
