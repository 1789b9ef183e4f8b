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

from sandboxes.base import Availability, ExecResult, SandboxSpec, usable_workspace
from sandboxes.process import Commands, shell_argv
from sandboxes.spawned import PipeProcess
from sandboxes.workspace_sandbox import WorkspaceSandbox

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
        workspace = usable_workspace(spec)
        log.warning(
            "local sandbox for %s: NO ISOLATION, agent commands run on this host as %s",
            workspace,
            getpass.getuser(),
        )
        return LocalSandbox(spec, workspace)


class LocalSandbox(WorkspaceSandbox):
    def __init__(self, spec: SandboxSpec, workspace: Path):
        super().__init__(spec, workspace)
        self._home = Path(tempfile.mkdtemp(prefix="shipyard-home-"))
        self._commands = Commands()

    def _run_command(self, cmd: str | list[str], timeout: float, env: dict[str, str], workdir: Path) -> ExecResult:
        return self._commands.run(
            shell_argv(cmd),
            env=self._env(env),
            cwd=self._files.root / workdir,
            timeout=timeout,
            output_limit=self.spec.limits.output_limit,
            watchdog=self._disk_watch(),
        )

    def _spawn_process(self, argv: list[str], env: dict[str, str], workdir: Path) -> PipeProcess:
        return self._commands.spawn(argv, env=self._env(env), cwd=self._files.root / workdir)

    def _env(self, env: dict[str, str]) -> dict[str, str]:
        return self._command_env({"HOME": str(self._home)}, env)

    def stop(self) -> None:
        """Kill running commands and remove the private HOME; safe to call twice."""
        self._commands.close()
        shutil.rmtree(self._home, ignore_errors=True)
