"""Resource abuse in a sandbox: each is contained, the agent is told what happened, and the host and
another agent's sandbox keep working meanwhile."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import Bystander, can_mount, fill_disk, make_backend, small_filesystem

from agents.tools import ToolObservation, Toolset
from sandboxes.base import DiskWatch, Sandbox, SandboxLimits, SandboxSpec

# Seconds within which a command cut off by a limit has ended, however loaded the machine: far less than it
# would run if nothing cut it off (minutes, or forever), so that only a limit not enforced goes over it.
KILLED_WITHIN = 90

LIMITS = SandboxLimits(memory_mb=256, pids=64, tmp_mb=64, cpus=1.0, exec_timeout=4)


@pytest.fixture
def bystander(backend_name: str, tmp_path: Path) -> Iterator[Sandbox]:
    workspace = tmp_path / "bystander"
    workspace.mkdir()
    with make_backend(backend_name).start(SandboxSpec(workspace=workspace, limits=LIMITS)) as sandbox:
        yield sandbox


@pytest.fixture
def abuser(backend_name: str, tmp_path: Path) -> Iterator[Toolset]:
    workspace = tmp_path / "abuser"
    workspace.mkdir()
    with make_backend(backend_name).start(SandboxSpec(workspace=workspace, limits=LIMITS)) as sandbox:
        yield Toolset(sandbox)


def abuse(tools: Toolset, bystander: Sandbox, command: str, timeout: float | None = None,
          ) -> tuple[ToolObservation, float]:
    """Run `command` through the agent's run_command tool while the bystander is watched."""
    with Bystander(bystander) as watched:
        started = time.monotonic()
        arguments = {"command": command} | ({"timeout": timeout} if timeout else {})
        observation = tools.call("run_command", arguments)
        seconds = time.monotonic() - started
    assert watched.problems() == [], watched.latencies
    assert observation.ok, observation.text  # the tool did its job; what the command did is in the text
    assert len(observation.text) <= tools.limits.max_output_chars + 200
    # The sandbox itself survives its abuse.
    after = tools.sandbox.exec("echo ok", timeout=30)
    assert after.stdout == "ok\n", after
    return observation, seconds


def test_fork_bomb(abuser: Toolset, bystander: Sandbox) -> None:
    observation, seconds = abuse(abuser, bystander, ":(){ :|:& };:; sleep 600", timeout=6)
    assert seconds < KILLED_WITHIN, seconds  # not the 600 s of its sleep
    assert observation.text.startswith("timed out after 6 s (the command was killed)"), observation.text[:300]


def test_memory_hog(abuser: Toolset, bystander: Sandbox) -> None:
    observation, seconds = abuse(abuser, bystander, "python3 -c \"b = bytearray(3 << 30); print('allocated')\"",
                                 timeout=30)
    assert "allocated" not in observation.text
    text = observation.text
    assert "more than the sandbox's 256 MB of memory" in text or "MemoryError" in text, text[:500]


def test_disk_fill_of_tmp(abuser: Toolset, bystander: Sandbox) -> None:
    observation, _ = abuse(abuser, bystander, "dd if=/dev/zero of=/tmp/fill bs=1M count=4096", timeout=60)
    assert "No space left on device" in observation.text, observation.text[:500]
    assert abuser.sandbox.exec("df -m /tmp | tail -1").ok


@pytest.mark.skipif(not can_mount(), reason="needs root to mount a small file system")
@pytest.mark.parametrize("command", [
    "dd if=/dev/zero of=fill bs=1M count=100000",
    "i=0; while :; do i=$((i+1)); head -c 8388608 /dev/zero > fill$i || exit 1; done",
], ids=["one-file", "many-files"])
def test_disk_fill_of_the_workspace(backend_name: str, bystander: Sandbox, tmp_path: Path, command: str) -> None:
    """The workspace is a host directory: filling it fills the host's disk. Here the "disk" is a
    384 MB file system; the command is killed while about 256 MB are still free for Shipyard and others."""
    limits = LIMITS.model_copy(update={"min_free_mb": 256})
    with small_filesystem(tmp_path / "disk", 384) as disk:
        (disk / "ws").mkdir()
        with make_backend(backend_name).start(SandboxSpec(workspace=disk / "ws", limits=limits)) as sandbox:
            tools = Toolset(sandbox)
            observation, seconds = abuse(tools, bystander, command, timeout=600)
            assert seconds < KILLED_WITHIN, seconds  # killed by the disk watch, not the timeout
            assert "less than the 256 MB kept free" in observation.text, observation.text[-500:]
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize >> 20
            assert free > 100, free
            # The agent can clean up after itself, and work again.
            cleaned = tools.call("run_command", {"command": "rm -f fill*; echo cleaned"})
            assert "cleaned" in cleaned.text and "[shipyard" not in cleaned.text, cleaned.text


@pytest.mark.skipif(not can_mount(), reason="needs root to mount a small file system")
def test_the_disk_watch_spares_a_clean_up_while_others_write_a_little(tmp_path: Path) -> None:
    """The race seen under load: a clean-up starts on a disk below the floor, and before the space it frees
    shows, other writers take a little more. Only a command that keeps filling the disk is killed."""
    with small_filesystem(tmp_path / "disk", 64) as disk:
        ballast = fill_disk(disk, leave_bytes=8 << 20)  # 8 MB free: below a 32 MB floor
        watch = DiskWatch(disk, 32)  # the clean-up command starts now
        (disk / "state.db").write_bytes(b"\0" * (1 << 20))  # Shipyard's own state, meanwhile
        os.sync()
        assert watch() is None, "a clean-up is not killed for what others wrote"
        ballast.unlink()
        assert watch() is None
        filler = DiskWatch(disk, 32)
        fill_disk(disk, leave_bytes=8 << 20)
        os.sync()
        assert "less than the 32 MB kept free" in (filler() or ""), "a command filling the disk is killed"


def test_a_process_ignoring_sigterm(abuser: Toolset, bystander: Sandbox) -> None:
    observation, seconds = abuse(abuser, bystander, "trap '' TERM INT HUP; while :; do sleep 1; done", timeout=3)
    assert observation.text.startswith("timed out after 3 s (the command was killed)"), observation.text[:300]
    assert seconds < KILLED_WITHIN, seconds
    # One left behind in the background, ignoring SIGTERM too, does not outlive its command.
    observation, _ = abuse(abuser, bystander, "(trap '' TERM INT HUP; exec sleep 300) & echo started")
    assert "started" in observation.text
    left = abuser.sandbox.exec("for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done | grep -c '^sleep 300'")
    assert left.stdout.strip() == "0", left


def test_a_command_that_never_ends(abuser: Toolset, bystander: Sandbox) -> None:
    # No timeout given: the sandbox's default (4 s here) applies.
    observation, seconds = abuse(abuser, bystander, "while :; do :; done")
    assert observation.text.startswith("timed out after 4 s (the command was killed)"), observation.text[:300]
    assert seconds < KILLED_WITHIN, seconds


@pytest.mark.parametrize("command", ["yes 'flood flood flood'", "head -c 300000000 /dev/zero | tr '\\0' x"],
                         ids=["endless", "300MB"])
def test_output_flood(abuser: Toolset, bystander: Sandbox, command: str) -> None:
    observation, seconds = abuse(abuser, bystander, command, timeout=3)
    assert "characters omitted" in observation.text, observation.text[:300]
    assert seconds < KILLED_WITHIN, seconds
