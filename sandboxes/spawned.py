"""Long-lived processes with pipes (`Sandbox.spawn`): the bounded stderr every backend keeps of one,
and the host process behind one for the local and bubblewrap backends."""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable

from sandboxes.base import SandboxError

# Of a spawned process's stderr, the last this many characters are kept: enough for a traceback's end.
STDERR_TAIL_CHARS = 4_000
READ_CHUNK = 1 << 16
# Seconds to wait for the rest of an ended process's stderr (a child it left running may hold the pipe).
STDERR_DRAIN = 1.0


class StderrTail:
    """The last `limit` characters of a stream, decoded as it comes (invalid UTF-8 as U+FFFD)."""

    def __init__(self, limit: int = STDERR_TAIL_CHARS):
        self._limit = limit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> None:
        with self._lock:
            self._text = (self._text + self._decoder.decode(data))[-self._limit :]

    @property
    def text(self) -> str:
        with self._lock:
            return self._text


class PipeProcess:
    """A host process (the command itself, or bwrap around it) with its stdin and stdout as pipes, leader
    of its own process group; its stderr is read on a thread of its own into a StderrTail."""

    def __init__(self, proc: subprocess.Popen[bytes], ended: Callable[[], None]):
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self._proc = proc
        self._ended = ended
        self._stderr = StderrTail()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True, name=f"stderr-{proc.pid}")
        self._reader.start()

    def read(self) -> bytes:
        assert self._proc.stdout is not None
        try:
            return self._proc.stdout.read1(READ_CHUNK)
        except (OSError, ValueError):  # closed by kill() meanwhile
            return b""

    def write(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except (OSError, ValueError) as exc:
            raise SandboxError(f"the process no longer reads its input (did it exit?): {exc}") from None

    def close_stdin(self) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(OSError, ValueError):
            self._proc.stdin.close()

    def wait(self, timeout: float) -> int | None:
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(STDERR_DRAIN)  # what it wrote before it ended is in `stderr`
        return 128 - code if code < 0 else code  # killed by a signal: as a shell reports it

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        self.close_stdin()
        # stdout is left to the garbage collector: closing it would wait for a read blocked on it, which a
        # process that escaped the group (local backend) may keep blocked.
        self._ended()

    @property
    def stderr(self) -> str:
        return self._stderr.text

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        with contextlib.suppress(OSError, ValueError):
            while data := self._proc.stderr.read1(READ_CHUNK):
                self._stderr.feed(data)
