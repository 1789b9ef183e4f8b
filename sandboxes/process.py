"""Running one command as a host process: the part the bubblewrap and local backends share.

A command runs in its own process group with stdin closed. Its stdout and stderr are
read as they come, keeping only what cap_output would keep, so a command printing
gigabytes costs kilobytes. At the deadline the whole group is killed with SIGKILL (a
command that traps SIGTERM must die too); when the command ends, whatever it left
running in its group is killed as well, so nothing outlives an exec.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sandboxes.base import ExecResult, SandboxError, cap_output
from sandboxes.files import WorkspaceFiles
from sandboxes.spawned import PipeProcess

# Exit code of a command that ran out of time, as coreutils `timeout` (and the docker
# backend) report it.
TIMEOUT_EXIT = 124
# How long to keep reading after the command ended, for output still in flight. Past
# that, a pipe held open by an escaped process (setsid + background) is abandoned.
DRAIN_GRACE = 0.5
# How often the deadline is checked while a command is silent.
POLL_INTERVAL = 0.05
CHUNK = 1 << 16
# How often a running command's watchdog (e.g. the disk check) is asked.
WATCH_INTERVAL = 0.1
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
# Returns why a running command must be killed now, or None to let it run.
Watchdog = Callable[[], str | None]


class OutputCapture:
    """What cap_output(whole_stream, limit) would return, without holding the whole stream.

    Text is decoded as it arrives (invalid UTF-8 becomes U+FFFD, as a reader would see
    it), so character counts are exact. About 2.5 * limit characters and one read are held.
    """

    def __init__(self, limit: int):
        self._limit = limit
        self._head_size = limit // 2
        self._tail_size = limit - self._head_size
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._head: str | None = None  # fixed once the stream is known to be cut
        self._tail: list[str] = []
        self._tail_len = 0
        self._total = 0

    def feed(self, data: bytes) -> None:
        self._add(self._decoder.decode(data))

    def result(self) -> tuple[str, bool]:
        """The kept text and whether anything was cut."""
        self._add(self._decoder.decode(b"", final=True))
        text = "".join(self._tail)
        if self._head is None:
            return cap_output(text, self._limit)
        omitted = self._total - self._limit
        # The same shape as cap_output's; tests check the two agree.
        return f"{self._head}\n[... {omitted} characters omitted ...]\n{text[-self._tail_size :]}", True

    def _add(self, text: str) -> None:
        self._total += len(text)
        self._tail.append(text)
        self._tail_len += len(text)
        if self._tail_len > 2 * self._limit:
            self._compact()

    def _compact(self) -> None:
        text = "".join(self._tail)
        if self._head is None:
            self._head, text = text[: self._head_size], text[self._head_size :]
        self._tail = [text[-self._tail_size :]]
        self._tail_len = self._tail_size


def shell_argv(cmd: str | list[str]) -> list[str]:
    """argv for a command: a string is a shell script (bash when the host has it), a list is argv."""
    argv = [SHELL, "-c", cmd] if isinstance(cmd, str) else list(cmd)
    if not argv:
        raise SandboxError("empty command")
    return argv


def command_env(*layers: dict[str, str] | None) -> dict[str, str]:
    """The layers merged, later ones winning, with every name checked."""
    env: dict[str, str] = {}
    for layer in layers:
        env.update(layer or {})
    for name in env:
        if not ENV_NAME.fullmatch(name):
            raise SandboxError(f"invalid environment variable name {name!r}")
    return env


def workdir_in(files: WorkspaceFiles, workdir: str | None) -> Path:
    """The directory a command runs in, relative to the workspace root; symlink-safe."""
    if workdir is None:
        return Path(".")
    host = files.resolve(workdir)
    if not host.is_dir():
        raise SandboxError(f"{workdir}: no such directory in the workspace")
    return host.relative_to(files.root)


def _spawn(argv: list[str], env: dict[str, str], cwd: Path | str, stdin: int = subprocess.DEVNULL
           ) -> subprocess.Popen[bytes]:
    """Start argv as the leader of a new session, so that its process group can be killed."""
    return subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # none left we may signal
        os.killpg(proc.pid, signal.SIGKILL)


def _collect(
    proc: subprocess.Popen[bytes], timeout: float, output_limit: int, started: float, watchdog: Watchdog | None = None
) -> ExecResult:
    """Read the output of a spawned process until it ends or `timeout` passes, then reap it.

    `watchdog`, called a few times a second, returns a reason to kill the command early.
    """
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = OutputCapture(output_limit), OutputCapture(output_limit)
    captures = {proc.stdout.fileno(): stdout, proc.stderr.fileno(): stderr}
    deadline = started + timeout
    timed_out = False
    ended_at: float | None = None
    killed: str | None = None
    watched_at = started
    with selectors.DefaultSelector() as selector:
        for fd in captures:
            selector.register(fd, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if ended_at is None and proc.poll() is not None:
                # Kill leftovers such as `server &`, which would also hold the pipes
                # open. POSIX keeps a group id from reuse while the group has members.
                _kill_group(proc)
                ended_at = now
            elif ended_at is None and now >= deadline:
                _kill_group(proc)
                timed_out = True
                ended_at = now
            elif ended_at is None and watchdog is not None and now - watched_at >= WATCH_INTERVAL:
                watched_at = now
                killed = watchdog()
                if killed:
                    _kill_group(proc)
                    ended_at = now
            if ended_at is not None and (not selector.get_map() or now - ended_at > DRAIN_GRACE):
                break
            if not selector.get_map():
                _wait_briefly(proc)
                continue
            for key, _ in selector.select(timeout=POLL_INTERVAL):
                data = os.read(key.fd, CHUNK)
                if data:
                    captures[key.fd].feed(data)
                else:
                    selector.unregister(key.fd)
    exit_code = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return exec_result(_shell_exit_code(exit_code), stdout, stderr, time.monotonic() - started, timed_out, killed)


def exec_result(
    exit_code: int, stdout: OutputCapture, stderr: OutputCapture, duration: float, timed_out: bool, killed: str | None
) -> ExecResult:
    """The result of a finished command; `killed` says why Shipyard killed it, in its stderr."""
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


class Commands:
    """The commands of one sandbox: run one at a time or several at once, all killed by close()."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._closed = False

    def run(
        self, argv: list[str], env: dict[str, str], cwd: Path | str, timeout: float, output_limit: int,
        watchdog: Watchdog | None = None,
    ) -> ExecResult:
        """Run argv until it ends, times out or `watchdog` gives a reason to kill it; a command that
        cannot start gets a shell's 127/126."""
        started = time.monotonic()
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox is stopped")
            try:
                proc = _spawn(argv, env, cwd)
            except FileNotFoundError as exc:
                return _not_started(127, f"{exc.filename}: {exc.strerror}\n", started)
            except PermissionError as exc:
                return _not_started(126, f"{exc.filename}: {exc.strerror}\n", started)
            self._running.add(proc)
        try:
            return _collect(proc, timeout, output_limit, started, watchdog)
        finally:
            with self._lock:
                self._running.discard(proc)

    def spawn(self, argv: list[str], env: dict[str, str], cwd: Path | str) -> PipeProcess:
        """Start argv with pipes to its stdin and stdout, to run until it is killed (or close() is called)."""
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox is stopped")
            try:
                proc = _spawn(argv, env, cwd, stdin=subprocess.PIPE)
            except OSError as exc:
                raise SandboxError(f"cannot start {argv[0]}: {exc.strerror}") from None
            self._running.add(proc)

        def ended() -> None:
            with self._lock:
                self._running.discard(proc)

        return PipeProcess(proc, ended)

    def close(self) -> None:
        """Refuse new commands and kill those still running (their exec() returns as killed)."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for proc in running:
            _kill_group(proc)


def process_alive(pid: int) -> bool:
    """Whether a process `pid` exists on this host (someone else's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process
    return True


def _wait_briefly(proc: subprocess.Popen[bytes]) -> None:
    # Popen.wait polls with growing sleeps, so an exit right after EOF is seen at once.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=POLL_INTERVAL)


def _shell_exit_code(returncode: int) -> int:
    # Killed by a signal: report 128 + signal as a shell (and bwrap) would.
    return 128 - returncode if returncode < 0 else returncode


def _not_started(code: int, message: str, started: float) -> ExecResult:
    return ExecResult(exit_code=code, stdout="", stderr=message, duration=time.monotonic() - started)
