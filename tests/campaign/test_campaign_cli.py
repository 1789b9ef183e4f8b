"""Campaigns as a director runs them: the demo, a worker killed mid-iteration, a budget top-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import git

from agents.scripted_model import ScriptedModelServer
from orchestrator.apps.demo import CAMPAIGN_GOAL, CAMPAIGN_REPO, CAMPAIGN_SCRIPT, CAMPAIGN_VERIFIER, make_sample_repo
from orchestrator.config.settings import load_settings
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import JobStatus

pytestmark = pytest.mark.bubblewrap


def _env(root: Path, server: ScriptedModelServer) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")},
            "SHIPYARD_STATE_DIR": str(root / "state"), "SHIPYARD_SANDBOX__BACKEND": "bubblewrap",
            "SHIPYARD_MODELS__DEFAULT__BASE_URL": server.base_url, "SHIPYARD_MODELS__DEFAULT__MODEL": "scripted",
            "SHIPYARD_TEST_COMMAND": "true", "SHIPYARD_WORKERS__HEARTBEAT": "0.5", "SHIPYARD_WORKERS__LEASE": "2"}


def _shipyard(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def _director(env: dict[str, str], root: Path) -> Director:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHIPYARD_STATE_DIR", env["SHIPYARD_STATE_DIR"])
        return Director(load_settings(root))


def _wait(condition: Any, timeout: float, what: str) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def test_the_campaign_demo_meets_its_goal_offline(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")},
           "SHIPYARD_SANDBOX__BACKEND": "bubblewrap"}
    done = subprocess.run([sys.executable, "-m", "orchestrator", "demo", "campaign", "--dir", str(tmp_path / "d")],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "3 → 2 → 1 → 0" in done.stdout and "scripted model" in done.stdout
    branch = next(w for w in done.stdout.split() if w.startswith("shipyard/"))
    check = tmp_path / "check"
    git(tmp_path / "d" / "units", "worktree", "add", "-q", str(check), branch)
    assert subprocess.run(["python3", "verify.py"], cwd=check, capture_output=True).returncode == 0


def test_a_worker_killed_mid_iteration_resumes_the_campaign_and_redoes_no_subtask(tmp_path: Path) -> None:
    script = yaml.safe_load(CAMPAIGN_SCRIPT.read_text())
    slow = next(e for e in script["responses"] if "celsius" in e["match"].get("any_message_contains", ""))
    slow.update(latency=15, redeliver=True)  # iteration 2's coder: the worker dies while it waits
    repo = make_sample_repo(tmp_path / "units", CAMPAIGN_REPO)
    with ScriptedModelServer(script) as server:
        env = _env(tmp_path, server)
        started = _shipyard(env, repo, "campaign", CAMPAIGN_GOAL, "--until", CAMPAIGN_VERIFIER, "--options", "2",
                            "--repo", ".", "--submit")
        assert started.returncode == 0, started.stderr
        campaign_id = started.stdout.strip()
        worker = subprocess.Popen([sys.executable, "-m", "orchestrator", "serve"], env=env, cwd=tmp_path,
                                  start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: any("Fix celsius_to_fahrenheit" in str(r.messages) and r.role == "coder"
                          for r in server.requests), 180, "iteration 2's coder to ask its model")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        # The answer the dead worker never read goes back to the script (as a real endpoint's would be lost).
        _wait(lambda: any(r.status == 499 for r in server.requests), 60, "the killed request to be given back")
        again = subprocess.Popen([sys.executable, "-m", "orchestrator", "serve"], env=env, cwd=tmp_path,
                                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            director = _director(env, tmp_path)
            _wait(lambda: director.get(campaign_id).status.finished, 240, "the campaign to finish")
        finally:
            os.killpg(again.pid, signal.SIGTERM)
            again.wait(30)
        assert server.pending == []
    job = director.get(campaign_id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert director.campaign_report(campaign_id).figures == [3.0, 2.0, 1.0, 0.0]
    planners = [r for r in server.requests if r.role == "planner" and r.status == 200]
    assert len(planners) == 3, "each iteration planned once"
    children = [j for j in director.list() if j.task.parent == campaign_id]
    for child in children:
        commits = [e for e in director.events(child.id) if e.kind == "agent.commit"]
        assert len(commits) <= 1, (child.id, len(commits))


def test_a_campaign_paused_for_budget_goes_on_after_a_top_up(tmp_path: Path) -> None:
    script = yaml.safe_load(CAMPAIGN_SCRIPT.read_text())
    for entry in script["responses"]:
        entry["usage"] = {"prompt_tokens": 1000, "completion_tokens": 100}  # $0.0011 a call at $1 per million
    repo = make_sample_repo(tmp_path / "units", CAMPAIGN_REPO)
    with ScriptedModelServer(script) as server:
        env = {**_env(tmp_path, server), "SHIPYARD_MODELS__DEFAULT__INPUT_PRICE": "1",
               "SHIPYARD_MODELS__DEFAULT__OUTPUT_PRICE": "1"}
        paused = _shipyard(env, repo, "campaign", CAMPAIGN_GOAL, "--until", CAMPAIGN_VERIFIER, "--options", "2",
                           "--budget", "0.006", "--repo", ".")
        assert paused.returncode == 0, paused.stdout[-2000:] + paused.stderr[-2000:]
        assert "shipyard campaign topup" in paused.stdout
        director = _director(env, tmp_path)
        (job,) = [j for j in director.list() if j.task.campaign]
        assert job.status == JobStatus.AWAITING_BUDGET
        asked = len(server.requests)
        topped = _shipyard(env, tmp_path, "campaign", "topup", job.id, "1.0")
        assert topped.returncode == 0, topped.stdout[-2000:] + topped.stderr[-2000:]
        later = server.requests[asked:]
    assert director.get(job.id).status == JobStatus.SUCCEEDED
    assert not any("(iteration 1)" in str(r.messages) for r in later), "iteration 1 is not redone"
