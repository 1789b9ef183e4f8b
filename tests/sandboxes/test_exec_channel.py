"""The exec channel of docker sandboxes (a server kept in the container) against real containers: what
happens when it cannot start, when its server dies under a command, when commands run at once, and when
its container is killed. Exit codes, timeouts and caps on both paths: test_docker_sandbox.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from sandboxes.base import SandboxSpec
from sandboxes.docker_backend import DockerBackend, DockerSandbox

pytestmark = pytest.mark.docker


@pytest.fixture
def spec(tmp_path: Path) -> SandboxSpec:
    (tmp_path / "ws").mkdir()
    return SandboxSpec(workspace=tmp_path / "ws")


@pytest.fixture
def sandbox(client: docker.DockerClient, image: str, spec: SandboxSpec) -> Iterator[DockerSandbox]:
    with DockerBackend(client).start(spec) as sandbox:
        assert sandbox.channel_open
        yield sandbox


def test_an_image_without_the_interpreter_falls_back_to_docker_exec(client: docker.DockerClient, image: str,
                                                                     spec: SandboxSpec) -> None:
    with DockerBackend(client, channel_python="/nonexistent/python3").start(spec) as sandbox:
        assert not sandbox.channel_open
        result = sandbox.exec("echo out; echo err >&2; exit 3")
        assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
        assert sandbox.exec("sleep 30", timeout=1).timed_out


def test_the_server_killed_under_a_command_ends_that_command_and_a_fresh_one_serves_the_next(
        sandbox: DockerSandbox) -> None:
    server = sandbox._channel.server_pid  # type: ignore[union-attr]
    killed = sandbox.exec(f"kill -KILL {server}; sleep 30", timeout=60)
    assert killed.exit_code == 137 and not killed.timed_out
    assert "exec server was killed" in killed.stderr
    after = sandbox.exec("echo alive")
    assert after.ok and after.stdout == "alive\n"
    assert sandbox.channel_open and sandbox._channel.server_pid != server  # type: ignore[union-attr]


def test_commands_at_once_all_run_one_over_the_channel_the_others_as_docker_execs(sandbox: DockerSandbox) -> None:
    results: dict[int, str] = {}

    def run(i: int) -> None:
        results[i] = sandbox.exec(f"sleep 1; echo {i}", timeout=60).stdout

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: f"{i}\n" for i in range(4)}
    assert sandbox.channel_open


def test_a_container_killed_between_commands_is_replaced(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    sandbox.exec("echo kept > kept.txt")
    old = sandbox.name
    client.containers.get(old).kill()
    after = sandbox.exec("cat kept.txt")
    assert after.ok and after.stdout == "kept\n"
    assert sandbox.name != old and sandbox.channel_open


def test_the_output_of_many_commands_stays_in_order(sandbox: DockerSandbox) -> None:
    # Frames of one command never leak into the next one's result.
    for i in range(50):
        result = sandbox.exec(f"seq {i} {i + 2000}; echo e{i} >&2; exit {i % 7}")
        assert result.stdout.split()[0] == str(i) and result.stderr == f"e{i}\n" and result.exit_code == i % 7
