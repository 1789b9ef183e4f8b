"""`shipyard config`: what configuration is in force, and where it came from."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.syntax import Syntax

from orchestrator.config.settings import CONFIG_FILE_NAME, config_files, load_settings, masked, user_config_path

app = typer.Typer(help="Show the configuration.", no_args_is_help=True)


@app.command("show")
def show(repo: Path = typer.Option(Path("."), "--repo", help="the repo whose shipyard.toml counts")) -> None:
    """Print the effective configuration (files, env vars, defaults) with secrets masked."""
    settings = load_settings(repo)
    sources = [str(f) for f in config_files(repo)] or [
        f"no config file (looked for {user_config_path()} and {repo / CONFIG_FILE_NAME})"
    ]
    console = Console()
    console.print("# from: " + ", ".join(sources) + ", SHIPYARD_* env vars and defaults", highlight=False)
    text = json.dumps(masked(settings.model_dump(mode="json")), indent=2)
    console.print(Syntax(text, "json", background_color="default"))
