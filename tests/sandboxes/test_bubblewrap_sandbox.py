"""The bubblewrap backend against real bwrap: isolation, limits, timeouts, output, files."""

from __future__ import annotations

import functools
import glob
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandboxes.base import BASE_ENV, SandboxError, SandboxLimits, SandboxSpec, cap_output
from sandboxes.bubblewrap import (
    PROBE_ATTEMPTS,
    BubblewrapBackend,
    BubblewrapSandbox,
    _CgroupLimiter,
    prune_orphaned_cgroups,
)

pytestmark = [
    pytest.mark.bubblewrap,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed"),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
CGROUP_GLOBS = ("/sys/fs/cgroup/*/shipyard/{}", "/sys/fs/cgroup/shipyard/{}")

MakeSandbox = Callable[..., BubblewrapSandbox]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.fixture
def make_sandbox(workspace: Path) -> Iterator[MakeSandbox]:
    """Start sandboxes on `workspace` with the given limits and spec fields; all stopped afterwards."""
    started: list[BubblewrapSandbox] = []

    def make(backend: BubblewrapBackend | None = None, network: bool = False, **limits: Any) -> BubblewrapSandbox:
        spec = SandboxSpec(workspace=workspace, network=network, limits=SandboxLimits(**limits))
        sandbox = (backend or BubblewrapBackend()).start(spec)
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> BubblewrapSandbox:
    return make_sandbox()


@pytest.fixture
def host_server() -> Iterator[int]:
    """A TCP server on the host's 127.0.0.1 that accepts connections; yields its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def connect_script(host: str, port: int) -> list[str]:
    code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=3); print('connected')"
    return ["python3", "-c", code]


def test_available() -> None:
    found = BubblewrapBackend().availability("ignored")
    assert found.ok, found.detail
    assert "bubblewrap" in found.detail


def test_unavailable_without_bwrap_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    found = BubblewrapBackend().availability("ignored")
    assert not found.ok and "apt-get install bubblewrap" in found.detail


def flaky_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failures: int) -> Path:
    """Put first on PATH a `bwrap` that refuses its first `failures` sandboxes, as a busy machine can, and
    is the real one after; returns the file that counts the sandboxes asked for, one line each."""
    real = shutil.which("bwrap")
    count = tmp_path / "sandboxes-asked"
    count.touch()
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'case "$1" in --version|--help) exec "{real}" "$@";; esac\n'
        f'echo asked >> "{count}"\n'
        f'if [ "$(wc -l < "{count}")" -le {failures} ]; then\n'
        '  echo "bwrap: Creating new namespace failed: Resource temporarily unavailable" >&2; exit 1\n'
        "fi\n"
        f'exec "{real}" "$@"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.setattr("sandboxes.bubblewrap.PROBE_BACKOFF_S", 0.01)
    return count


def test_availability_survives_a_sandbox_refused_once_and_is_not_asked_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked = flaky_bwrap(monkeypatch, tmp_path, failures=1)
    backend = BubblewrapBackend()
    assert backend.availability().ok
    assert backend.availability().ok
    assert len(asked.read_text().splitlines()) == 2  # refused, then started; the second call was remembered


def test_availability_says_why_when_every_try_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    asked = flaky_bwrap(monkeypatch, tmp_path, failures=99)
    found = BubblewrapBackend().availability()
    assert not found.ok
    assert "Creating new namespace failed: Resource temporarily unavailable" in found.detail
    assert len(asked.read_text().splitlines()) == PROBE_ATTEMPTS


def test_exit_codes(sandbox: BubblewrapSandbox) -> None:
    assert sandbox.exec("exit 3").exit_code == 3
    assert sandbox.exec(["true"]).ok
    assert sandbox.exec(["false"]).exit_code == 1
    assert sandbox.exec("kill -9 $$").exit_code == 137


def test_stdout_and_stderr_apart(sandbox: BubblewrapSandbox) -> None:
    result = sandbox.exec("echo out; echo err >&2")
    assert (result.stdout, result.stderr) == ("out\n", "err\n")


def test_workspace_is_cwd_and_files_belong_to_host_user(sandbox: BubblewrapSandbox, workspace: Path) -> None:
    result = sandbox.exec("pwd; echo made > made.txt; mkdir sub")
    assert result.stdout == "/workspace\n"
    made = workspace / "made.txt"
    assert made.read_text() == "made\n"
    assert (made.stat().st_uid, made.stat().st_gid) == (os.getuid(), os.getgid())
    assert sandbox.exec("pwd", workdir="sub").stdout == "/workspace/sub\n"
    assert sandbox.exec("pwd", workdir="/workspace/sub").stdout == "/workspace/sub\n"
    with pytest.raises(SandboxError):
        sandbox.exec("pwd", workdir="..")


# Each sleeps for its own number of seconds, to be told apart from other tests' sleeps.
@pytest.mark.parametrize(
    "cmd, seconds", [("sleep 611", 611), ("trap '' TERM; sleep 612", 612), ("sleep 613 & sleep 613 & wait", 613)]
)
def test_timeout_kills_everything(sandbox: BubblewrapSandbox, cmd: str, seconds: int) -> None:
    started = time.monotonic()
    result = sandbox.exec(cmd, timeout=2)
    assert result.timed_out and not result.ok
    assert result.exit_code == 124
    assert time.monotonic() - started < 60  # killed at its timeout, however loaded the machine
    # Killed at once; the kernel may take a moment to tear the pid namespace down.
    assert _wait_until(lambda: not _processes_with(f"sleep\x00{seconds}".encode()), 1)


def test_output_keeps_head_and_tail(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(output_limit=1000)
    result = sandbox.exec("seq 1 100000; echo done >&2")
    assert result.truncated
    assert result.stdout == cap_output("".join(f"{i}\n" for i in range(1, 100001)), 1000)[0]
    assert result.stdout.startswith("1\n2\n3\n") and result.stdout.endswith("99999\n100000\n")
    assert result.stderr == "done\n"


def test_output_flood_is_read_in_bounded_memory(sandbox: BubblewrapSandbox) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = sandbox.exec("yes", timeout=3)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.timed_out and result.truncated
    assert result.stdout.startswith("y\ny\n") and result.stdout.endswith("y\n")
    assert len(result.stdout) < sandbox.spec.limits.output_limit + 100
    assert grown_kib < 100_000


def test_files_host_side_and_inside(sandbox: BubblewrapSandbox) -> None:
    sandbox.write_file("dir/a.txt", "hello")
    assert sandbox.exec("cat dir/a.txt").stdout == "hello"
    wrote = sandbox.exec("echo inside > b.txt")
    assert wrote.ok, wrote
    assert sandbox.read_file("b.txt") == b"inside\n"
    assert sandbox.read_file("/workspace/dir/a.txt") == b"hello"
    assert sandbox.list_files() == ["b.txt", "dir/a.txt"]


def test_symlink_out_of_workspace_refused(sandbox: BubblewrapSandbox, workspace: Path) -> None:
    (workspace / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(SandboxError):
        sandbox.read_file("passwd")
    with pytest.raises(SandboxError):
        sandbox.write_file("passwd", "root::0:0::/root:/bin/sh\n")
    assert "root::0:0" not in Path("/etc/passwd").read_text()


def test_no_network(sandbox: BubblewrapSandbox, host_server: int) -> None:
    for host, port in [("1.1.1.1", 53), ("127.0.0.1", host_server)]:
        result = sandbox.exec(connect_script(host, port), timeout=20)
        assert not result.ok and "connected" not in result.stdout, (host, result)


def test_network_when_allowed(make_sandbox: MakeSandbox, host_server: int) -> None:
    sandbox = make_sandbox(network=True)
    result = sandbox.exec(connect_script("127.0.0.1", host_server), timeout=20)
    assert result.ok and result.stdout == "connected\n", result


def test_host_read_only_and_scratch_writable(sandbox: BubblewrapSandbox) -> None:
    for path in ["/etc/x", "/usr/x", "/x", "/var/x", "/dev/x", "/root/x"]:
        result = sandbox.exec(["touch", path])
        assert result.exit_code != 0 and "Read-only" in result.stderr, (path, result)
    assert sandbox.exec("touch /tmp/x /var/tmp/x /dev/shm/x $HOME/x").ok
    # Scratch space lasts one command; only the workspace persists.
    assert not sandbox.exec("test -e /tmp/x").ok


def test_host_secrets_hidden(sandbox: BubblewrapSandbox) -> None:
    assert sandbox.exec("ls -A /root /home /run").stdout == "/home:\n\n/root:\n\n/run:\n"
    assert not sandbox.exec("cat /etc/shadow").ok
    assert not sandbox.exec("test -e /var/run/docker.sock || test -e /run/docker.sock").ok
    caps = sandbox.exec("grep CapEff /proc/self/status").stdout
    assert caps.split() == ["CapEff:", "0000000000000000"]


def test_fork_bomb_contained(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(pids=64)
    # The sleep keeps the command, and the bomb, alive. The marker tells its processes from
    # those of a bomb another test (Docker's, the adversarial one) runs on the host meanwhile.
    bomb = f":(){{ :|:& }};:; sleep 600 # {uuid.uuid4().hex}"
    results = []
    runner = threading.Thread(target=lambda: results.append(sandbox.exec(bomb, timeout=8)))
    started = time.monotonic()
    runner.start()
    peak = 0
    while runner.is_alive():
        # Every fork of the bomb's shell carries its command line, as do the two bwraps.
        peak = max(peak, len(_processes_with(bomb.encode())))
        time.sleep(0.05)
    assert time.monotonic() - started < 60  # killed at its timeout, not after its 600 s sleep
    assert not results[0].ok
    # A cgroup is exact (bwrap is in it too); the rlimit fallback allows `pids` more
    # processes than the user had when the command started, some of them since gone.
    assert 32 < peak <= (64 if sandbox.limits_detail.startswith("limits: cgroup") else 2 * 64), peak
    assert _wait_until(lambda: not _processes_with(bomb.encode()), 2)
    assert sandbox.exec("echo ok").stdout == "ok\n"


def test_memory_limit(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(memory_mb=512)
    result = sandbox.exec(["python3", "-c", "b = bytearray(4 << 30); print('allocated')"], timeout=30)
    assert not result.ok and "allocated" not in result.stdout
    assert sandbox.exec(["python3", "-c", "b = bytearray(64 << 20); print('allocated')"]).stdout == "allocated\n"


def test_memory_limit_without_cgroups(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(backend=BubblewrapBackend(use_cgroups=False), memory_mb=512)
    assert "best-effort" in sandbox.limits_detail
    result = sandbox.exec(["python3", "-c", "b = bytearray(4 << 30); print('allocated')"], timeout=30)
    assert not result.ok and "MemoryError" in result.stderr


def test_environment_is_exactly_base_spec_and_call(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    spec = SandboxSpec(workspace=workspace, env={"FROM_SPEC": "1", "LANG": "en_US.UTF-8"})
    with BubblewrapBackend().start(spec) as sandbox:
        result = sandbox.exec(["env"], env={"FROM_CALL": "2"})
        seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
        # PWD is bwrap's doing (--chdir), as a shell would set it.
        expected = {**BASE_ENV, "FROM_SPEC": "1", "LANG": "en_US.UTF-8", "FROM_CALL": "2", "PWD": "/workspace"}
        assert seen == expected
        assert "sk-host-secret" not in sandbox.exec("cat /proc/*/environ | tr '\\0' '\\n'").stdout
        with pytest.raises(SandboxError):
            sandbox.exec("true", env={"BAD=NAME": "x"})


def test_sandbox_dies_with_its_parent(workspace: Path) -> None:
    child_code = (
        "import sys; from pathlib import Path; "
        "from sandboxes.base import SandboxSpec; from sandboxes.bubblewrap import BubblewrapBackend; "
        "BubblewrapBackend().start(SandboxSpec(workspace=Path(sys.argv[1]))).exec('sleep 621.5')"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", child_code, str(workspace)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert _wait_until(lambda: bool(_processes_with(b"sleep\x00621.5")), 10), "the sandboxed sleep never started"
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert _wait_until(lambda: not _processes_with(b"sleep\x00621.5"), 5), "the sandbox outlived its parent"
    finally:
        child.kill()
        child.wait()
        # Killed before it could stop its sandbox: remove the (empty) cgroups it left.
        for pattern in CGROUP_GLOBS:
            for path in glob.glob(pattern.format(f"{child.pid}-*")):
                _wait_until(functools.partial(_rmdir, path), 5)


def test_stop_kills_running_commands_and_is_idempotent(sandbox: BubblewrapSandbox) -> None:
    cgroups = [path for pattern in CGROUP_GLOBS for path in glob.glob(pattern.format(sandbox.name))]
    if sandbox.limits_detail.startswith("limits: cgroup"):
        assert cgroups
    results = []
    runner = threading.Thread(target=lambda: results.append(sandbox.exec("sleep 614")))
    runner.start()
    assert _wait_until(lambda: bool(_processes_with(b"sleep\x00614")), 5)
    sandbox.stop()
    runner.join(5)
    assert not runner.is_alive() and not results[0].ok
    sandbox.stop()
    assert not any(os.path.exists(path) for path in cgroups)
    with pytest.raises(SandboxError):
        sandbox.exec("true")


def test_cgroup_v2_settings(tmp_path: Path) -> None:
    """The v2 layout on a stand-in directory (this kind of machine may only have v1)."""
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    limits = SandboxLimits(memory_mb=512, pids=64, cpus=1.5)
    limiter = _CgroupLimiter.create("123-abc", limits, root=tmp_path)
    group = tmp_path / "shipyard" / "123-abc"
    assert limiter.detail == "limits: cgroup v2 (memory, pids, cpu)"
    assert (group / "memory.max").read_text() == str(512 << 20)
    assert (group / "pids.max").read_text() == "64"
    assert (group / "cpu.max").read_text() == "150000 100000"
    assert limiter.wrap(["bwrap"])[-1] == "bwrap"
    assert str(group / "cgroup.procs") in limiter.wrap(["bwrap"])


def test_prune_orphaned_cgroups(tmp_path: Path) -> None:
    """Empty cgroups of dead Shipyard processes go; those of live ones stay (on a stand-in tree)."""
    dead = tmp_path / "pids" / "shipyard" / "999999999-abc"  # beyond any pid_max
    live = tmp_path / "memory" / "shipyard" / f"{os.getpid()}-def"
    dead_v2 = tmp_path / "shipyard" / "999999999-ghi"
    for group in (dead, live, dead_v2):
        group.mkdir(parents=True)
    assert sorted(prune_orphaned_cgroups(tmp_path)) == sorted([str(dead), str(dead_v2)])
    assert live.is_dir() and not dead.exists() and not dead_v2.exists()


def _processes_with(needle: bytes) -> list[int]:
    """Host pids whose command line contains `needle` (arguments NUL-separated)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmdline:
                found.append(int(entry.name))
    return found


def _wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _rmdir(path: str) -> bool:
    try:
        os.rmdir(path)
    except OSError:
        return False
    return True
