"""The host's end of a docker sandbox's exec channel: commands sent to the exec server kept in the container.

A `docker exec` per command costs a round of Docker API calls and an OCI runtime exec (tens of ms);
the channel is one attached exec, opened with the sandbox, that runs every command after it
(exec_server.py, over its stdin and stdout). The command line is the one a `docker exec` would
run, under the same in-container supervisor and timeout, so limits, environment and exit codes are
the same; output goes through the same caps. The host keeps its own deadline and the disk watch.

The channel is an optimisation only: when it cannot be opened (no python3 in the image), is busy
(commands run at once), or broke (a command outlived every deadline, the server was killed), the
sandbox runs the command with a `docker exec` as before.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandboxes.process import TIMEOUT_EXIT, WATCH_INTERVAL, OutputCapture

log = logging.getLogger(__name__)

SERVER_SOURCE = (Path(__file__).with_name("exec_server.py")).read_text(encoding="utf-8")
# Seconds the server has to say hello: a python3 starting in a container on a loaded machine.
HELLO_TIMEOUT = 30.0
_DOCKER_HEADER = struct.Struct(">BxxxI")  # a multiplexed attach stream: stream type, payload size
_FRAME_HEADER = struct.Struct(">cI")  # the server's frames: kind, payload size
_SERVER_STDOUT = 1


class ChannelLost(Exception):
    """The channel ended under a command (the server or its container died)."""


class ExecChannel:
    def __init__(self, sock: socket.socket, server_pid: str):
        self._sock = sock
        self.server_pid = server_pid
        self._lock = threading.Lock()
        self._raw = b""  # bytes read from Docker, not yet demultiplexed
        self._frames = b""  # the server's stdout, not yet parsed into frames
        self.broken = False

    @classmethod
    def open(cls, api: Any, container_id: str, python: str = "python3",
             hello_timeout: float = HELLO_TIMEOUT) -> ExecChannel | None:
        """Start the exec server in the container; None if it does not start (the sandbox uses docker exec)."""
        try:
            exec_id = api.exec_create(container_id, [python, "-c", SERVER_SOURCE], stdin=True, workdir="/")["Id"]
            attached = api.exec_start(exec_id, socket=True)
        except Exception as exc:  # noqa: BLE001 - any refusal means: no channel, docker exec instead
            log.info("no exec channel in %s: %s", container_id[:12], exc)
            return None
        sock: socket.socket = getattr(attached, "_sock", attached)
        channel = cls(sock, "")
        try:
            kind, payload = channel._frame(time.monotonic() + hello_timeout)
        except (ChannelLost, TimeoutError, OSError) as exc:
            log.info("no exec channel in %s: the server did not start (%s)", container_id[:12], exc)
            channel.close()
            return None
        if kind != b"h":
            channel.close()
            return None
        channel.server_pid = payload.decode()
        return channel

    def try_run(self, argv: list[str], cwd: str, deadline: float, stdout: OutputCapture, stderr: OutputCapture,
                watch: Callable[[], str | None],
                on_kill: Callable[[], None]) -> tuple[int, bool, str | None] | None:
        """Run one command: (exit code, timed out on the host's clock, why Shipyard killed it); None when the
        channel is busy with another command or broken (then use docker exec). ChannelLost if it died mid-way."""
        if self.broken or not self._lock.acquire(blocking=False):
            return None
        if self._ended():  # it died between commands (its container did): nothing was sent, docker exec tells
            self._lock.release()
            self.close()
            return None
        try:
            return self._run(argv, cwd, deadline, stdout, stderr, watch, on_kill)
        finally:
            self._lock.release()

    def _run(self, argv: list[str], cwd: str, deadline: float, stdout: OutputCapture, stderr: OutputCapture,
             watch: Callable[[], str | None], on_kill: Callable[[], None]) -> tuple[int, bool, str | None]:
        try:
            self._sock.sendall(json.dumps({"argv": argv, "cwd": cwd}).encode() + b"\n")
        except OSError as exc:
            self.broken = True
            raise ChannelLost(str(exc)) from exc
        ends = time.monotonic() + deadline
        killed: str | None = None
        while True:
            try:
                kind, payload = self._frame(min(ends, time.monotonic() + WATCH_INTERVAL))
            except TimeoutError:
                if time.monotonic() >= ends:
                    # The command outlived its in-container timeout: the caller kills what runs; the
                    # server's answer would come out of turn, so the channel is done with.
                    self.broken = True
                    return TIMEOUT_EXIT, not killed, killed
                if killed is None:
                    killed = watch()
                    if killed:  # the workspace is a host directory: its disk is the host's
                        on_kill()
                        ends = min(ends, time.monotonic() + 5)
                continue
            if kind == b"o":
                stdout.feed(payload)
            elif kind == b"e":
                stderr.feed(payload)
            elif kind == b"x":
                return int(payload), False, killed

    def _ended(self) -> bool:
        try:
            return bool(select.select([self._sock], [], [], 0)[0]) and self._sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _frame(self, until: float) -> tuple[bytes, bytes]:
        """The server's next frame; TimeoutError at `until`, ChannelLost when the stream ends."""
        while len(self._frames) < _FRAME_HEADER.size or len(self._frames) < _FRAME_HEADER.size + _FRAME_HEADER.unpack(
                self._frames[:_FRAME_HEADER.size])[1]:
            self._read(until)
        kind, size = _FRAME_HEADER.unpack(self._frames[:_FRAME_HEADER.size])
        end = _FRAME_HEADER.size + size
        payload, self._frames = self._frames[_FRAME_HEADER.size:end], self._frames[end:]
        return kind, payload

    def _read(self, until: float) -> None:
        """Read more from Docker, demultiplexing the server's stdout into the frame buffer."""
        wait = until - time.monotonic()
        if wait <= 0 or not select.select([self._sock], [], [], wait)[0]:
            raise TimeoutError
        data = self._sock.recv(1 << 16)
        if not data:
            self.broken = True
            raise ChannelLost("the exec server's stream ended")
        self._raw += data
        while len(self._raw) >= _DOCKER_HEADER.size:
            stream, size = _DOCKER_HEADER.unpack(self._raw[:_DOCKER_HEADER.size])
            if len(self._raw) < _DOCKER_HEADER.size + size:
                break
            payload = self._raw[_DOCKER_HEADER.size:_DOCKER_HEADER.size + size]
            self._raw = self._raw[_DOCKER_HEADER.size + size:]
            if stream == _SERVER_STDOUT:
                self._frames += payload
            else:  # the server's own stderr: it failed (a traceback), or the runtime could not start it
                log.warning("exec server: %s", payload.decode(errors="replace").strip())

    def close(self) -> None:
        self.broken = True
        try:
            self._sock.close()
        except OSError:
            pass
