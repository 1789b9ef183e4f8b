"""Choosing a sandbox backend: by name, or the strongest one that works here."""

from __future__ import annotations

import logging
from pathlib import Path

from sandboxes.base import Availability, SandboxBackend, SandboxError
from sandboxes.bubblewrap import BubblewrapBackend
from sandboxes.docker_backend import DockerBackend
from sandboxes.local import LocalBackend

log = logging.getLogger(__name__)

BACKENDS: dict[str, type[SandboxBackend]] = {
    "docker": DockerBackend,
    "bubblewrap": BubblewrapBackend,
    "local": LocalBackend,
}

# Strongest isolation first. `local` is never chosen automatically: it runs agent
# commands on the host and must be asked for by name.
AUTO_ORDER = ("docker", "bubblewrap")


def _make(name: str, hide: tuple[Path, ...]) -> SandboxBackend:
    return BubblewrapBackend(hide=[str(p) for p in hide]) if name == "bubblewrap" else BACKENDS[name]()


def doctor(image: str) -> list[Availability]:
    """Whether each backend works on this machine, and why not."""
    return [BACKENDS[name]().availability(image) for name in BACKENDS]


def select_backend(name: str, image: str, hide: tuple[Path, ...] = ()) -> SandboxBackend:
    """The backend called `name`, or for "auto" docker when it works, else bubblewrap.

    `hide`: host paths a bubblewrap sandbox must not see (Shipyard's own state).
    """
    if name != "auto":
        if name not in BACKENDS:
            raise SandboxError(f"unknown sandbox backend '{name}': choose auto, {', '.join(BACKENDS)}")
        backend = _make(name, hide)
        if name != "local":
            found = backend.availability(image)
            if not found.ok:
                raise SandboxError(f"the {name} sandbox cannot run here: {found.detail}")
        return backend
    reasons = []
    for candidate in AUTO_ORDER:
        backend = _make(candidate, hide)
        found = backend.availability(image)
        if found.ok:
            log.debug("sandbox backend: %s", candidate)
            return backend
        reasons.append(f"{candidate}: {found.detail}")
    raise SandboxError(
        "no sandbox backend works here (" + "; ".join(reasons) + "); "
        "fix one of them, or set sandbox.backend = \"local\" to run without isolation"
    )
