"""Sandbox.spawn on every backend: a long-lived process with pipes, confined as exec's commands are,
with exactly the sandbox's environment, ended by EOF, by kill or by the sandbox's stop."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxes.base import Sandbox, SandboxError, SandboxProcess, SandboxSpec
from sandboxes.bubblewrap import BubblewrapBackend
from sandboxes.docker_backend import DockerBackend
from sandboxes.local import LocalBackend
from sandboxes.spawned import STDERR_TAIL_CHARS

# Answers each line in capitals, once it has said where it runs and what its environment holds.
ECHO = """import os, sys
print(os.getcwd(), os.environ.get("SPEC_VAR"), os.environ.get("HOST_SECRET"), flush=True)
print("started", file=sys.stderr, flush=True)
for line in sys.stdin:
    print(line.strip().upper(), flush=True)
print("stdin ended", file=sys.stderr, flush=True)
"""


@pytest.fixture(params=["local", pytest.param("bubblewrap", marks=pytest.mark.bubblewrap),
                        pytest.param("docker", marks=pytest.mark.docker)])
def sandbox(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("HOST_SECRET", "never inside")
    if request.param == "bubblewrap" and shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    if request.param == "docker":
        backend = DockerBackend()
        found = backend.availability()
        if not found.ok:
            pytest.skip(f"docker does not work here: {found.detail}")
    else:
        backend = BubblewrapBackend() if request.param == "bubblewrap" else LocalBackend()
    workspace = tmp_path / "ws"
    (workspace / "sub").mkdir(parents=True)
    with backend.start(SandboxSpec(workspace=workspace, env={"SPEC_VAR": "spec"})) as box:
        yield box


def read_lines(process: SandboxProcess, count: int) -> list[str]:
    data = b""
    while data.count(b"\n") < count:
        chunk = process.read()
        assert chunk, f"stdout ended after {data!r}"
        data += chunk
    return data.decode().splitlines()


def wait_for(process: SandboxProcess, deadline: float = 30) -> int:
    code = process.wait(deadline)
    assert code is not None, "the process did not end"
    return code


def test_a_spawned_process_talks_over_its_pipes_until_its_input_ends(sandbox: Sandbox) -> None:
    process = sandbox.spawn(["python3", "-c", ECHO], env={"EXTRA": "1"}, workdir="sub")
    process.write(b"hello\nworld\n")
    where, *answers = read_lines(process, 3)
    assert answers == ["HELLO", "WORLD"]
    cwd, spec_var, secret = where.split(" ")
    assert cwd.endswith("/sub") and spec_var == "spec" and secret == "None"
    process.close_stdin()
    assert wait_for(process) == 0
    assert process.read() == b""
    assert "started" in process.stderr
    process.kill()  # after the end: nothing to do, and no error


def test_kill_ends_a_process_that_does_not_read_its_input(sandbox: Sandbox) -> None:
    process = sandbox.spawn(["sleep", "600"])
    assert process.wait(0.2) is None  # still running
    process.kill()
    assert wait_for(process) == 137
    assert process.read() == b""
    process.kill()


def test_stopping_the_sandbox_ends_its_processes(sandbox: Sandbox) -> None:
    process = sandbox.spawn(["sleep", "600"])
    sandbox.stop()
    assert process.read() == b""  # its output ended: it is gone
    with pytest.raises(SandboxError):
        sandbox.spawn(["true"])


def test_stderr_keeps_only_its_end(sandbox: Sandbox) -> None:
    script = "import sys; sys.stderr.write('x' * 100000 + 'the end'); sys.stderr.flush(); print('done', flush=True)"
    process = sandbox.spawn(["python3", "-c", script])
    assert read_lines(process, 1) == ["done"]
    deadline = time.monotonic() + 30
    while not process.stderr.endswith("the end"):  # stderr is read beside stdout
        assert time.monotonic() < deadline, process.stderr[-100:]
        process.read()
    assert len(process.stderr) == STDERR_TAIL_CHARS
    process.kill()


def test_a_command_that_cannot_run_says_why(sandbox: Sandbox) -> None:
    try:
        process = sandbox.spawn(["no-such-program-here"])
    except SandboxError as exc:  # the local backend finds out at once
        assert "no-such-program-here" in str(exc)
        return
    assert process.read() == b"" and wait_for(process) != 0
    assert "no-such-program-here" in process.stderr
