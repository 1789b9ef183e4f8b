"""The local backend: no isolation at all, for trusted debugging only.

Commands run on the host, as the user running Shipyard, in the workspace directory.
They can read and write anything that user can, reach the network, and see every
host path. Paths naming WORKSPACE_MOUNT (/workspace) inside commands are NOT
rewritten: a command must use relative paths (it starts in the workspace). What is
kept from the other backends: the explicit minimal environment (BASE_ENV, with HOME
a private temporary directory, so no host secrets in the environment), timeouts that
kill the whole process group, and capped output. There are no resource limits.
"""

from __future__ import annotations

import getpass
import logging
import shutil
import tempfile
from pathlib import Path

from sandboxes.base import BASE_ENV, Availability, ExecResult, SandboxError, SandboxSpec, disk_short
from sandboxes.files import WorkspaceFiles
from sandboxes.process import Commands, command_env, shell_argv, workdir_in

log = logging.getLogger(__name__)


class LocalBackend:
    name = "local"

    def availability(self, image: str = "") -> Availability:
        return Availability(
            backend=self.name,
            ok=True,
            detail=f"no isolation: commands run on this host as {getpass.getuser()}; for trusted debugging only",
        )

    def start(self, spec: SandboxSpec) -> LocalSandbox:
        workspace = spec.workspace.resolve()
        if not workspace.is_dir():
            raise SandboxError(f"workspace {workspace} is not a directory")
        log.warning(
            "local sandbox for %s: NO ISOLATION, agent commands run on this host as %s",
            workspace,
            getpass.getuser(),
        )
        return LocalSandbox(spec, workspace)


class LocalSandbox:
    def __init__(self, spec: SandboxSpec, workspace: Path):
        self.spec = spec
        self._files = WorkspaceFiles(workspace)
        self._home = Path(tempfile.mkdtemp(prefix="shipyard-home-"))
        self._commands = Commands()

    def exec(
        self,
        cmd: str | list[str],
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
    ) -> ExecResult:
        return self._commands.run(
            shell_argv(cmd),
            env=command_env(BASE_ENV, {"HOME": str(self._home)}, self.spec.env, env),
            cwd=self._files.root / workdir_in(self._files, workdir),
            timeout=self.spec.limits.exec_timeout if timeout is None else timeout,
            output_limit=self.spec.limits.output_limit,
            watchdog=lambda: disk_short(self._files.root, self.spec.limits.min_free_mb),
        )

    def read_file(self, path: str) -> bytes:
        return self._files.read(path)

    def write_file(self, path: str, content: bytes | str) -> None:
        self._files.write(path, content)

    def list_files(self, path: str = ".") -> list[str]:
        return self._files.list(path)

    def stop(self) -> None:
        """Kill running commands and remove the private HOME; safe to call twice."""
        self._commands.close()
        shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self) -> LocalSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
