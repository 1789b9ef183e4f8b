"""A long-lived process in a sandbox's container (`Sandbox.spawn` for the docker backend).

The process is a `docker exec` with stdin attached, over the Docker API's hijacked connection: its
stdout and stderr come back multiplexed in frames (the SDK's frame reader splits them), its stdin is
what is written to the socket, and half-closing the socket is its EOF. Two things are done first, from
inside the container, before the command runs: it waits for one line on stdin, so that no output can
arrive before the SDK has taken the connection over from its HTTP reader (whose buffer would swallow
it), and it prints its pid, which is how it is killed (a host pid is no use with a remote daemon).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import docker
from docker.errors import DockerException
from docker.utils.socket import STDERR, frames_iter
from requests import RequestException

from sandboxes.base import SandboxError
from sandboxes.spawned import StderrTail

# Waits for the go-ahead line, prints its pid, becomes the command (keeping the pid).
PRELUDE = 'read -r _ && echo $$ && exec "$@"'
WAIT_POLL = 0.05


def start_process(
    api: docker.APIClient, container_id: str, argv: list[str], env: dict[str, str], workdir: str, sandbox: str
) -> DockerProcess:
    """`argv` started in the container with exactly `env`, in `workdir`; SandboxError if Docker refuses."""
    command = ["env", "-i", *(f"{name}={value}" for name, value in env.items()), "sh", "-c", PRELUDE, "sh", *argv]
    try:
        exec_id = api.exec_create(container_id, command, stdin=True, workdir=workdir)["Id"]
        connection = api.exec_start(exec_id, socket=True)
    except (DockerException, RequestException) as exc:
        raise SandboxError(f"sandbox {sandbox} cannot start a process: {exc}") from exc
    process = DockerProcess(api, container_id, exec_id, connection)
    try:
        process.start()
    except BaseException:
        process.kill()
        raise
    return process


class DockerProcess:
    """One `docker exec` with stdin attached (sandboxes.base.SandboxProcess)."""

    def __init__(self, api: docker.APIClient, container_id: str, exec_id: str, connection: Any):
        self._api = api
        self._container_id = container_id
        self._exec_id = exec_id
        self._connection = connection
        # The socket under the SDK's SocketIO wrapper, for sendall and shutdown.
        self._socket: socket.socket = getattr(connection, "_sock", connection)
        self._frames: Iterator[tuple[int, bytes]] = frames_iter(connection, tty=False)
        self._stderr = StderrTail()
        self._pid = ""
        self._early = b""  # stdout read with the pid line

    def start(self) -> None:
        """Give the go-ahead and read the pid line."""
        self.write(b"\n")
        line = b""
        while b"\n" not in line:
            data = self.read()
            if not data:
                raise SandboxError(f"the process ended before it started: {self.stderr.strip() or 'no output'}")
            line += data
        pid, self._early = line.split(b"\n", 1)
        self._pid = pid.decode().strip()

    def read(self) -> bytes:
        if self._early:
            data, self._early = self._early, b""
            return data
        try:
            for stream, data in self._frames:
                if stream == STDERR:
                    self._stderr.feed(data)
                elif data:
                    return data
        except (OSError, ValueError, DockerException):  # the connection closed under the read
            pass
        return b""

    def write(self, data: bytes) -> None:
        try:
            self._socket.sendall(data)
        except OSError as exc:
            raise SandboxError(f"the process no longer reads its input (did it exit?): {exc}") from None

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_WR)

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = self._api.exec_inspect(self._exec_id)
            except (DockerException, RequestException):
                return None
            if not info["Running"] and info["ExitCode"] is not None:
                return int(info["ExitCode"])
            if time.monotonic() >= deadline:
                return None
            time.sleep(WAIT_POLL)

    def kill(self) -> None:
        if self._pid.isdigit():
            with contextlib.suppress(DockerException, RequestException):  # the container may be gone already
                kill = self._api.exec_create(self._container_id, ["sh", "-c", f"kill -KILL {self._pid}"])["Id"]
                self._api.exec_start(kill)
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes a read blocked on it
        with contextlib.suppress(OSError):
            self._connection.close()

    @property
    def stderr(self) -> str:
        return self._stderr.text
