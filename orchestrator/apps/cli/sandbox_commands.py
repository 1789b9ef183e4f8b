"""`shipyard sandbox`: build the image, check which backends work, remove leftovers."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.config.settings import load_settings

app = typer.Typer(help="Build and check the sandboxes agents work in.", no_args_is_help=True)


@app.command("build")
def build(
    method: str = typer.Option("auto", help="auto, dockerfile (needs registry access) or mmdebstrap (offline)"),
    tag: str | None = typer.Option(None, help="image tag; default: sandbox.image from the configuration"),
    dockerfile: Path | None = typer.Option(
        None, "--dockerfile", help="a directory with a repo's own Dockerfile; default: sandbox.dockerfile"
    ),
) -> None:
    """Build the sandbox image (the bundled Debian one, or a repo's own Dockerfile)."""
    from sandboxes.image_build import build_image

    settings = load_settings()
    chosen: Literal["auto", "dockerfile", "mmdebstrap"] = _method(method)
    image = build_image(
        tag=tag or settings.sandbox.image,
        method=chosen,
        dockerfile_dir=dockerfile or settings.sandbox.dockerfile,
        log=lambda line: Console(stderr=True).print(line, highlight=False, markup=False),
    )
    Console().print(f"built {image}")


def _method(method: str) -> Literal["auto", "dockerfile", "mmdebstrap"]:
    if method not in ("auto", "dockerfile", "mmdebstrap"):
        raise typer.BadParameter("choose auto, dockerfile or mmdebstrap", param_hint="--method")
    return method  # type: ignore[return-value]


@app.command("doctor")
def doctor() -> None:
    """Report which sandbox backends work on this machine, and why not."""
    from sandboxes.select import doctor as backend_doctor

    settings = load_settings()
    table = Table("backend", "works", "detail", title=f"sandboxes (image {settings.sandbox.image})")
    results = backend_doctor(settings.sandbox.image)
    for found in results:
        table.add_row(found.backend, "[green]yes[/]" if found.ok else "[red]no[/]", found.detail)
    Console().print(table)
    chosen = settings.sandbox.backend
    Console().print(f"configured backend: {chosen}")
    if not any(r.ok for r in results if r.backend != "local"):
        raise typer.Exit(1)


@app.command("prune")
def prune(
    all_: bool = typer.Option(False, "--all", help="remove every Shipyard container, not only orphans of dead runs"),
) -> None:
    """Remove sandbox containers left behind by runs that died."""
    from sandboxes.docker_containers import prune_orphans

    removed = prune_orphans(all=all_)
    Console().print(f"removed {len(removed)} container(s)" + (": " + ", ".join(removed) if removed else ""))
