"""`shipyard demo` as a new user runs it: the console script, real sandboxes, the scripted model."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import git

from sandboxes.docker_backend import DockerBackend


def _run_demo(tmp_path: Path, backend: str) -> None:
    shipyard = shutil.which("shipyard")
    assert shipyard, "the shipyard console script is not installed (pip install -e .)"
    result = subprocess.run([shipyard, "demo", "--dir", str(tmp_path / "demo"), "--backend", backend],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "scripted model" in result.stdout
    assert "succeeded" in result.stdout
    repo = tmp_path / "demo" / "inventory"
    job_branch = next(b for b in git(repo, "branch", "--list", "shipyard/*").split() if "--" not in b)
    check = tmp_path / "check"
    git(repo, "worktree", "add", "-q", str(check), job_branch)
    tests = subprocess.run(["python3", "-m", "pytest", "-q"], cwd=check, capture_output=True, text=True)
    assert tests.returncode == 0 and "5 passed" in tests.stdout, tests.stdout


@pytest.mark.docker
def test_demo_in_docker(tmp_path: Path) -> None:
    found = DockerBackend().availability("shipyard-sandbox:latest")
    if not found.ok:
        pytest.skip(found.detail)
    _run_demo(tmp_path, "docker")


@pytest.mark.bubblewrap
def test_demo_in_bubblewrap(tmp_path: Path, sandbox_backend: str) -> None:
    _run_demo(tmp_path, sandbox_backend)
