"""The Sandbox contract every backend implements, and the pieces they share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

# Where the workspace appears inside every sandbox, whatever the backend, so that
# prompts and tools can name paths the same way everywhere.
WORKSPACE_MOUNT = "/workspace"

# The environment a sandboxed command starts from. Nothing is inherited from the
# host: secrets such as OPENAI_API_KEY or GITHUB_TOKEN must never reach agent code.
BASE_ENV: dict[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp/home",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TERM": "dumb",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


class SandboxError(RuntimeError):
    """A sandbox could not be started or used; the message says what to do."""


class SandboxLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_mb: int = Field(2048, ge=64, description="memory limit of the whole sandbox")
    cpus: float = Field(1.0, gt=0, description="CPU share of the whole sandbox")
    pids: int = Field(256, ge=16, description="most processes and threads at once")
    tmp_mb: int = Field(512, ge=16, description="size of the writable /tmp")
    exec_timeout: float = Field(300.0, gt=0, description="default seconds one command may run")
    output_limit: int = Field(30_000, ge=1_000, description="characters of stdout/stderr kept per command")
    min_free_mb: int = Field(
        512, ge=0, description="MB; a command is killed when the workspace's disk has less free (0: never)"
    )


class Mount(BaseModel):
    """A host directory shown at `target` inside a sandbox (e.g. a prepared project environment)."""

    model_config = ConfigDict(frozen=True)

    source: Path
    target: str = Field(description="an absolute path outside the workspace")
    writable: bool = False


class SandboxSpec(BaseModel):
    """What to start: a workspace directory on the host and how to confine it."""

    workspace: Path
    image: str = "shipyard-sandbox:latest"
    network: bool = False
    mounts: list[Mount] = Field(default_factory=list, description="more host directories, read-only unless writable")
    prepare: bool = Field(
        False, description="set a project environment up: on docker, root on a writable root file system, with "
        "Docker's default capabilities (so package managers work); never for agents"
    )
    limits: SandboxLimits = Field(default_factory=SandboxLimits)
    env: dict[str, str] = Field(default_factory=dict, description="added to BASE_ENV for every command")
    labels: dict[str, str] = Field(default_factory=dict, description="e.g. job and agent ids, for pruning and display")


class ExecResult(BaseModel):
    exit_code: int
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def output(self) -> str:
        """stdout and stderr together, as an agent would read them."""
        if self.stderr and self.stdout:
            return f"{self.stdout.rstrip()}\n{self.stderr}"
        return self.stdout or self.stderr


class Availability(BaseModel):
    """Whether a backend works on this machine, and if not, what to do about it."""

    backend: str
    ok: bool
    detail: str
    image_missing: bool = False  # it would work, but the image asked for does not exist


class WorkspaceReader(Protocol):
    """Read access to a workspace, confined to it: what a sandbox offers besides running commands."""

    def read_file(self, path: str) -> bytes: ...

    def list_files(self, path: str = ".") -> list[str]: ...


class SandboxProcess(Protocol):
    """A long-lived process in a sandbox (e.g. an MCP server) with pipes to its stdin and stdout.

    It is confined as the sandbox's commands are, has no timeout, and is killed when the sandbox stops.
    """

    def read(self) -> bytes:
        """The next bytes of its stdout, waiting until there are some; b"" once it is closed."""

    def write(self, data: bytes) -> None:
        """All of `data` to its stdin; SandboxError once it no longer reads it."""

    def close_stdin(self) -> None:
        """Tell it that no more input comes (EOF on its stdin)."""

    def wait(self, timeout: float) -> int | None:
        """Its exit code once it has ended, waiting at most `timeout` seconds; None while it runs."""

    def kill(self) -> None:
        """End it at once (SIGKILL); safe to call twice."""

    @property
    def stderr(self) -> str:
        """The end of what it wrote to stderr, bounded (why it would not start, say)."""


@runtime_checkable
class Sandbox(Protocol):
    """A started sandbox. Paths are relative to the workspace or absolute under WORKSPACE_MOUNT."""

    spec: SandboxSpec

    def exec(
        self,
        cmd: str | list[str],
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
    ) -> ExecResult: ...

    def read_file(self, path: str) -> bytes: ...

    def write_file(self, path: str, content: bytes | str) -> None: ...

    def list_files(self, path: str = ".") -> list[str]: ...

    def spawn(self, argv: list[str], env: dict[str, str] | None = None, workdir: str | None = None) -> SandboxProcess:
        ...

    def stop(self) -> None: ...

    def __enter__(self) -> Sandbox: ...

    def __exit__(self, *exc: object) -> None: ...


class SandboxBackend(Protocol):
    name: str

    def availability(self, image: str) -> Availability: ...

    def start(self, spec: SandboxSpec) -> Sandbox: ...


class DiskWatch:
    """Why a running command must be killed for the disk's sake (call it), or None.

    The workspace is a host directory: a command filling it fills the host's disk, and
    with it Shipyard's state and every other agent's work. The free space left is cheap
    to check while a command runs (one statvfs), whoever is filling the disk. A command
    is killed once free space is below the floor and lower than when it started, so that
    one freeing space (the agent cleaning up after itself) runs to its end.
    """

    def __init__(self, workspace: Path, min_free_mb: int):
        self._workspace = workspace
        self._min_free_mb = min_free_mb
        self._at_start = _free_mb(workspace) if min_free_mb > 0 else None

    def __call__(self) -> str | None:
        if self._at_start is None:
            return None
        free = _free_mb(self._workspace)
        if free is None or free >= min(self._min_free_mb, self._at_start):
            return None
        return (
            f"the command was killed: the disk holding the workspace has {free} MB free, less than the "
            f"{self._min_free_mb} MB kept free; delete what filled it before going on"
        )


def check_disk(workspace: Path, limits: SandboxLimits) -> None:
    """SandboxError (one line) when the disk holding `workspace` has less free than `limits.min_free_mb`.

    Every backend checks this when a sandbox starts; it costs one statvfs, so the orchestrator can
    also call it before a job spends anything.
    """
    free = _free_mb(workspace)
    if free is not None and free < limits.min_free_mb:
        raise SandboxError(
            f"the disk holding {workspace} has {free} MB free, less than the {limits.min_free_mb} MB a sandbox "
            "keeps free (sandbox.limits.min_free_mb): free some space on it, then start again"
        )


def usable_workspace(spec: SandboxSpec) -> Path:
    """The spec's workspace, resolved, once it is a directory on a disk with room; else SandboxError."""
    workspace = spec.workspace.resolve()
    if not workspace.is_dir():
        raise SandboxError(f"workspace {workspace} is not a directory")
    check_disk(workspace, spec.limits)
    return workspace


def _free_mb(path: Path) -> int | None:
    try:
        found = os.statvfs(path)
    except OSError:
        return None
    return found.f_bavail * found.f_frsize >> 20


def cap_output(text: str, limit: int) -> tuple[str, bool]:
    """Keep the head and the tail of `text` within `limit` characters, saying what was cut.

    The tail matters as much as the head: test runners and compilers print their
    verdict last.
    """
    if len(text) <= limit:
        return text, False
    head = limit // 2
    tail = limit - head
    omitted = len(text) - head - tail
    return f"{text[:head]}\n[... {omitted} characters omitted ...]\n{text[-tail:]}", True
