"""The Docker backend against real containers: confinement, limits, I/O and cleanup.

Skipped only when no Docker daemon answers; a missing sandbox image is built.
"""

from __future__ import annotations

import ipaddress
import os
import resource
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import NotFound

from sandboxes import docker_backend
from sandboxes.base import Sandbox, SandboxError, SandboxLimits, SandboxSpec
from sandboxes.docker_backend import DockerBackend, DockerSandbox
from sandboxes.docker_containers import LABEL, OWNER_PID_LABEL, prune_orphans
from sandboxes.image_build import DEFAULT_TAG, IMAGE_DIR, build_image, package_list

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def backend(client: docker.DockerClient, image: str) -> DockerBackend:
    return DockerBackend(client)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "hello.txt").write_text("hello\n")
    return root


@pytest.fixture(params=["channel", "docker-exec"])
def sandbox(request: pytest.FixtureRequest, client: docker.DockerClient, image: str,
            workspace: Path) -> Iterator[DockerSandbox]:
    """Each command over the exec channel, and (its fallback) as a docker exec: the two must not differ."""
    spec = SandboxSpec(
        workspace=workspace,
        limits=SandboxLimits(memory_mb=512, pids=128),
        env={"SPEC_VAR": "spec"},
    )
    backend = DockerBackend(client, channel_python="python3" if request.param == "channel" else None)
    with backend.start(spec) as sandbox:
        assert sandbox.channel_open == (request.param == "channel")
        yield sandbox


def test_availability(backend: DockerBackend) -> None:
    assert backend.availability(DEFAULT_TAG).ok
    missing = backend.availability("shipyard-no-such-image:never")
    assert not missing.ok and "does not exist" in missing.detail


def test_availability_without_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    result = DockerBackend().availability(DEFAULT_TAG)
    assert not result.ok and "start the Docker daemon" in result.detail


def test_build_is_idempotent(image: str) -> None:
    lines: list[str] = []
    started = time.monotonic()
    build_image(image, log=lines.append)
    assert time.monotonic() - started < 60  # nothing was built: a build takes minutes
    assert any("up to date" in line for line in lines)


def test_image_from_the_shared_definition(client: docker.DockerClient, image: str) -> None:
    assert "python3-pytest" in package_list() and "packages.txt" in (IMAGE_DIR / "Dockerfile").read_text()
    config = client.images.get(image).attrs["Config"]
    assert config["User"] == "1000:1000" and config["WorkingDir"] == "/workspace"
    assert "HOME=/tmp/home" in config["Env"]


def test_repo_dockerfile(client: docker.DockerClient, image: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {image}\nRUN python3 -c 'print(1)' > /tmp/marker\nLABEL repo=yes\n")
    tag = f"shipyard-test-repo:{os.getpid()}"
    try:
        image_id = build_image(tag, dockerfile_dir=tmp_path, log=lambda line: None)
        assert client.images.get(tag).id == image_id and client.images.get(tag).labels["repo"] == "yes"
    finally:
        client.images.remove(tag, force=True)


def test_exec_exit_codes_and_streams(sandbox: DockerSandbox) -> None:
    assert isinstance(sandbox, Sandbox)
    result = sandbox.exec("echo out; echo err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok and not result.timed_out
    assert sandbox.exec("true").ok
    # A list is argv: no shell expands or splits it.
    assert sandbox.exec(["printf", "%s|", "a b", "$HOME"]).stdout == "a b|$HOME|"
    assert sandbox.exec("pwd").stdout == "/workspace\n"
    sandbox.exec("mkdir -p sub/dir")
    assert sandbox.exec("pwd", workdir="sub/dir").stdout == "/workspace/sub/dir\n"
    with pytest.raises(SandboxError):
        sandbox.exec("pwd", workdir="missing")


def test_timeout_kills_the_command(sandbox: DockerSandbox) -> None:
    started = time.monotonic()
    result = sandbox.exec("sleep 600 & sleep 600", timeout=2)
    assert time.monotonic() - started < 60  # not its 600 s, however loaded the machine
    assert result.timed_out and result.exit_code == 124
    # The background sleep went with its command.
    assert "sleep 600" not in sandbox.exec(["ps", "-eo", "args"]).stdout.splitlines()


def test_output_keeps_head_and_tail(sandbox: DockerSandbox) -> None:
    limit = sandbox.spec.limits.output_limit
    script = "import sys; print('HEAD' + 'x' * 500_000 + 'TAIL'); print('err', file=sys.stderr)"
    result = sandbox.exec(["python3", "-c", script], timeout=20)
    assert result.truncated
    assert result.stdout.startswith("HEAD") and result.stdout.endswith("TAIL\n")
    assert "characters omitted" in result.stdout and len(result.stdout) < limit + 100
    assert result.stderr == "err\n"


def test_output_flood_stays_small_in_memory(sandbox: DockerSandbox) -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = sandbox.exec("yes", timeout=3)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert result.timed_out and result.truncated
    assert result.stdout.startswith("y\ny\n") and result.stdout.endswith("y\n")
    assert grown_kib < 100_000


def test_files(sandbox: DockerSandbox, workspace: Path) -> None:
    assert sandbox.read_file("hello.txt") == b"hello\n"
    assert sandbox.read_file("/workspace/hello.txt") == b"hello\n"
    sandbox.write_file("pkg/new.py", "x = 1\n")
    assert sorted(sandbox.list_files()) == ["hello.txt", "pkg/new.py"]
    # The sandbox user can edit what the host wrote, in directories the host created...
    assert sandbox.exec("echo y = 2 >> pkg/new.py && touch pkg/more.py").ok
    assert (workspace / "pkg/new.py").read_text() == "x = 1\ny = 2\n"
    # ...and the host can edit what the sandbox wrote.
    assert sandbox.exec("mkdir -p made && echo inside > made/file").ok
    (workspace / "made/file").write_text("changed on the host\n")
    assert sandbox.read_file("made/file") == b"changed on the host\n"


def test_workspace_of_a_user_runs_as_that_user(backend: DockerBackend, workspace: Path) -> None:
    os.chown(workspace, 1234, 1234)
    with backend.start(SandboxSpec(workspace=workspace)) as sandbox:
        assert sandbox.exec("id -u").stdout == "1234\n"
        assert sandbox.exec("echo hi > made && echo more >> hello.txt").ok
    assert (workspace / "made").stat().st_uid == 1234
    assert (workspace / "hello.txt").read_text() == "hello\nmore\n"


def test_symlink_out_of_workspace_is_refused(sandbox: DockerSandbox, workspace: Path) -> None:
    (workspace / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(SandboxError):
        sandbox.read_file("passwd")
    sandbox.exec("ln -s /etc/shadow shadow")
    with pytest.raises(SandboxError):
        sandbox.read_file("shadow")
    with pytest.raises(SandboxError):
        sandbox.write_file("passwd", "root::0:0::/:/bin/sh\n")
    assert not Path("/etc/passwd").read_text().startswith("root::")


def test_no_network(sandbox: DockerSandbox) -> None:
    probe = (
        "import socket, sys\n"
        "for host in sys.argv[1:]:\n"
        "    try:\n"
        "        socket.create_connection((host, 53), timeout=3).close()\n"
        "        print('connected', host)\n"
        "    except OSError as exc:\n"
        "        print('refused', host, exc)\n"
    )
    result = sandbox.exec(
        ["python3", "-c", probe, "1.1.1.1", _bridge_gateway(sandbox._client)],
        timeout=20,
    )
    assert result.ok
    assert "connected" not in result.stdout and result.stdout.count("refused") == 2


def _bridge_gateway(client: docker.DockerClient) -> str:
    """The host's address on Docker's default bridge, where a daemon may list a subnet only."""
    config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    return config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


def test_only_workspace_and_tmp_are_writable(sandbox: DockerSandbox) -> None:
    assert not sandbox.exec("touch /etc/x").ok
    assert not sandbox.exec("touch /usr/x").ok
    assert not sandbox.exec("touch /x").ok
    assert sandbox.exec("touch /tmp/x && touch /workspace/x && touch $HOME/x").ok


def test_non_root(sandbox: DockerSandbox) -> None:
    assert sandbox.exec("id -u").stdout.strip() != "0"
    assert sandbox.exec("grep CapEff /proc/self/status").stdout.split()[1] == "0000000000000000"


def test_fork_bomb_is_contained(sandbox: DockerSandbox) -> None:
    started = time.monotonic()
    # The sleep keeps the command, and so the bomb, going until the timeout.
    result = sandbox.exec(":(){ :|:& };:; sleep 600", timeout=4)
    assert time.monotonic() - started < 60  # not its 600 s
    assert result.timed_out and "Resource temporarily unavailable" in result.stderr
    after = sandbox.exec("echo alive; ps -e | wc -l")
    assert after.ok and after.stdout.startswith("alive\n")
    assert int(after.stdout.split()[1]) < 20


def test_host_deadline_is_a_safety_net(sandbox: DockerSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if the in-container timeout failed: the host gives up, and kills what runs.
    monkeypatch.setattr(docker_backend, "SUPERVISOR", 'exec "$@"')
    monkeypatch.setattr(docker_backend, "HOST_GRACE", 1.0)
    started = time.monotonic()
    result = sandbox.exec("sleep 600", timeout=1)
    assert result.timed_out and time.monotonic() - started < 60  # not its 600 s
    monkeypatch.undo()
    assert "sleep 600" not in sandbox.exec(["ps", "-eo", "args"]).stdout.splitlines()


def test_memory_limit_kills_a_hog(sandbox: DockerSandbox) -> None:
    result = sandbox.exec(["python3", "-c", "bytearray(4 << 30)"], timeout=30)
    assert result.exit_code == 137 and not result.timed_out
    assert sandbox.exec("echo alive").ok


def test_host_environment_stays_out(backend: DockerBackend, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    spec = SandboxSpec(workspace=workspace, env={"SPEC_VAR": "spec", "SHARED": "spec"})
    with backend.start(spec) as sandbox:
        env = sandbox.exec("env", env={"CALL_VAR": "call", "SHARED": "call"}).stdout
    assert "OPENAI_API_KEY" not in env and "sk-host-secret" not in env
    assert "SPEC_VAR=spec\n" in env and "CALL_VAR=call\n" in env and "SHARED=call\n" in env
    assert "HOME=/tmp/home\n" in env and "HOSTNAME" not in env


def test_container_is_confined_and_labelled(
    backend: DockerBackend, workspace: Path, client: docker.DockerClient
) -> None:
    spec = SandboxSpec(
        workspace=workspace,
        labels={"job": "j1"},
        limits=SandboxLimits(memory_mb=256, pids=64),
    )
    with backend.start(spec) as sandbox:
        attrs = client.containers.get(sandbox.name).attrs
    host, labels = attrs["HostConfig"], attrs["Config"]["Labels"]
    assert labels[LABEL] == "1" and labels[OWNER_PID_LABEL] == str(os.getpid()) and labels["shipyard.job"] == "j1"
    assert host["Memory"] == host["MemorySwap"] == 256 << 20
    assert host["PidsLimit"] == 64 and host["NetworkMode"] == "none" and host["ReadonlyRootfs"]
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"] and host["Init"]


def test_stop_is_idempotent(backend: DockerBackend, workspace: Path, client: docker.DockerClient) -> None:
    sandbox = backend.start(SandboxSpec(workspace=workspace))
    sandbox.stop()
    sandbox.stop()
    with pytest.raises(NotFound):
        client.containers.get(sandbox.name)
    with pytest.raises(SandboxError):
        sandbox.exec("true")


def test_orphans_are_pruned(sandbox: DockerSandbox, client: docker.DockerClient, image: str) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = client.containers.run(
        image,
        ["sleep", "infinity"],
        detach=True,
        network_mode="none",
        labels={LABEL: "1", OWNER_PID_LABEL: str(dead.pid)},
    )
    try:
        pruned = prune_orphans(client)
        assert orphan.name in pruned and sandbox.name not in pruned
        with pytest.raises(NotFound):
            client.containers.get(orphan.name)
        assert sandbox.exec("true").ok
    finally:
        try:
            orphan.remove(force=True)
        except NotFound:
            pass
