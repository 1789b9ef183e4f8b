"""Fixtures for the TUI tests: live demo jobs (scripted model over HTTP, real git, bubblewrap) and the
recorded demo job for snapshots (fixed times, ids and shas)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tuikit import Demo, MakeDemo, load_recorded_job

from agents.scripted_model import Script, ScriptedModelServer
from orchestrator.apps.demo import SCRIPT, demo_settings, make_sample_repo
from orchestrator.config.settings import Settings
from orchestrator.runtime.director import Director


@pytest.fixture
def make_demo(tmp_path: Path) -> Iterator[MakeDemo]:
    """Demos on a fresh sample repo, each with its own scripted model server (the demo script by default)."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    made: list[Demo] = []

    def make(script: Script | Path = SCRIPT) -> Demo:
        workdir = tmp_path / f"demo{len(made)}"
        repo = make_sample_repo(workdir / "inventory")
        server = ScriptedModelServer(script).start()
        settings = demo_settings(workdir, server.base_url, "bubblewrap")
        demo = Demo(repo=repo, settings=settings, server=server, runner=Director(settings))
        made.append(demo)
        return demo

    yield make
    for demo in made:
        # Jobs still running must not outlive the test's directories and server.
        for job in demo.runner.list():
            if not job.status.finished:
                demo.runner.cancel(job.id)
        demo.launcher.join()
        demo.server.stop()


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Path]]:
    """The recorded demo job and a few others, with clocks shown in UTC whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield load_recorded_job(tmp_path)
    monkeypatch.undo()
    time.tzset()

