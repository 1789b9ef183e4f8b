"""`shipyard tui`: open the director's console."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer()  # its command is the root's own (orchestrator.apps.cli.main.COMMANDS)


@app.command()
def tui(repo: Path = typer.Option(Path("."), "--repo", help="the repository new tasks default to")) -> None:
    """Open the TUI: watch every job live, approve plans, read diffs, accept the work."""
    from orchestrator.config.settings import load_settings  # loaded to run, not for --help
    from tui.app import ShipyardApp  # Textual loads only for this command

    repo = repo.resolve()
    ShipyardApp(load_settings(repo), repo).run()
