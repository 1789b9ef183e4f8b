"""The containers of the docker backend: how one is made, who owns it and its files, and cleanup.

Every container carries labels naming its owner process so that containers left by a
crashed process are pruned. A daemon that goes away (restarted, stopped) is waited for
where a restart takes seconds, and containers it could not remove are removed later.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from docker.types import Mount
from requests import RequestException

from sandboxes.base import WORKSPACE_MOUNT, SandboxError, SandboxSpec
from sandboxes.image_build import DEFAULT_TAG
from sandboxes.process import process_alive

log = logging.getLogger(__name__)

LABEL = "shipyard.sandbox"
OWNER_PID_LABEL = "shipyard.owner_pid"
OWNER_HOST_LABEL = "shipyard.owner_host"
CREATED_LABEL = "shipyard.created"
SANDBOX_UID = 1000
# How long a sandbox whose container died waits for the Docker daemon to answer again.
DAEMON_WAIT = 60.0

_pruned_once = False
# Containers that could not be removed because the daemon was away; retried at every start.
_unremoved: set[str] = set()


class ContainerGone(Exception):
    """The sandbox's container is not running any more, or the daemon does not answer."""


def wait_for_daemon(client: docker.DockerClient, what: str, wait: float = DAEMON_WAIT) -> None:
    """Return once the daemon answers (a restarting one does within seconds); SandboxError after `wait`."""
    deadline = time.monotonic() + wait
    while True:
        try:
            client.ping()
            return
        except (DockerException, RequestException) as exc:
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"{what} the Docker daemon does not answer after {wait:g} s ({one_line(exc)}); "
                    "start it (e.g. `sudo systemctl start docker`)"
                ) from exc
            time.sleep(0.5)


def one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def missing_image_hint(image: str) -> str:
    if image == DEFAULT_TAG:
        return f"the sandbox image {image} does not exist: run `shipyard sandbox build`"
    return (
        f"the sandbox image {image} does not exist: build it (`shipyard sandbox build` builds the bundled image, "
        f"with `--dockerfile <dir>` a repo's own, under that tag; or `docker build -t {image} <dir>`) or pull it"
    )


def sandbox_user(workspace: Path) -> tuple[int, int]:
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
    own(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            own(Path(dirpath, name), uid, gid)


def own(path: Path, uid: int, gid: int) -> None:
    """Give `path` itself (a symlink is not followed) to uid:gid."""
    info = path.lstat()
    if (info.st_uid, info.st_gid) != (uid, gid):
        os.lchown(path, uid, gid)


@dataclass(frozen=True)
class ContainerSetup:
    """What a sandbox's containers are made from (a fresh one replacing a dead one is made the same)."""

    spec: SandboxSpec
    workspace: Path  # the host directory mounted read-write at WORKSPACE_MOUNT
    uid: int
    gid: int
    read_only: Sequence[tuple[Path, Path]] = ()  # more (host path, container path) binds, read-only


def start_container(client: docker.DockerClient, setup: ContainerSetup, what: str) -> Container:
    """A started container, waiting out a daemon that restarts meanwhile (up to DAEMON_WAIT)."""
    deadline = time.monotonic() + DAEMON_WAIT
    while True:
        try:
            return _create_container(client, setup)
        except ContainerGone as exc:
            if time.monotonic() > deadline:
                raise SandboxError(f"{what} the Docker daemon went away: {one_line(exc)}") from exc
            time.sleep(0.5)
            wait_for_daemon(client, what)


def _create_container(client: docker.DockerClient, setup: ContainerSetup) -> Container:
    """A started container for `setup`; ContainerGone when the daemon goes away meanwhile."""
    try:
        return _create_container_now(client, setup)
    except RequestException as exc:  # a connection lost, not a refusal: the daemon is (re)starting
        raise ContainerGone(str(exc)) from exc


def _create_container_now(client: docker.DockerClient, setup: ContainerSetup) -> Container:
    spec = setup.spec
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
    # Preparing an environment runs as root on a writable root (what package managers need); the
    # result is committed as an image and agents start from it locked down.
    confined = {} if spec.prepare else {"cap_drop": ["ALL"]}
    try:
        container = client.containers.create(
            spec.image,
            command=["sleep", "infinity"],
            name=f"shipyard-{uuid.uuid4().hex[:12]}",
            labels=labels,
            init=True,
            user="0:0" if spec.prepare else f"{setup.uid}:{setup.gid}",
            working_dir=WORKSPACE_MOUNT,
            mounts=[
                Mount(target=WORKSPACE_MOUNT, source=str(setup.workspace), type="bind", read_only=False),
                *(Mount(target=str(inside), source=str(host), type="bind", read_only=True)
                  for host, inside in setup.read_only),
                *(Mount(target=m.target, source=str(m.source), type="bind", read_only=not m.writable)
                  for m in spec.mounts),
            ],
            read_only=not spec.prepare,
            tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={limits.tmp_mb}m,mode=1777"},
            network_mode=None if spec.network else "none",
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(cpus * 1e9),
            pids_limit=limits.pids,
            security_opt=["no-new-privileges"],
            **confined,
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


def remove_container(container: Container, name: str) -> None:
    """Remove a sandbox's container; one the daemon cannot be asked about now is removed at a later start."""
    try:
        container.remove(force=True)
    except NotFound:
        pass
    except (DockerException, RequestException) as exc:
        # 409: removal already under way (e.g. by prune_orphans in another process).
        if not (isinstance(exc, APIError) and exc.status_code == 409):
            # The daemon is gone (restarted, stopped) or refused: tried again at the next start.
            log.warning("could not remove sandbox %s: %s", name, exc)
            _unremoved.add(container.id)


def clean_up(client: docker.DockerClient) -> None:
    """Before a start: remove what earlier stops could not, and (once a process) orphaned sandboxes."""
    for container_id in list(_unremoved):
        try:
            client.api.remove_container(container_id, force=True)
        except NotFound:
            pass
        except (DockerException, RequestException):
            continue
        _unremoved.discard(container_id)
    global _pruned_once
    if _pruned_once:
        return
    _pruned_once = True
    try:
        if pruned := prune_orphans(client):
            log.info("pruned orphaned sandboxes: %s", ", ".join(pruned))
    except DockerException as exc:
        log.warning("could not prune orphaned sandboxes: %s", exc)


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
        if not all and (labels.get(OWNER_HOST_LABEL, host) != host or _owner_alive(labels.get(OWNER_PID_LABEL, ""))):
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


def _owner_alive(pid_text: str) -> bool:
    return pid_text.isdigit() and process_alive(int(pid_text))
