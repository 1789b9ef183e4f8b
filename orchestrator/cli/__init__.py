"""The `shipyard` command line."""

from orchestrator.cli.main import app, main

__all__ = ["app", "main"]
