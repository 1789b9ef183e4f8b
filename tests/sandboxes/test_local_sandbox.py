"""The local backend (no isolation) and the process running it shares with bubblewrap."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxes.base import BASE_ENV, SandboxError, SandboxLimits, SandboxSpec, cap_output
from sandboxes.local import LocalBackend, LocalSandbox
from sandboxes.process import OutputCapture


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.fixture
def sandbox(workspace: Path) -> Iterator[LocalSandbox]:
    with LocalBackend().start(SandboxSpec(workspace=workspace, limits=SandboxLimits(output_limit=1000))) as started:
        yield started


def test_start_warns_that_there_is_no_isolation(workspace: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sandboxes.local"):
        LocalBackend().start(SandboxSpec(workspace=workspace)).stop()
    assert "NO ISOLATION" in caplog.text
    assert LocalBackend().availability("ignored").ok


def test_exec_in_workspace(sandbox: LocalSandbox, workspace: Path) -> None:
    result = sandbox.exec("pwd; echo err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, f"{workspace}\n", "err\n")
    (workspace / "sub").mkdir()
    assert sandbox.exec(["pwd"], workdir="sub").stdout == f"{workspace / 'sub'}\n"
    assert sandbox.exec(["no-such-command-xyz"]).exit_code == 127
    with pytest.raises(SandboxError):
        sandbox.exec("pwd", workdir="..")


@pytest.mark.parametrize("cmd", ["sleep 600", "trap '' TERM; sleep 600"])
def test_timeout_kills_the_process_group(sandbox: LocalSandbox, cmd: str) -> None:
    started = time.monotonic()
    result = sandbox.exec(cmd, timeout=1)
    assert result.timed_out and result.exit_code == 124
    assert time.monotonic() - started < 60  # not its 600 s, however loaded the machine


def test_background_processes_do_not_outlive_the_command(sandbox: LocalSandbox) -> None:
    started = time.monotonic()
    result = sandbox.exec("sleep 600 & echo $!")
    assert result.ok and time.monotonic() - started < 60  # the command did not wait for its 600 s child
    stat = Path(f"/proc/{int(result.stdout)}/stat")
    time.sleep(0.1)
    # Gone, or a zombie waiting for an init that reaps slowly (as in some containers).
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_environment_is_minimal(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    with LocalBackend().start(SandboxSpec(workspace=workspace, env={"FROM_SPEC": "1"})) as sandbox:
        result = sandbox.exec(["env"], env={"FROM_CALL": "2"})
        seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
        home = Path(seen["HOME"])
        assert seen == {**BASE_ENV, "HOME": str(home), "FROM_SPEC": "1", "FROM_CALL": "2"}
        assert home.is_dir() and home != Path.home()
    assert not home.exists()


def test_output_capped(sandbox: LocalSandbox) -> None:
    result = sandbox.exec("seq 1 100000")
    assert result.truncated
    assert result.stdout == cap_output("".join(f"{i}\n" for i in range(1, 100001)), 1000)[0]


@pytest.mark.parametrize("size", [0, 999, 1000, 1001, 2001, 2500, 50_000])
def test_capture_agrees_with_cap_output(size: int) -> None:
    text = "".join(chr(0x41 + i % 26) if i % 7 else "é" for i in range(size))
    capture = OutputCapture(1000)
    data = text.encode()
    for start in range(0, len(data), 333):  # chunk borders split UTF-8 sequences
        capture.feed(data[start : start + 333])
    assert capture.result() == cap_output(text, 1000)
