"""What the sandboxes of every backend share: the workspace's files, accessed on the host side,
the checks of an `exec` call, and use as a context manager."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Self

from sandboxes.base import BASE_ENV, DiskWatch, ExecResult, SandboxError, SandboxProcess, SandboxSpec
from sandboxes.files import WorkspaceFiles
from sandboxes.process import command_env, workdir_in


class WorkspaceSandbox(ABC):
    """A started sandbox around a host directory mounted at WORKSPACE_MOUNT (the Sandbox protocol)."""

    def __init__(self, spec: SandboxSpec, workspace: Path):
        self.spec = spec
        self._files = WorkspaceFiles(workspace)

    def exec(
        self,
        cmd: str | list[str],
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
    ) -> ExecResult:
        timeout = self.spec.limits.exec_timeout if timeout is None else timeout
        if timeout <= 0:
            raise SandboxError(f"timeout must be positive, not {timeout}")
        return self._run_command(cmd, timeout, env or {}, workdir_in(self._files, workdir))

    @abstractmethod
    def _run_command(self, cmd: str | list[str], timeout: float, env: dict[str, str], workdir: Path) -> ExecResult:
        """Run `cmd` for at most `timeout` seconds with `env` added, in `workdir` (relative to the workspace)."""

    def spawn(self, argv: list[str], env: dict[str, str] | None = None, workdir: str | None = None) -> SandboxProcess:
        """Start `argv` (no shell) as a long-lived process with pipes to its stdin and stdout, confined and
        with the environment that `exec`'s commands get, in `workdir`; it runs until killed or the sandbox stops."""
        if not argv:
            raise SandboxError("empty command")
        return self._spawn_process(list(argv), env or {}, workdir_in(self._files, workdir))

    def _command_env(self, own: dict[str, str], env: dict[str, str]) -> dict[str, str]:
        """A command's whole environment: BASE_ENV, then the backend's `own` variables, the spec's, the call's."""
        return command_env(BASE_ENV, own, self.spec.env, env)

    def _disk_watch(self) -> DiskWatch:
        """For one command: whether it must be killed for the sake of the disk holding the workspace."""
        return DiskWatch(self._files.root, self.spec.limits.min_free_mb)

    @abstractmethod
    def _spawn_process(self, argv: list[str], env: dict[str, str], workdir: Path) -> SandboxProcess:
        """Start `argv` with `env` added, in `workdir` (relative to the workspace), its stdin and stdout piped."""

    def read_file(self, path: str) -> bytes:
        return self._files.read(path)

    def write_file(self, path: str, content: bytes | str) -> None:
        self._files.write(path, content)

    def list_files(self, path: str = ".") -> list[str]:
        return self._files.list(path)

    @abstractmethod
    def stop(self) -> None:
        """Kill what runs and release what the sandbox holds; safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
