"""`shipyard scripted-model`: the scripted OpenAI-compatible server, for demos and tests."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Serve a scripted OpenAI-compatible model (no real model needed).", no_args_is_help=True)


@app.command("serve")
def serve_command(
    script: Path = typer.Argument(..., exists=True, dir_okay=False, help="YAML or JSON script of responses"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8765, help="port to listen on"),
) -> None:
    """Replay SCRIPT as chat completions on http://HOST:PORT/v1 until interrupted."""
    from agents.scripted_model import serve

    serve(script, host, port)
