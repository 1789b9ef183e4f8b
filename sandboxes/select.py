"""Choosing a sandbox backend: by name, or the strongest one that works here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sandboxes.base import Availability, SandboxBackend, SandboxError
from sandboxes.bubblewrap import BubblewrapBackend
from sandboxes.docker_backend import DockerBackend
from sandboxes.image_build import DEFAULT_TAG
from sandboxes.local import LocalBackend

log = logging.getLogger(__name__)

BACKENDS: dict[str, type[SandboxBackend]] = {
    "docker": DockerBackend,
    "bubblewrap": BubblewrapBackend,
    "local": LocalBackend,
}


@dataclass(frozen=True)
class Selection:
    backend: SandboxBackend
    # Why "auto" did not choose docker, for the director to see (None when it did, or a backend was named).
    note: str | None = None


def _make(name: str, hide: tuple[Path, ...]) -> SandboxBackend:
    return BubblewrapBackend(hide=[str(p) for p in hide]) if name == "bubblewrap" else BACKENDS[name]()


def doctor(image: str) -> list[Availability]:
    """Whether each backend works on this machine, and why not."""
    return [BACKENDS[name]().availability(image) for name in BACKENDS]


def choose_backend(name: str, image: str, hide: tuple[Path, ...] = ()) -> Selection:
    """The backend called `name`, or for "auto" docker when it works, else bubblewrap, saying why.

    `local` is never chosen automatically: it runs agent commands on the host. "auto" never
    ignores an image configured explicitly: when that image is missing it is an error, while
    a missing default image falls back to bubblewrap with a note. `hide`: host paths a
    bubblewrap sandbox must not see (Shipyard's own state).
    """
    if name != "auto":
        if name not in BACKENDS:
            raise SandboxError(f"unknown sandbox backend '{name}': choose auto, {', '.join(BACKENDS)}")
        backend = _make(name, hide)
        if name != "local":
            found = backend.availability(image)
            if not found.ok:
                raise SandboxError(f"the {name} sandbox cannot run here: {found.detail}")
        return Selection(backend)
    docker = _make("docker", hide)
    in_docker = docker.availability(image)
    if in_docker.ok:
        return Selection(docker)
    if in_docker.image_missing and image != DEFAULT_TAG:
        raise SandboxError(f"{in_docker.detail}; or set sandbox.image back to {DEFAULT_TAG}")
    bubblewrap = _make("bubblewrap", hide)
    in_bubblewrap = bubblewrap.availability(image)
    if in_bubblewrap.ok:
        return Selection(bubblewrap, note=f"sandboxes use bubblewrap, not docker: {in_docker.detail}")
    raise SandboxError(
        f"no sandbox backend works here (docker: {in_docker.detail}; bubblewrap: {in_bubblewrap.detail}); "
        "fix one of them, or set sandbox.backend = \"local\" to run without isolation"
    )


def select_backend(name: str, image: str, hide: tuple[Path, ...] = ()) -> SandboxBackend:
    """choose_backend's backend, its note logged as a warning."""
    selection = choose_backend(name, image, hide)
    if selection.note:
        log.warning("%s", selection.note)
    return selection.backend
