"""The Docker sandbox backend: one locked-down container per sandbox.

The container only sleeps; commands go to the exec server kept in it (exec_channel.py), or,
where it cannot run, each is a `docker exec` into it. The root file
system is read-only, /tmp is a tmpfs, the workspace is the one writable bind mount,
there is no network unless the spec allows it, no capabilities, no privilege
escalation, and memory, CPU and process limits (see docker_containers). Of the
workspace's repository, what read-only git needs is mounted read-only (git/read_only.py).
"""

from __future__ import annotations

import logging
import os
import posixpath
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from requests import RequestException

from sandboxes import live
from sandboxes.base import (
    WORKSPACE_MOUNT,
    Availability,
    ExecResult,
    SandboxError,
    SandboxSpec,
    usable_workspace,
)
from sandboxes.docker_containers import (
    ContainerGone,
    ContainerSetup,
    clean_up,
    missing_image_hint,
    one_line,
    own,
    remove_container,
    sandbox_user,
    start_container,
    wait_for_daemon,
)
from sandboxes.docker_process import DockerProcess, start_process
from sandboxes.exec_channel import ChannelLost, ExecChannel
from sandboxes.git.read_only import ReadOnlyGit, read_only_git
from sandboxes.image_build import DEFAULT_TAG
from sandboxes.process import TIMEOUT_EXIT, WATCH_INTERVAL, OutputCapture, exec_result
from sandboxes.workspace_sandbox import WorkspaceSandbox

log = logging.getLogger(__name__)

# How long past its timeout the host waits for a command before giving up on it:
# the in-container `timeout` normally ends it well within this.
HOST_GRACE = 5.0
# Runs every command (argv after `sh -c SUPERVISOR <timeout>`), from inside the
# container where the clock cannot be late. `timeout` puts the command in a process
# group of its own and kills the whole group when time is up; once the command ends,
# whatever it left running in that group (background jobs, a fork bomb) is killed
# too, so one command cannot eat the next one's processes. To outlive its command, a
# process must leave the group (setsid).
SUPERVISOR = """timeout -s KILL "$0" "$@" & pid=$!
wait "$pid" 2>/dev/null; status=$?
kill -KILL -"$pid" 2>/dev/null
exit "$status"
"""


class DockerBackend:
    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None, channel_python: str | None = "python3"):
        self._client = client
        # The interpreter that runs each sandbox's exec server; None: every command is a docker exec.
        self.channel_python = channel_python

    def availability(self, image: str = DEFAULT_TAG) -> Availability:
        try:
            client = self._get_client()
            client.images.get(image)
        except SandboxError as exc:
            return Availability(backend=self.name, ok=False, detail=str(exc))
        except ImageNotFound:
            return Availability(backend=self.name, ok=False, detail=missing_image_hint(image), image_missing=True)
        except DockerException as exc:
            return Availability(backend=self.name, ok=False, detail=f"Docker error: {exc}")
        return Availability(backend=self.name, ok=True, detail=f"Docker daemon answers and {image} exists")

    def start(self, spec: SandboxSpec) -> DockerSandbox:
        workspace = usable_workspace(spec)
        client = self._get_client()
        wait_for_daemon(client, "cannot start a sandbox:")
        clean_up(client)
        try:
            client.images.get(spec.image)
        except ImageNotFound:
            raise SandboxError(missing_image_hint(spec.image)) from None
        except (DockerException, RequestException) as exc:
            raise SandboxError(f"cannot start a sandbox: the Docker daemon failed: {one_line(exc)}") from exc
        uid, gid = sandbox_user(workspace)
        git = read_only_git(workspace)
        setup = ContainerSetup(spec, workspace, uid, gid, git.binds if git else ())
        try:
            container = start_container(client, setup, "cannot start a sandbox:")
        except BaseException:
            if git:
                git.close()
            raise
        sandbox = DockerSandbox(client, container, setup, git, self.channel_python)
        try:
            sandbox._prepare()
        except BaseException:
            sandbox.stop()
            raise
        return sandbox

    def image_env(self, image: str) -> dict[str, str]:
        """The environment `image` declares (its ENV lines). Commands get exactly BASE_ENV and the spec's
        env, so what an image needs of its own (its PATH, say) has to be passed on by name."""
        try:
            declared = self._get_client().images.get(image).attrs["Config"].get("Env") or []
        except ImageNotFound:
            raise SandboxError(missing_image_hint(image)) from None
        except (DockerException, RequestException) as exc:
            raise SandboxError(f"could not read the image {image}: {one_line(exc)}") from exc
        return dict(item.split("=", 1) for item in declared if "=" in item)

    def image_id(self, image: str) -> str | None:
        """The id of `image`, or None when there is no such image here."""
        try:
            return str(self._get_client().images.get(image).id)
        except ImageNotFound:
            return None
        except (DockerException, RequestException) as exc:
            raise SandboxError(f"could not read the image {image}: {one_line(exc)}") from exc

    def pull(self, image: str) -> None:
        """Pull `image` from its registry; SandboxError (one line) when it cannot be had."""
        try:
            self._get_client().images.pull(image)
        except (DockerException, RequestException) as exc:
            raise SandboxError(f"the image {image} is not here and could not be pulled: {one_line(exc)}") from exc

    def remove_image(self, image: str) -> None:
        """Remove `image` if it exists (an image a container still uses stays, with a warning)."""
        try:
            self._get_client().images.remove(image)
        except ImageNotFound:
            pass
        except (DockerException, RequestException) as exc:
            log.warning("could not remove image %s: %s", image, one_line(exc))

    def _get_client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                client = docker.from_env()
                client.ping()
            except (DockerException, RequestException) as exc:
                raise SandboxError(
                    f"the Docker daemon does not answer ({exc}); start the Docker daemon "
                    "(e.g. `sudo systemctl start docker`), or set DOCKER_HOST, "
                    "or make sure your user may use the Docker socket"
                ) from exc
            self._client = client
        return self._client


class DockerSandbox(WorkspaceSandbox):
    """A started container. Commands run in it; files are accessed on the host side."""

    def __init__(
        self, client: docker.DockerClient, container: Container, setup: ContainerSetup, git: ReadOnlyGit | None,
        channel_python: str | None = None,
    ):
        super().__init__(setup.spec, setup.workspace)
        self.name = container.name
        self._client = client
        self._container: Container | None = container
        self._setup = setup
        self._git = git
        self._shell = "sh"
        self._keepalive_pid = ""
        self._reviving = False
        self._channel_python = channel_python
        self._channel: ExecChannel | None = None
        live.track(self)

    def _run_command(self, cmd: str | list[str], timeout: float, env: dict[str, str], workdir: Path) -> ExecResult:
        git_env = self._git.env if self._git else {}
        argv = self._supervised(cmd, timeout, self._command_env(git_env, env))
        cwd = posixpath.join(WORKSPACE_MOUNT, workdir.as_posix())
        started = time.monotonic()
        try:
            exit_code, stdout, stderr, host_timed_out, killed = self._run(argv, cwd, timeout + HOST_GRACE)
        except ContainerGone as exc:
            # Its container died under it (the Docker daemon was restarted, someone killed it):
            # a fresh one on the same workspace. Only /tmp and running processes are lost.
            if self._reviving:
                raise SandboxError(f"sandbox {self.name}: a fresh container died at once too: {exc}") from exc
            self._revive()
            started = time.monotonic()
            exit_code, stdout, stderr, host_timed_out, killed = self._run(argv, cwd, timeout + HOST_GRACE)
        duration = time.monotonic() - started
        # `timeout -s KILL` kills its own process group, itself included, so a timed-out
        # command shows as killed (137); the clock tells it from an OOM kill.
        timed_out = host_timed_out or (exit_code in (TIMEOUT_EXIT, 137) and duration >= timeout)
        if exit_code == 137 and not timed_out and not killed and not self._container_running():
            killed = (
                "the sandbox's container stopped while the command ran (killed from outside, or the Docker "
                "daemon stopped); the next command gets a fresh one on the same workspace: files are kept, "
                "/tmp and background processes are not"
            )
        return exec_result(exit_code, stdout, stderr, duration, timed_out, killed)

    def _spawn_process(self, argv: list[str], env: dict[str, str], workdir: Path) -> DockerProcess:
        container = self._container
        if container is None:
            raise SandboxError(f"sandbox {self.name} is stopped")
        git_env = self._git.env if self._git else {}
        return start_process(self._client.api, container.id, argv, self._command_env(git_env, env),
                             posixpath.join(WORKSPACE_MOUNT, workdir.as_posix()), self.name)

    def write_file(self, path: str, content: bytes | str) -> None:
        super().write_file(path, content)
        if os.geteuid() == 0:
            # Written by root on the host: hand the file and any directories just
            # created for it to the sandbox user, or it could not edit them.
            host = self._files.resolve(path)
            for entry in [host, *host.parents]:
                if entry == self._files.root:
                    break
                own(entry, self._setup.uid, self._setup.gid)

    def freeze(self, repository: str, tag: str, labels: dict[str, str]) -> str:
        """Commit the container as image repository:tag with `labels` (a prepared environment); its id.

        The workspace is a bind mount, so the image holds what was set up outside it; whatever root
        wrote into the workspace is handed back to the workspace's owner first.
        """
        container = self._container
        if container is None:
            raise SandboxError(f"sandbox {self.name} is stopped")
        owner = f"{self._setup.uid}:{self._setup.gid}"
        self.exec(["chown", "-R", owner, WORKSPACE_MOUNT], timeout=120)
        changes = [f"LABEL {key}={value}" for key, value in labels.items()]
        try:
            image = container.commit(repository=repository, tag=tag, changes=changes)
        except (DockerException, RequestException) as exc:
            raise SandboxError(f"could not save the environment of sandbox {self.name}: {one_line(exc)}") from exc
        return str(image.id)

    def stop(self) -> None:
        container, self._container = self._container, None
        live.untrack(self)
        self._drop_channel()
        if container is not None:
            remove_container(container, self.name)
        if self._git:
            self._git.close()

    def _prepare(self) -> None:
        """Create HOME on the fresh /tmp and learn what the host-side safety net needs."""
        script = 'mkdir -p "$HOME" || exit 1; echo $(cat /proc/1/task/1/children); command -v bash || true'
        result = self.exec(["sh", "-c", script], timeout=30)
        if result.exit_code != 0:
            raise SandboxError(f"sandbox {self.name} does not work: {result.output.strip()}")
        lines = result.stdout.split("\n")
        self._keepalive_pid = lines[0].strip()
        # bash when the image has it (what agents and READMEs assume), else POSIX sh.
        # Not a login shell: /etc/profile would reset PATH and drop a venv put on it.
        self._shell = "bash" if len(lines) > 1 and lines[1].strip() else "sh"
        self._open_channel()

    @property
    def channel_open(self) -> bool:
        """Whether commands go over the exec channel (else each is a docker exec)."""
        return self._channel is not None and not self._channel.broken

    def _open_channel(self) -> None:
        container = self._container
        if self._channel_python is not None and container is not None:
            self._channel = ExecChannel.open(self._client.api, container.id, self._channel_python)
            if self._channel is None:  # no python3 in the image, say: docker exec for good
                self._channel_python = None

    def _drop_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()

    def _over_channel(
        self, argv: list[str], cwd: str, deadline: float
    ) -> tuple[int, OutputCapture, OutputCapture, bool, str | None] | None:
        """Run the command over the exec channel; None when it must be a docker exec instead."""
        container = self._container
        if container is None:
            return None
        if self._channel is None or self._channel.broken:
            self._drop_channel()
            self._open_channel()  # lost with the command before it (killed, timed out): a fresh one
        channel = self._channel
        if channel is None:
            return None
        limit = self.spec.limits.output_limit
        stdout, stderr = OutputCapture(limit), OutputCapture(limit)
        disk = self._disk_watch()
        try:
            ran = channel.try_run(argv, cwd, deadline, stdout, stderr, disk, lambda: self._kill_strays(container.id))
        except ChannelLost:
            self._drop_channel()
            if self._container_running():
                return 137, stdout, stderr, False, ("the sandbox's exec server was killed while the command ran "
                                                     "(out of memory?); the next command gets a fresh one")
            return 137, stdout, stderr, False, None  # the container stopped: said by the caller
        if ran is None:
            return None
        exit_code, host_timed_out, killed = ran
        if channel.broken:
            # The command outlived its in-container timeout: kill what runs (the server too) and stop listening.
            self._drop_channel()
            self._kill_strays(container.id, keep_server=False)
        return exit_code, stdout, stderr, host_timed_out, killed

    def _supervised(self, cmd: str | list[str], timeout: float, env: dict[str, str]) -> list[str]:
        """The argv of a docker exec running `cmd` under SUPERVISOR with exactly `env`."""
        argv = [self._shell, "-c", cmd] if isinstance(cmd, str) else list(cmd)
        if not argv:
            raise SandboxError("empty command")
        seconds = f"{max(timeout, 0.001):.3f}"  # 0 would mean no limit to `timeout`
        # `env -i` because a docker exec inherits the image's and the container's environment.
        assignments = [f"{name}={value}" for name, value in env.items()]
        return ["env", "-i", *assignments, "sh", "-c", SUPERVISOR, seconds, *argv]

    def _run(
        self, argv: list[str], cwd: str, deadline: float
    ) -> tuple[int, OutputCapture, OutputCapture, bool, str | None]:
        container = self._container
        if container is None:
            raise SandboxError(f"sandbox {self.name} is stopped")
        over_channel = self._over_channel(argv, cwd, deadline)
        if over_channel is not None:
            return over_channel
        api = self._client.api
        disk = self._disk_watch()
        try:
            exec_id = api.exec_create(container.id, argv, workdir=cwd)["Id"]
            stream = api.exec_start(exec_id, stream=True, demux=True)
        except (NotFound, RequestException) as exc:  # no such container, or no daemon (yet)
            raise ContainerGone(str(exc)) from exc
        except APIError as exc:
            if exc.status_code == 409:  # "container ... is not running"
                raise ContainerGone(str(exc)) from exc
            raise SandboxError(f"sandbox {self.name} cannot run commands: {exc}") from exc
        except DockerException as exc:
            raise SandboxError(f"sandbox {self.name} cannot run commands: {exc}") from exc
        stdout, stderr = (
            OutputCapture(self.spec.limits.output_limit),
            OutputCapture(self.spec.limits.output_limit),
        )
        reader = threading.Thread(target=_drain, args=(stream, stdout, stderr), daemon=True)
        reader.start()
        ends = time.monotonic() + deadline
        killed: str | None = None
        while reader.is_alive() and time.monotonic() < ends:
            reader.join(min(WATCH_INTERVAL, max(0.0, ends - time.monotonic())))
            if reader.is_alive() and killed is None:
                killed = disk()
                if killed:  # the workspace is a host directory: its disk is the host's
                    self._kill_strays(container.id)
                    ends = min(ends, time.monotonic() + 5)
        if reader.is_alive():
            # The command outlived its in-container timeout: something escaped the
            # process group or the daemon is stuck. Kill what runs, stop listening.
            self._kill_strays(container.id)
            stream.close()
            reader.join(2)
            return TIMEOUT_EXIT, stdout, stderr, not killed, killed
        try:
            return _exit_code(api, exec_id), stdout, stderr, False, killed
        except (DockerException, RequestException) as exc:
            raise SandboxError(
                f"the Docker daemon stopped answering while the command ran in sandbox {self.name} "
                f"(restarted?); its outcome is unknown. The next command gets a fresh container on the same "
                f"workspace (files kept; /tmp and background processes lost): {one_line(exc)}"
            ) from exc

    def _container_running(self, settle: float = 1.0) -> bool:
        """Whether the container still runs, given a moment: a container just killed may still say so."""
        container = self._container
        deadline = time.monotonic() + settle
        try:
            while container is not None:
                container.reload()
                if container.status != "running":
                    return False
                if time.monotonic() >= deadline:
                    return True
                time.sleep(0.1)
        except (DockerException, RequestException):
            pass
        return False

    def _revive(self) -> None:
        """Replace a dead container with a fresh one on the same workspace, once the daemon answers."""
        what = f"sandbox {self.name} lost its container and"
        wait_for_daemon(self._client, what)
        old, self._container = self._container, None
        self._drop_channel()
        if old is not None:
            remove_container(old, self.name)
        log.warning("sandbox %s lost its container; starting a fresh one", self.name)
        self._container = start_container(self._client, self._setup, what)
        self.name = self._container.name
        self._reviving = True
        try:
            self._prepare()
        finally:
            self._reviving = False

    def _kill_strays(self, container_id: str, keep_server: bool = True) -> None:
        """Kill every process in the container but its init, the keep-alive sleep and the exec server."""
        keep = f"1 {self._keepalive_pid}"
        if keep_server and self._channel is not None:
            keep += f" {self._channel.server_pid}"
        script = (
            'for p in /proc/[0-9]*; do p=${p#/proc/}; case " $KEEP $$ " in *" $p "*) ;; '
            "*) kill -KILL $p 2>/dev/null;; esac; done"
        )
        try:
            exec_id = self._client.api.exec_create(container_id, ["sh", "-c", script], environment={"KEEP": keep})
            self._client.api.exec_start(exec_id)
        except (DockerException, RequestException) as exc:
            log.warning("could not kill the processes left in %s: %s", self.name, exc)


def _drain(
    stream: Iterator[tuple[bytes | None, bytes | None]],
    stdout: OutputCapture,
    stderr: OutputCapture,
) -> None:
    try:
        for out, err in stream:
            if out:
                stdout.feed(out)
            if err:
                stderr.feed(err)
    except (DockerException, RequestException, OSError, ValueError):
        # The host-side deadline closed the stream under us, or the daemon went away; what
        # was read is kept.
        pass


def _exit_code(api: docker.APIClient, exec_id: str) -> int:
    # The output stream can end a moment before the daemon records the exit.
    for _ in range(250):
        info = api.exec_inspect(exec_id)
        if not info["Running"] and info["ExitCode"] is not None:
            return int(info["ExitCode"])
        time.sleep(0.02)
    raise SandboxError(f"exec {exec_id[:12]} ended its output but never exited")
