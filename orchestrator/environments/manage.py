"""What `shipyard env` does: set a repository's environment up ahead of its jobs, say what it is, prune old ones."""

from __future__ import annotations

import time
from dataclasses import dataclass

from orchestrator.config.settings import Settings
from orchestrator.environments.cache import IMAGE_REPOSITORY, EnvironmentCache, PreparedEnvironment
from orchestrator.environments.prepare import Emit, ensure_environment, environment_key, read_recipe
from orchestrator.environments.recipe import Recipe
from sandboxes.base import SandboxBackend
from sandboxes.docker_backend import DockerBackend
from sandboxes.git.repo import GitRepo
from sandboxes.select import choose_backend


@dataclass(frozen=True)
class Described:
    recipe: Recipe
    backend: str
    key: str | None  # None when there is nothing to set up
    cached: PreparedEnvironment | None


def backend_of(settings: Settings) -> SandboxBackend:
    return choose_backend(settings.sandbox.backend, settings.sandbox.image, hide=(settings.state_dir,)).backend


def build(settings: Settings, repo: GitRepo, base: str, emit: Emit,
          rebuild: bool = False) -> PreparedEnvironment | None:
    """Set up (or find) the environment of `repo` at `base`, as a job on it would."""
    return ensure_environment(repo, repo.resolve(base), settings, backend_of(settings), emit, rebuild=rebuild)


def describe(settings: Settings, repo: GitRepo, base: str) -> Described:
    """The recipe of `repo` at `base`, its key, and the cached environment of that key if there is one."""
    backend = backend_of(settings)
    sha = repo.resolve(base)
    recipe = read_recipe(repo, sha, settings, backend)
    if recipe.source == "none" or backend.name == "local":
        return Described(recipe, backend.name, None, None)
    key = environment_key(repo, sha, recipe, settings, backend)
    return Described(recipe, backend.name, key, EnvironmentCache(settings.state_dir).get(key))


def cached(settings: Settings) -> list[PreparedEnvironment]:
    return EnvironmentCache(settings.state_dir).all()


def prune(settings: Settings, older_than: float | None = None) -> list[PreparedEnvironment]:
    """Remove the environments not used for `older_than` seconds (all of them without it), images included."""
    cache = EnvironmentCache(settings.state_dir)
    now = time.time()
    removed = []
    for env in cache.all():
        if older_than is not None and now - env.used < older_than:
            continue
        with cache.locked(env.key):
            if env.backend == "docker":
                docker = DockerBackend()
                for image in (env.image, f"{IMAGE_REPOSITORY}-base:{env.key[:16]}"):
                    if image:
                        docker.remove_image(image)
            cache.forget(env.key)
        removed.append(env)
    return removed
