"""Crash test: SIGKILL `shipyard run` in the middle of the fan-out, then `shipyard resume`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import git

from agents.scripted_model import ScriptedModelServer
from orchestrator.apps.demo import INSTRUCTION, SCRIPT, make_sample_repo
from orchestrator.config.settings import load_settings
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import JobStatus

pytestmark = pytest.mark.bubblewrap


def _slow_first_steps() -> dict:
    """The demo script, with the first coder answers of s2 and s3 slow enough to be killed during."""
    script = yaml.safe_load(SCRIPT.read_text())
    for sub in ("s2", "s3"):
        first = next(e for e in script["responses"]
                     if e.get("match", {}).get("any_message_contains") == f"Your subtask: {sub}")
        first["latency"] = 4.0
        first["redeliver"] = True  # the killed run never got it; the resumed one asks again
    return script


def _wait(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def test_killed_run_resumes_without_redoing_finished_work(tmp_path: Path, sandbox_backend: str) -> None:
    repo = make_sample_repo(tmp_path / "inventory")
    state = tmp_path / "state"
    with ScriptedModelServer(_slow_first_steps()) as server:
        env = {
            **os.environ,
            "SHIPYARD_STATE_DIR": str(state),
            "SHIPYARD_SANDBOX__BACKEND": sandbox_backend,
            "SHIPYARD_MODELS__DEFAULT__BASE_URL": server.base_url,
            "SHIPYARD_MODELS__DEFAULT__MODEL": "scripted",
        }
        shipyard = [sys.executable, "-m", "orchestrator"]
        run = subprocess.Popen([*shipyard, "run", INSTRUCTION, "--repo", str(repo)], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        os.environ["SHIPYARD_STATE_DIR"] = str(state)
        runner = Director(load_settings(tmp_path))
        del os.environ["SHIPYARD_STATE_DIR"]
        _wait(lambda: runner.list())
        job_id = runner.list()[0].id

        def fanned_out() -> bool:
            coding = {e.subtask for e in runner.events(job_id)
                      if e.kind == "subtask.status" and e.payload["status"] == "coding"}
            return {"s2", "s3"} <= coding

        _wait(fanned_out)
        _wait(lambda: sum(r.entry is not None and r.status == 200 for r in server.requests) >= 8)
        time.sleep(0.5)  # both slow answers are now in flight
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        _wait(lambda: sum(r.status == 499 for r in server.requests) == 2, timeout=10)
        before_kill = len(server.requests)
        assert runner.get(job_id).status == JobStatus.RUNNING

        resumed = subprocess.run([*shipyard, "resume", job_id], env=env, cwd=tmp_path, capture_output=True,
                                 text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        after = server.requests[before_kill:]
        assert server.pending == []

    assert runner.get(job_id).status == JobStatus.SUCCEEDED
    # Nothing finished before the kill was asked of the model again: not the plan, not s1.
    def texts(request) -> str:  # type: ignore[no-untyped-def]
        return " ".join(str(m.get("content")) for m in request.messages)

    assert not [r for r in after if r.role == "planner"]
    assert not [r for r in after if "Your subtask: s1" in texts(r) or "Subtask: s1" in texts(r)]
    # The two stages cut off mid-request started over, each once.
    assert sum(1 for r in after if r.role == "coder" and r.entry is not None) >= 2
    # No commit is duplicated: every agent's commit is on the job branch exactly once.
    base = git(repo, "rev-parse", "main").strip()
    authors = git(repo, "log", "--no-merges", "--format=%an", f"{base}..shipyard/{job_id}").split("\n")
    agents = sorted(a.split("(")[1].rstrip(")") for a in authors if "(" in a)
    assert agents == ["s1.coder.1", "s2.coder.1", "s2.test_fixer.1", "s3.coder.1", "s3.coder.2"]
    merges = git(repo, "rev-list", "--merges", f"{base}..shipyard/{job_id}").split()
    assert len(merges) == 3
