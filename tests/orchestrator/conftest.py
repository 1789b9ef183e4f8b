"""Real jobs for the orchestrator tests: real git repos, real sandboxes, the scripted model over HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ScriptedJobs


@pytest.fixture
def sandbox_backend() -> str:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    return "bubblewrap"


@pytest.fixture
def scripted_jobs(tmp_path: Path, sandbox_backend: str) -> Iterator[ScriptedJobs]:
    jobs = ScriptedJobs(tmp_path, sandbox_backend)
    yield jobs
    jobs.close()
