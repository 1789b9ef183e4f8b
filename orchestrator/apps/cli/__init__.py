"""The `shipyard` command line."""

from orchestrator.apps.cli.main import app, main

__all__ = ["app", "main"]
