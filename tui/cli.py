"""`shipyard tui`: open the director's console."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.config.settings import load_settings


def tui(repo: Path = typer.Option(Path("."), "--repo", help="the repository new tasks default to")) -> None:
    """Open the TUI: watch every job live, approve plans, read diffs, accept the work."""
    from tui.app import ShipyardApp  # Textual loads only for this command

    repo = repo.resolve()
    ShipyardApp(load_settings(repo), repo).run()
