"""`shipyard github ...`: the GitHub App."""

from __future__ import annotations

import logging

import typer

from orchestrator.config.settings import load_settings

app = typer.Typer(help="The GitHub App: issues and comments in, pull requests out (see docs/github-app.md).",
                  no_args_is_help=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="the address to listen on (behind a TLS proxy)"),
    port: int = typer.Option(8787, "--port", min=1, max=65535),
    db: str | None = typer.Option(None, "--db", help="postgresql://... when the workers use PostgreSQL"),
) -> None:
    """Receive the App's webhooks on /webhook, start jobs for the workers (`shipyard serve`), report on GitHub."""
    from orchestrator.apps.github.service import serve as serve_app  # loads the web stack only for this command

    settings = load_settings(None, **({"database_url": db} if db else {}))
    logging.getLogger("orchestrator.apps.github").setLevel(logging.INFO)
    serve_app(settings, host, port)
