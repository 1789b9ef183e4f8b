"""Preparing a repository's project environment once, with network, and finding it again.

The recipe (recipe.py) is read from the base commit itself (git, no checkout) and hashed with the
files it names, the image it starts from and the setup variables: that key finds a prepared
environment in the cache (cache.py), so a second job on the same repository sets nothing up.
Otherwise the recipe's commands run in a sandbox on a checkout of the commit, with network when
`environment.network` allows it, and the result is frozen: on docker the set-up container is
committed as an image (as root, on a writable root); on bubblewrap, ENV_DIR is a host directory,
written by the setup and mounted read-only afterwards. Agents and test runs start from it with
their own network setting (off by default). The local backend runs in the user's own environment
and prepares none.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.config.settings import Settings
from orchestrator.environments.cache import IMAGE_REPOSITORY, KEY_LABEL, EnvironmentCache, PreparedEnvironment
from orchestrator.environments.recipe import ENV_DIR, Recipe, SetupStep, recipe_for
from orchestrator.store.events import EnvironmentReady, EnvironmentSetup, Event, Notice
from sandboxes.base import (
    BASE_ENV,
    ExecResult,
    Mount,
    Sandbox,
    SandboxBackend,
    SandboxError,
    SandboxSpec,
    cap_output,
)
from sandboxes.docker_backend import DockerBackend, DockerSandbox
from sandboxes.git.repo import GitRepo
from sandboxes.image_build import build_from

# Bump when what a key stands for changes, so that older environments are set up again.
FORMAT = "1"
EVENT_OUTPUT_CHARS = 8_000
# How much of a failed command's output its one-line error repeats.
TAIL_LINES = 3
TAIL_CHARS = 300
# An image's own variables that describe the container it runs in, not what it needs.
NOT_PASSED_ON = {"HOME", "HOSTNAME", "PATH"}

Emit = Callable[[Event], object]


class EnvironmentSetupFailed(SandboxError):
    """A setup command failed: the message is one line naming it and the end of its output."""


class CommitFiles:
    """A commit's files, read through git (a WorkspaceReader without a checkout)."""

    def __init__(self, repo: GitRepo, sha: str):
        self._repo = repo
        self._sha = sha
        self._tree: list[str] | None = None

    def read_file(self, path: str) -> bytes:
        if path not in set(self.list_files()):
            raise SandboxError(f"{path}: no such file in {self._sha[:12]}")
        found = subprocess.run(["git", "--git-dir", str(self._repo.git_dir), "cat-file", "blob",
                                f"{self._sha}:{path}"], capture_output=True, check=False)
        if found.returncode != 0:
            raise SandboxError(f"{path}: cannot be read at {self._sha[:12]}")
        return found.stdout

    def list_files(self, path: str = ".") -> list[str]:
        if self._tree is None:
            listed = self._repo.git(["ls-tree", "-r", "--name-only", "-z", self._sha])
            self._tree = [name for name in listed.stdout.split("\0") if name]
        prefix = "" if path in ("", ".") else path.strip("/") + "/"
        return [name for name in self._tree if name.startswith(prefix)]


def read_recipe(repo: GitRepo, sha: str, settings: Settings, backend: SandboxBackend,
                image: str | None = None) -> Recipe:
    """The recipe of `repo` at `sha` for `backend`; `image` overrides the configured sandbox image."""
    dockerfile = settings.sandbox.dockerfile
    return recipe_for(CommitFiles(repo, sha), image or settings.sandbox.image,
                      str(dockerfile) if dockerfile is not None else None, settings.setup_command,
                      docker=isinstance(backend, DockerBackend))


def environment_key(repo: GitRepo, sha: str, recipe: Recipe, settings: Settings, backend: SandboxBackend) -> str:
    """The hash of everything that defines the environment: the recipe, its files, its base, the setup's
    variables and the backend."""
    digest = hashlib.sha256()
    files = CommitFiles(repo, sha)
    base = ""
    if isinstance(backend, DockerBackend) and recipe.image:
        base = backend.image_id(recipe.image) or recipe.image
    fields = recipe.model_dump(mode="json", exclude={"evidence"})
    digest.update(json.dumps([FORMAT, backend.name, base, fields, sorted(settings.environment.env.items())],
                             sort_keys=True).encode())
    for path in recipe.files:
        try:
            content = files.read_file(path)
        except SandboxError:
            content = b"(absent)"
        digest.update(path.encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


def ensure_environment(repo: GitRepo, sha: str, settings: Settings, backend: SandboxBackend, emit: Emit,
                       image: str | None = None, labels: dict[str, str] | None = None, rebuild: bool = False,
                       guard: Callable[[Sandbox], None] = lambda sandbox: None) -> PreparedEnvironment | None:
    """The prepared environment of `repo` at `sha`, set up now unless the cache has it; None when the
    repository needs none (or the backend is local). Events: env.setup per command run, env.ready.
    `guard` is shown the setup's sandbox (so that a cancelled job stops it)."""
    recipe = read_recipe(repo, sha, settings, backend, image)
    if recipe.source == "none":
        return None
    if backend.name == "local":
        emit(Notice(text="the local backend runs in this host's own environment: no project environment is "
                         f"prepared ({recipe.source}: {'; '.join(recipe.evidence[:2])})"))
        return None
    if isinstance(backend, DockerBackend) and recipe.image and not recipe.dockerfile:
        _have_image(backend, recipe.image, settings.environment.network)
    key = environment_key(repo, sha, recipe, settings, backend)
    cache = EnvironmentCache(settings.state_dir)
    with cache.locked(key):
        found = cache.get(key)
        if found is not None and not rebuild and _still_there(found, backend):
            found = cache.touch(found)
            emit(_ready(found, reused=True))
            return found
        prepared = _prepare(repo, sha, recipe, key, settings, backend, emit, labels or {}, guard)
        cache.save(prepared)
    emit(_ready(prepared, reused=False))
    return prepared


def _ready(env: PreparedEnvironment, reused: bool) -> EnvironmentReady:
    return EnvironmentReady(key=env.key, source=env.source, backend=env.backend, reused=reused, image=env.image,
                            evidence=env.evidence, seconds=0.0 if reused else env.setup_seconds)


def _have_image(backend: DockerBackend, image: str, network: bool) -> None:
    if backend.image_id(image) is not None:
        return
    if not network:
        raise SandboxError(f"the environment's image {image} is not here and environment.network is off: "
                           f"pull or build it (docker pull {image})")
    backend.pull(image)


def _still_there(env: PreparedEnvironment, backend: SandboxBackend) -> bool:
    if env.backend != backend.name:
        return False
    if isinstance(backend, DockerBackend):
        return env.image is not None and backend.image_id(env.image) is not None
    return env.root is not None and env.root.is_dir()


def _prepare(repo: GitRepo, sha: str, recipe: Recipe, key: str, settings: Settings, backend: SandboxBackend,
             emit: Emit, labels: dict[str, str], guard: Callable[[Sandbox], None]) -> PreparedEnvironment:
    started = time.monotonic()
    cache = EnvironmentCache(settings.state_dir)
    directory = cache.directory(key)
    shutil.rmtree(directory, ignore_errors=True)  # what an unfinished setup left
    directory.mkdir(parents=True)
    checkout = directory / "checkout"
    _checkout(repo, sha, checkout)
    docker = isinstance(backend, DockerBackend)
    root = None if docker else directory / "root"
    try:
        base = recipe.image
        if docker and recipe.dockerfile:
            base = f"{IMAGE_REPOSITORY}-base:{key[:16]}"
            build_from(checkout / (recipe.context or "."), checkout / recipe.dockerfile, base,
                       {KEY_LABEL: key}, log=lambda line: None)
        env = _runtime_env(recipe, backend, base)
        spec = SandboxSpec(
            workspace=checkout, image=base or settings.sandbox.image, network=settings.environment.network,
            limits=settings.sandbox.limits.model_copy(update={"exec_timeout": settings.environment.timeout}),
            env={**env, **settings.environment.env, "SHIPYARD_ENV": ENV_DIR}, prepare=True,
            labels={**labels, "agent": "env.setup"},
        )
        if root is not None:
            root.mkdir()
            spec = spec.model_copy(update={"mounts": [Mount(source=root, target=ENV_DIR, writable=True)]})
        with backend.start(spec) as sandbox:
            guard(sandbox)
            if docker:
                _run(sandbox.exec(["mkdir", "-p", ENV_DIR], timeout=60), SetupStep(origin="shipyard",
                     command=f"mkdir -p {ENV_DIR}"), emit=None)
            for step in recipe.steps:
                _run(sandbox.exec(step.command), step, emit)
            image = None
            if isinstance(sandbox, DockerSandbox):
                image = f"{IMAGE_REPOSITORY}:{key[:16]}"
                sandbox.freeze(IMAGE_REPOSITORY, key[:16], {KEY_LABEL: key})
    except BaseException:
        cache.forget(key)
        if isinstance(backend, DockerBackend) and recipe.dockerfile:  # no manifest names it: prune would miss it
            backend.remove_image(f"{IMAGE_REPOSITORY}-base:{key[:16]}")
        raise
    finally:
        _remove_checkout(repo, checkout)
    return PreparedEnvironment(key=key, source=recipe.source, backend=backend.name, image=image, root=root, env=env,
                               evidence=recipe.evidence, repo=repo.source,
                               setup_seconds=round(time.monotonic() - started, 2))


def _runtime_env(recipe: Recipe, backend: SandboxBackend, image: str | None) -> dict[str, str]:
    """What every command in the environment gets: the image's own variables, the recipe's, and PATH."""
    declared = backend.image_env(image) if isinstance(backend, DockerBackend) and image else {}
    path = ":".join([*recipe.path, declared.get("PATH") or BASE_ENV["PATH"]])
    return {**{k: v for k, v in declared.items() if k not in NOT_PASSED_ON}, **recipe.env, "PATH": path}


def _run(result: ExecResult, step: SetupStep, emit: Emit | None) -> None:
    if emit is not None:
        emit(EnvironmentSetup(origin=step.origin, command=step.command, exit_code=result.exit_code,
                              output=cap_output(result.output, EVENT_OUTPUT_CHARS)[0],
                              seconds=round(result.duration, 2), timed_out=result.timed_out))
    if not result.ok:
        raise EnvironmentSetupFailed(failure_line(step, result))


def failure_line(step: SetupStep, result: ExecResult) -> str:
    """One line: the command that failed, how, and the last lines of its output."""
    how = "timed out" if result.timed_out else f"exited {result.exit_code}"
    lines = [" ".join(line.split()) for line in result.output.splitlines() if line.strip()][-TAIL_LINES:]
    tail = " | ".join(lines)
    if len(tail) > TAIL_CHARS:
        tail = "..." + tail[-TAIL_CHARS:]
    return f"environment setup failed: `{step.command}` ({step.origin}) {how}" + (f": {tail}" if tail else "")


def _checkout(repo: GitRepo, sha: str, path: Path) -> None:
    # Detached: a setup has no branch of its own, and a job may be using all of its branches.
    with repo.locked():
        repo.git(["worktree", "add", "--detach", "--quiet", str(path), sha])


def _remove_checkout(repo: GitRepo, path: Path) -> None:
    with repo.locked():
        repo.git(["worktree", "remove", "--force", "--force", str(path)], check=False)
        repo.git(["worktree", "prune"], check=False)
    shutil.rmtree(path, ignore_errors=True)
