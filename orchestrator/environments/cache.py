"""Prepared environments on disk: one directory per key under <state_dir>/environments.

<key>/manifest.json describes one (and is written last: a directory without it is a setup that
did not finish); <key>/root is, on bubblewrap, what sandboxes mount read-only at ENV_DIR. On
docker the environment is the image `shipyard-env:<key[:16]>`, labelled shipyard.env=<key>.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from orchestrator.environments.recipe import ENV_DIR, Source
from sandboxes.base import Mount, SandboxSpec
from sandboxes.git.locks import exclusive

IMAGE_REPOSITORY = "shipyard-env"
KEY_LABEL = "shipyard.env"


class PreparedEnvironment(BaseModel):
    key: str
    source: Source
    backend: str
    image: str | None = Field(None, description="docker: the frozen image every sandbox starts from")
    root: Path | None = Field(None, description="bubblewrap: the host directory mounted read-only at ENV_DIR")
    env: dict[str, str] = Field({}, description="what every sandbox's commands get (PATH included)")
    evidence: list[str] = []
    repo: str = ""
    created: float = Field(default_factory=time.time)
    used: float = Field(default_factory=time.time)
    setup_seconds: float = 0.0

    def apply(self, spec: SandboxSpec) -> SandboxSpec:
        """`spec` starting from this environment: its image or its directory, and its variables."""
        update: dict[str, object] = {"env": {**self.env, **spec.env}}
        if self.image:
            update["image"] = self.image
        if self.root:
            update["mounts"] = [*spec.mounts, Mount(source=self.root, target=ENV_DIR)]
        return spec.model_copy(update=update)


class EnvironmentCache:
    def __init__(self, state_dir: Path):
        self.root = state_dir / "environments"

    def directory(self, key: str) -> Path:
        return self.root / key

    @contextmanager
    def locked(self, key: str) -> Iterator[None]:
        """One setup of `key` at a time, across threads and processes: the second finds the first's result."""
        self.root.mkdir(parents=True, exist_ok=True)
        with exclusive(self.root / f"{key}.lock"):
            yield

    def get(self, key: str) -> PreparedEnvironment | None:
        manifest = self.directory(key) / "manifest.json"
        try:
            return PreparedEnvironment.model_validate_json(manifest.read_text())
        except (OSError, ValidationError):
            return None

    def save(self, env: PreparedEnvironment) -> None:
        directory = self.directory(env.key)
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / "manifest.json.partial"
        partial.write_text(env.model_dump_json(indent=2))
        os.replace(partial, directory / "manifest.json")  # whole or absent, never half-written

    def touch(self, env: PreparedEnvironment) -> PreparedEnvironment:
        used = env.model_copy(update={"used": time.time()})
        self.save(used)
        return used

    def all(self) -> list[PreparedEnvironment]:
        if not self.root.is_dir():
            return []
        found = (self.get(entry.name) for entry in self.root.iterdir() if entry.is_dir())
        return sorted((env for env in found if env is not None), key=lambda env: env.used, reverse=True)

    def forget(self, key: str) -> None:
        """Remove what is on disk of `key` (its image is the caller's to remove). Its lock file stays: another
        process may be waiting on it."""
        shutil.rmtree(self.directory(key), ignore_errors=True)
