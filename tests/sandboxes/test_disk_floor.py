"""A disk below the free-space floor: no sandbox starts, whatever the backend, and it says so in one line."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import docker
import pytest

from sandboxes.base import SandboxError, SandboxLimits, SandboxSpec, check_disk
from sandboxes.bubblewrap import BubblewrapBackend
from sandboxes.docker_backend import DockerBackend
from sandboxes.docker_containers import OWNER_PID_LABEL
from sandboxes.local import LocalBackend


def above_free(path: Path) -> SandboxLimits:
    """Limits whose floor is 1 GB above what the disk holding `path` has free now."""
    return SandboxLimits(min_free_mb=(shutil.disk_usage(path).free >> 20) + 1024)


def refusal(workspace: Path, limits: SandboxLimits) -> str:
    return (
        rf"the disk holding {re.escape(str(workspace))} has \d+ MB free, less than the {limits.min_free_mb} MB "
        r"a sandbox keeps free \(sandbox\.limits\.min_free_mb\): free some space on it, then start again"
    )


def test_check_disk_is_quiet_with_room_and_refuses_below_the_floor(tmp_path: Path) -> None:
    check_disk(tmp_path, SandboxLimits(min_free_mb=1))
    check_disk(tmp_path, SandboxLimits(min_free_mb=0))
    limits = above_free(tmp_path)
    with pytest.raises(SandboxError, match=f"^{refusal(tmp_path, limits)}$"):
        check_disk(tmp_path, limits)


def test_local_does_not_start(tmp_path: Path) -> None:
    limits = above_free(tmp_path)
    with pytest.raises(SandboxError, match=f"^{refusal(tmp_path, limits)}$"):
        LocalBackend().start(SandboxSpec(workspace=tmp_path, limits=limits))


@pytest.mark.bubblewrap
def test_bubblewrap_does_not_start(tmp_path: Path) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    limits = above_free(tmp_path)
    with pytest.raises(SandboxError, match=f"^{refusal(tmp_path, limits)}$"):
        BubblewrapBackend().start(SandboxSpec(workspace=tmp_path, limits=limits))


@pytest.mark.docker
def test_docker_does_not_start_nor_create_a_container(client: docker.DockerClient, image: str, tmp_path: Path) -> None:
    ours = {"label": f"{OWNER_PID_LABEL}={os.getpid()}"}
    before = {c.id for c in client.containers.list(all=True, filters=ours)}
    limits = above_free(tmp_path)

    with pytest.raises(SandboxError, match=f"^{refusal(tmp_path, limits)}$"):
        DockerBackend(client).start(SandboxSpec(workspace=tmp_path, limits=limits))

    assert {c.id for c in client.containers.list(all=True, filters=ours)} == before
