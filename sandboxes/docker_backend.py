"""The Docker sandbox backend: one locked-down container per sandbox.

The container only sleeps; every command is a `docker exec` into it. The root file
system is read-only, /tmp is a tmpfs, the workspace is the one writable bind mount,
there is no network unless the spec allows it, no capabilities, no privilege
escalation, and memory, CPU and process limits. Every container carries labels
naming its owner process so that containers left by a crashed process are pruned.
"""

from __future__ import annotations

import atexit
import logging
import os
import posixpath
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.types import Mount
from requests import RequestException

from sandboxes.base import (
    BASE_ENV,
    WORKSPACE_MOUNT,
    Availability,
    ExecResult,
    SandboxError,
    SandboxSpec,
    disk_short,
)
from sandboxes.files import WorkspaceFiles
from sandboxes.image_build import DEFAULT_TAG
from sandboxes.process import TIMEOUT_EXIT, WATCH_INTERVAL, OutputCapture, command_env, workdir_in

log = logging.getLogger(__name__)

LABEL = "shipyard.sandbox"
OWNER_PID_LABEL = "shipyard.owner_pid"
OWNER_HOST_LABEL = "shipyard.owner_host"
CREATED_LABEL = "shipyard.created"
SANDBOX_UID = 1000
# How long past its timeout the host waits for a command before giving up on it:
# the in-container `timeout` normally ends it well within this.
HOST_GRACE = 5.0
# How long a sandbox whose container died waits for the Docker daemon to answer again.
DAEMON_WAIT = 60.0
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

_pruned_once = False
_live: weakref.WeakSet[DockerSandbox] = weakref.WeakSet()
# Containers stop() could not remove because the daemon was away; retried at every start.
_unremoved: set[str] = set()


def _stop_live_sandboxes() -> None:
    for sandbox in list(_live):
        sandbox.stop()


# Containers of a process that exits normally go with it; those of a crashed or
# killed process are left to prune_orphans.
atexit.register(_stop_live_sandboxes)


class DockerBackend:
    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None):
        self._client = client

    def availability(self, image: str = DEFAULT_TAG) -> Availability:
        try:
            client = self._get_client()
            client.images.get(image)
        except SandboxError as exc:
            return Availability(backend=self.name, ok=False, detail=str(exc))
        except ImageNotFound:
            return Availability(backend=self.name, ok=False, detail=_missing_image_hint(image))
        except DockerException as exc:
            return Availability(backend=self.name, ok=False, detail=f"Docker error: {exc}")
        return Availability(
            backend=self.name,
            ok=True,
            detail=f"Docker daemon answers and {image} exists",
        )

    def start(self, spec: SandboxSpec) -> DockerSandbox:
        client = self._get_client()
        _wait_for_daemon(client, "cannot start a sandbox:")
        _prune_once(client)
        _remove_unremoved(client)
        try:
            client.images.get(spec.image)
        except ImageNotFound:
            raise SandboxError(_missing_image_hint(spec.image)) from None
        except (DockerException, RequestException) as exc:
            raise SandboxError(f"cannot start a sandbox: the Docker daemon failed: {_one_line(exc)}") from exc
        workspace = spec.workspace.resolve()
        if not workspace.is_dir():
            raise SandboxError(f"workspace {workspace} is not a directory")
        uid, gid = _sandbox_user(workspace)
        container = _start_container(client, spec, workspace, uid, gid, "cannot start a sandbox:")
        sandbox = DockerSandbox(spec, client, container, workspace, uid, gid)
        try:
            sandbox._prepare()
        except BaseException:
            sandbox.stop()
            raise
        return sandbox

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


class DockerSandbox:
    """A started container. Commands run in it; files are accessed on the host side."""

    def __init__(
        self,
        spec: SandboxSpec,
        client: docker.DockerClient,
        container: Container,
        workspace: Path,
        uid: int,
        gid: int,
    ):
        self.spec = spec
        self.name = container.name
        self._client = client
        self._container: Container | None = container
        self._files = WorkspaceFiles(workspace)
        self._uid, self._gid = uid, gid
        self._shell = "sh"
        self._keepalive_pid = ""
        self._reviving = False
        _live.add(self)

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
        argv = self._supervised(cmd, timeout, command_env(BASE_ENV, self.spec.env, env))
        cwd = posixpath.join(WORKSPACE_MOUNT, workdir_in(self._files, workdir).as_posix())
        started = time.monotonic()
        try:
            exit_code, stdout, stderr, host_timed_out, killed = self._run(argv, cwd, timeout + HOST_GRACE)
        except _ContainerGone as exc:
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
        out, out_cut = stdout.result()
        err, err_cut = stderr.result()
        if killed:
            err = f"{err.rstrip()}\n[shipyard: {killed}]\n".lstrip()
        return ExecResult(
            exit_code=TIMEOUT_EXIT if timed_out else exit_code,
            stdout=out,
            stderr=err,
            duration=duration,
            timed_out=timed_out,
            truncated=out_cut or err_cut,
        )

    def read_file(self, path: str) -> bytes:
        return self._files.read(path)

    def write_file(self, path: str, content: bytes | str) -> None:
        self._files.write(path, content)
        if os.geteuid() == 0:
            # Written by root on the host: hand the file and any directories just
            # created for it to the sandbox user, or it could not edit them.
            host = self._files.resolve(path)
            for entry in [host, *host.parents]:
                if entry == self._files.root:
                    break
                _own(entry, self._uid, self._gid)

    def list_files(self, path: str = ".") -> list[str]:
        return self._files.list(path)

    def stop(self) -> None:
        container, self._container = self._container, None
        _live.discard(self)
        if container is None:
            return
        try:
            container.remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            # Removal already under way (e.g. by prune_orphans in another process).
            if exc.status_code != 409:
                raise
        except (DockerException, RequestException) as exc:
            # The daemon is gone (restarted, stopped): removed at the next start, or by prune_orphans.
            log.warning("could not remove sandbox %s: %s", self.name, exc)
            _unremoved.add(container.id)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
        api = self._client.api
        try:
            exec_id = api.exec_create(container.id, argv, workdir=cwd)["Id"]
            stream = api.exec_start(exec_id, stream=True, demux=True)
        except (NotFound, RequestException) as exc:  # no such container, or no daemon (yet)
            raise _ContainerGone(str(exc)) from exc
        except APIError as exc:
            if exc.status_code == 409:  # "container ... is not running"
                raise _ContainerGone(str(exc)) from exc
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
                killed = disk_short(self._files.root, self.spec.limits.min_free_mb)
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
                f"workspace (files kept; /tmp and background processes lost): {_one_line(exc)}"
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
        _wait_for_daemon(self._client, what)
        old, self._container = self._container, None
        if old is not None:
            try:
                old.remove(force=True)
            except NotFound:
                pass
            except (DockerException, RequestException):
                _unremoved.add(old.id)
        log.warning("sandbox %s lost its container; starting a fresh one", self.name)
        self._container = _start_container(self._client, self.spec, self._files.root, self._uid, self._gid, what)
        self.name = self._container.name
        self._reviving = True
        try:
            self._prepare()
        finally:
            self._reviving = False

    def _kill_strays(self, container_id: str) -> None:
        """Kill every process in the container but its init and the keep-alive sleep."""
        keep = f"1 {self._keepalive_pid}"
        script = (
            'for p in /proc/[0-9]*; do p=${p#/proc/}; case " $KEEP $$ " in *" $p "*) ;; '
            "*) kill -KILL $p 2>/dev/null;; esac; done"
        )
        try:
            exec_id = self._client.api.exec_create(container_id, ["sh", "-c", script], environment={"KEEP": keep})
            self._client.api.exec_start(exec_id)
        except (DockerException, RequestException) as exc:
            log.warning("could not kill the processes left in %s: %s", self.name, exc)


def _wait_for_daemon(client: docker.DockerClient, what: str, wait: float = DAEMON_WAIT) -> None:
    """Return once the daemon answers (a restarting one does within seconds); SandboxError after `wait`."""
    deadline = time.monotonic() + wait
    while True:
        try:
            client.ping()
            return
        except (DockerException, RequestException) as exc:
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"{what} the Docker daemon does not answer after {wait:g} s ({_one_line(exc)}); "
                    "start it (e.g. `sudo systemctl start docker`)"
                ) from exc
            time.sleep(0.5)


class _ContainerGone(Exception):
    """The sandbox's container is not running any more, or the daemon does not answer."""


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def _remove_unremoved(client: docker.DockerClient) -> None:
    for container_id in list(_unremoved):
        try:
            client.api.remove_container(container_id, force=True)
        except NotFound:
            pass
        except (DockerException, RequestException):
            continue
        _unremoved.discard(container_id)


def _prune_once(client: docker.DockerClient) -> None:
    global _pruned_once
    if _pruned_once:
        return
    _pruned_once = True
    try:
        if pruned := prune_orphans(client):
            log.info("pruned orphaned sandboxes: %s", ", ".join(pruned))
    except DockerException as exc:
        log.warning("could not prune orphaned sandboxes: %s", exc)


def _missing_image_hint(image: str) -> str:
    if image == DEFAULT_TAG:
        return f"the sandbox image {image} does not exist: run `shipyard sandbox build`"
    return f"the image {image} does not exist: build or pull it (`docker build -t {image} <dir>`)"


def _sandbox_user(workspace: Path) -> tuple[int, int]:
    """The uid and gid the sandbox runs as, after making the workspace theirs.

    Files must have one owner on both sides: the sandbox edits what the host wrote,
    and the host (git) commits what the sandbox wrote. A workspace owned by a normal
    user is run as that user, so nothing changes hands (on most desktops that is
    uid 1000 anyway). A root-owned workspace (Shipyard running as root, as on
    servers and CI) is never run as root: the tree is given to uid 1000, which
    root on the host can still read and write.
    """
    info = workspace.stat()
    uid, gid = (info.st_uid, info.st_gid) if info.st_uid != 0 else (SANDBOX_UID, SANDBOX_UID)
    if os.geteuid() == 0:
        _own_tree(workspace, uid, gid)
    elif info.st_uid == 0:
        raise SandboxError(
            f"workspace {workspace} belongs to root but Shipyard runs as uid {os.geteuid()}; "
            "the sandbox could not write to it: create workspaces as the user running Shipyard"
        )
    return uid, gid


def _own_tree(root: Path, uid: int, gid: int) -> None:
    # Symlinks are re-owned themselves, never followed: a repo may link to /etc.
    _own(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            _own(Path(dirpath, name), uid, gid)


def _own(path: Path, uid: int, gid: int) -> None:
    info = path.lstat()
    if (info.st_uid, info.st_gid) != (uid, gid):
        os.lchown(path, uid, gid)


def _start_container(
    client: docker.DockerClient, spec: SandboxSpec, workspace: Path, uid: int, gid: int, what: str
) -> Container:
    """A started container, waiting out a daemon that restarts meanwhile (up to DAEMON_WAIT)."""
    deadline = time.monotonic() + DAEMON_WAIT
    while True:
        try:
            return _create_container(client, spec, workspace, uid, gid)
        except _ContainerGone as exc:
            if time.monotonic() > deadline:
                raise SandboxError(f"{what} the Docker daemon went away: {_one_line(exc)}") from exc
            time.sleep(0.5)
            _wait_for_daemon(client, what)


def _create_container(client: docker.DockerClient, spec: SandboxSpec, workspace: Path, uid: int, gid: int) -> Container:
    """A started container for `spec`; _ContainerGone when the daemon goes away meanwhile."""
    try:
        return _create_container_now(client, spec, workspace, uid, gid)
    except RequestException as exc:  # a connection lost, not a refusal: the daemon is (re)starting
        raise _ContainerGone(str(exc)) from exc


def _create_container_now(
    client: docker.DockerClient, spec: SandboxSpec, workspace: Path, uid: int, gid: int
) -> Container:
    limits = spec.limits
    labels = {f"shipyard.{key}": value for key, value in spec.labels.items()}
    labels |= {
        LABEL: "1",
        OWNER_PID_LABEL: str(os.getpid()),
        OWNER_HOST_LABEL: socket.gethostname(),
        CREATED_LABEL: str(int(time.time())),
    }
    # Docker refuses a CPU limit above the machine's count; a config written for a
    # bigger machine still works here, with every CPU.
    cpus = min(limits.cpus, float(client.info().get("NCPU") or limits.cpus))
    try:
        container = client.containers.create(
            spec.image,
            command=["sleep", "infinity"],
            name=f"shipyard-{uuid.uuid4().hex[:12]}",
            labels=labels,
            init=True,
            user=f"{uid}:{gid}",
            working_dir=WORKSPACE_MOUNT,
            mounts=[
                Mount(
                    target=WORKSPACE_MOUNT,
                    source=str(workspace),
                    type="bind",
                    read_only=False,
                )
            ],
            read_only=True,
            tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={limits.tmp_mb}m,mode=1777"},
            network_mode=None if spec.network else "none",
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(cpus * 1e9),
            pids_limit=limits.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
        )
    except DockerException as exc:
        raise SandboxError(f"could not create a container from {spec.image}: {exc}") from exc
    try:
        container.start()
    except DockerException as exc:
        container.remove(force=True)
        raise SandboxError(f"could not start a container from {spec.image}: {exc}") from exc
    except RequestException:
        _unremoved.add(container.id)  # created, then the daemon went away: removed at a later start
        raise
    return container


def prune_orphans(client: docker.DockerClient | None = None, all: bool = False) -> list[str]:
    """Remove sandbox containers whose owner process on this host is gone; return their names.

    With `all`, remove every sandbox container, whoever owns it. Containers started
    from other hosts sharing this daemon are left alone: their owners cannot be
    checked from here.
    """
    client = client or docker.from_env()
    host = socket.gethostname()
    removed = []
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        labels = container.labels
        if not all and (labels.get(OWNER_HOST_LABEL, host) != host or _alive(labels.get(OWNER_PID_LABEL, ""))):
            continue
        try:
            container.remove(force=True)
            removed.append(container.name)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:
                raise
    return removed


def _alive(pid_text: str) -> bool:
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
