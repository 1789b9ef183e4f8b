"""Machine faults: the runner SIGKILLed again and again, the Docker daemon restarted under a job, a disk
that fills up, a database another process holds locked. The job resumes or fails cleanly; no branch,
commit or event is lost, and none is duplicated beyond the stage that was cut off and redone."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import git, make_repo
from kit import (
    LAST_CHECKPOINT,
    can_mount,
    chain_script,
    fill_disk,
    job_settings,
    kill_runner,
    require_backend,
    restart_script,
    small_filesystem,
    sqlite_held,
    sqlite_is_locked,
    start_runner,
    wait_for,
    work_lost,
)

from agents.scripted_model import ScriptedModelServer
from orchestrator.runtime.director import Director
from orchestrator.store.events import Event
from orchestrator.store.jobs import JobStatus, Task
from sandboxes.base import SandboxLimits

# Subtasks, each depending on the one before: a long, strictly ordered job. Long enough to outlast 20 kills
# however fast the orchestrator gets: a run is killed at most 0.3 s after its first step of progress, and
# each subtask is three answers of CHAIN_LATENCY s and four steps of progress (80 for the job, and the plan).
CHAIN = 20
CHAIN_LATENCY = 0.1
# Events that mark a finished unit of work (a checkpointed stage or node follows each).
PROGRESS = {"job.prepared", "plan.ready", "agent.commit", "test.result", "review.verdict", "merge"}


def _key(event: Event) -> tuple[Any, ...]:
    payload = event.payload
    return (event.kind, event.subtask, event.agent, payload.get("status"), payload.get("tool"), payload.get("ok"),
            payload.get("passed"))


def _check_chain(runner: Director, repo: Path, job_id: str, n: int = CHAIN) -> None:
    assert work_lost(runner, repo, job_id) == []
    base = git(repo, "rev-parse", "main").strip()
    authors = git(repo, "log", "--no-merges", "--format=%an", f"{base}..shipyard/{job_id}").split("\n")
    agents = sorted(a.split("(")[1].rstrip(")") for a in authors if "(" in a)
    log = git(repo, "log", "--graph", "--format=%h %an %s", f"shipyard/{job_id}")
    assert agents == sorted(f"s{i}.coder.1" for i in range(1, n + 1)), log  # each commit exactly once
    assert len(git(repo, "rev-list", "--merges", f"{base}..shipyard/{job_id}").split()) == n
    assert sorted(git(repo, "ls-tree", "--name-only", f"shipyard/{job_id}").split()) == sorted(
        ["README.md", *(f"s{i}.txt" for i in range(1, n + 1))])


@pytest.mark.bubblewrap
@pytest.mark.timeout(300)
def test_twenty_sigkills_in_a_row_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    backend = require_backend("bubblewrap")
    rng = random.Random(int(os.environ.get("SHIPYARD_CRASH_SEED", "20")))
    with ScriptedModelServer(chain_script(CHAIN, CHAIN_LATENCY)) as server:
        # A reference run, never killed: every event the killed job must also have.
        reference_repo = make_repo(tmp_path / "reference", {"README.md": "# chain\n"})
        reference = Director(job_settings(tmp_path / "ref", server.base_url, backend, test_command="true"))
        ref_job = reference.run(reference.submit(Task(instruction="chain", repo=str(reference_repo),
                                                      base="main")).id)
        assert ref_job.status == JobStatus.SUCCEEDED, ref_job.error
        expected = Counter(_key(e) for e in reference.events(ref_job.id))

        repo = make_repo(tmp_path / "repo", {"README.md": "# chain\n"})
        settings = job_settings(tmp_path, server.base_url, backend, test_command="true")
        runner = Director(settings)
        job_id = runner.submit(Task(instruction="chain", repo=str(repo), base="main")).id
        attempts: list[list[Event]] = []
        last = 0
        kills = 0
        while kills < 20:
            process = start_runner(settings, job_id)
            wait_for(lambda p=process, after=last: not p.is_alive()
                     or any(e.kind in PROGRESS for e in runner.events(job_id, after=after)), 60, "progress")
            if not process.is_alive():
                ended = runner.get(job_id)
                pytest.fail(f"the runner exited by itself after {kills} kills (exit code {process.exitcode}): "
                            f"the job is {ended.status.value}: {ended.error}")
            time.sleep(rng.uniform(0, 0.3))  # a random point: mid-stage, mid-commit, mid-request...
            kill_runner(process)
            kills += 1
            attempt = runner.events(job_id, after=last)
            attempts.append(attempt)
            last = attempt[-1].id if attempt else last
            assert runner.get(job_id).status != JobStatus.FAILED, runner.get(job_id).error
        final = runner.run(job_id)
        attempts.append(runner.events(job_id, after=last))

    assert final.status == JobStatus.SUCCEEDED, final.error
    _check_chain(runner, repo, job_id)
    # No event lost: everything the uninterrupted run logged is there.
    got = Counter(_key(e) for attempt in attempts for e in attempt)
    missing = expected - got
    assert not missing, missing
    # Duplicates only from the stage in flight at a kill: in each run after a kill, the events
    # seen before all belong to one subtask and at most one agent.
    seen: Counter[tuple[Any, ...]] = Counter()
    for number, attempt in enumerate(attempts):
        repeated = []
        for event in attempt:
            key = _key(event)
            seen[key] += 1
            if seen[key] > expected[key]:
                repeated.append(event)
        subtasks = {e.subtask for e in repeated if e.subtask}
        agents = {e.agent for e in repeated if e.agent}
        assert len(subtasks) <= 1 and len(agents) <= 1, (number, [(e.kind, e.subtask, e.agent) for e in repeated])


@pytest.mark.bubblewrap
def test_a_database_locked_by_another_process_makes_the_job_wait(tmp_path: Path) -> None:
    backend = require_backend("bubblewrap")
    repo = make_repo(tmp_path / "repo", {"README.md": "# chain\n"})
    with ScriptedModelServer(chain_script(2, latency=0.3)) as server:
        settings = job_settings(tmp_path, server.base_url, backend, test_command="true")
        runner = Director(settings)
        job = runner.submit(Task(instruction="chain", repo=str(repo), base="main"))
        process = start_runner(settings, job.id)
        try:
            wait_for(lambda: runner.events(job.id, after=1), 30, "the job to start")
            for database in ("shipyard.db", "checkpoints.db"):
                path = settings.state_dir / database
                wait_for(path.exists, 30, f"{database}")
                with sqlite_held(path, 3):
                    assert sqlite_is_locked(path)
                    held_at = time.monotonic()
                    time.sleep(3)
                assert time.monotonic() - held_at >= 2.5
            process.join(120)
        finally:
            kill_runner(process)
    done = runner.get(job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    _check_chain(runner, repo, job.id, n=2)


@pytest.mark.bubblewrap
@pytest.mark.skipif(not can_mount(), reason="needs root to mount a small file system")
def test_a_disk_that_fills_up_mid_job_fails_it_cleanly_and_resume_finishes_it(tmp_path: Path) -> None:
    """The state dir (jobs, events, checkpoints, worktrees) on a 64 MB file system that another
    program fills up while the job runs (past the sandboxes' floor, set to fit so small a disk)."""
    backend = require_backend("bubblewrap")
    repo = make_repo(tmp_path / "repo", {"README.md": "# chain\n"})
    with small_filesystem(tmp_path / "disk", 64) as disk, ScriptedModelServer(chain_script(3, 0.2)) as server:
        settings = job_settings(tmp_path, server.base_url, backend, test_command="true", state_dir=disk / "state",
                                limits=SandboxLimits(min_free_mb=16))
        runner = Director(settings)
        job = runner.submit(Task(instruction="chain", repo=str(repo), base="main"))
        process = start_runner(settings, job.id)
        wait_for(lambda: any(e.kind == "merge" for e in runner.events(job.id)), 60, "the first merge")
        ballast = fill_disk(disk)
        process.join(60)
        assert not process.is_alive(), "the runner hung on a full disk"
        status = runner.get(job.id)
        assert status.status != JobStatus.SUCCEEDED
        # `shipyard resume` while the disk is still full: one line saying what to do, no traceback.
        env = {**os.environ, "SHIPYARD_STATE_DIR": str(settings.state_dir), "SHIPYARD_SANDBOX__BACKEND": backend,
               "SHIPYARD_MODELS__DEFAULT__BASE_URL": server.base_url, "SHIPYARD_MODELS__DEFAULT__MODEL": "scripted",
               "SHIPYARD_TEST_COMMAND": "true", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        resumed = subprocess.run([sys.executable, "-m", "orchestrator", "resume", job.id], env=env, cwd=tmp_path,
                                 capture_output=True, text=True, timeout=120)
        assert resumed.returncode != 0 and "Traceback" not in resumed.stderr, resumed.stderr[-3000:]
        assert resumed.stderr.strip().startswith("error: ") and len(resumed.stderr.strip().splitlines()) == 1, \
            resumed.stderr
        assert "space" in resumed.stderr or "full" in resumed.stderr, resumed.stderr
        ballast.unlink()
        final = runner.run(job.id)
    assert final.status == JobStatus.SUCCEEDED, final.error
    _check_chain(runner, repo, job.id, n=3)


@pytest.mark.docker
@pytest.mark.timeout(240)
def test_the_docker_daemon_restarted_mid_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dockerd of the test's own (the machine's daemon serves others) is restarted while an agent's
    command runs in one of its containers: the stage fails cleanly or the agent is told and goes on;
    either way the job ends (after a resume if it failed) with nothing lost and no container left."""
    require_backend("docker")
    from kit import private_dockerd, private_dockerd_unavailable

    if reason := private_dockerd_unavailable():
        pytest.skip(reason)
    repo = make_repo(tmp_path / "repo", {"README.md": "# chain\n"})
    with private_dockerd() as daemon, ScriptedModelServer(restart_script()) as server:
        monkeypatch.setenv("DOCKER_HOST", daemon.host)
        runner = Director(job_settings(tmp_path, server.base_url, "docker", image="shipyard-mini:latest",
                                        test_command="test -f s1.txt"))
        job = runner.submit(Task(instruction="note", repo=str(repo), base="main"))
        outcome: list[Any] = []
        thread = threading.Thread(target=lambda: outcome.append(_run_catching(runner, job.id)), daemon=True)
        thread.start()
        wait_for(lambda: any(e.kind == "agent.message" and e.role == "coder" for e in runner.events(job.id)),
                 60, "the coder's sleep")
        time.sleep(1.5)
        daemon.restart()
        thread.join(180)
        assert not thread.is_alive(), "the job hung after the daemon restart"
        first = outcome[0]
        assert not isinstance(first, BaseException), f"the runner raised {first!r}"
        final = first if first.status == JobStatus.SUCCEEDED else runner.run(job.id)
        observed = [e.payload["output"] for e in runner.events(job.id)
                    if e.kind == "agent.tool_result" and e.payload["tool"] == "run_command"]
        leftover = daemon.containers()
    assert first.status in (JobStatus.SUCCEEDED, JobStatus.FAILED), first.status
    if first.status == JobStatus.FAILED:  # failed cleanly: with the reason, and resumed above
        assert "docker" in (first.error or "").lower() or "sandbox" in (first.error or ""), first.error
    else:  # the agent was told, and its sandbox got a fresh container for its next command
        assert "stopped answering" in observed[0] and "revived" in observed[1], observed
    assert final.status == JobStatus.SUCCEEDED, final.error
    assert work_lost(runner, repo, job.id) == []
    assert git(repo, "show", f"shipyard/{job.id}:s1.txt") == "1\n"
    assert leftover == [], leftover


def _run_catching(runner: Director, job_id: str) -> Any:
    try:
        return runner.run(job_id)
    except BaseException as exc:  # noqa: BLE001 - the test reports it, with its traceback
        traceback.print_exc()
        return exc


@pytest.mark.docker
def test_a_sandbox_container_killed_under_its_agent_is_replaced(tmp_path: Path) -> None:
    """The container is killed (`docker kill`) while the agent's command runs: the agent is told, and its
    next command runs in a fresh container on the same workspace."""
    require_backend("docker")
    import docker

    from agents.tools import Toolset
    from sandboxes.base import SandboxSpec
    from sandboxes.docker_backend import DockerBackend

    workspace = tmp_path / "ws"
    workspace.mkdir()
    client = docker.from_env()
    with DockerBackend().start(SandboxSpec(workspace=workspace)) as sandbox:
        tools = Toolset(sandbox)
        seen: list[Any] = []
        running = threading.Thread(target=lambda: seen.append(
            tools.call("run_command", {"command": "echo kept > kept.txt; sleep 30"})))
        running.start()
        wait_for(lambda: (workspace / "kept.txt").exists(), 30, "the command")
        killed = sandbox.name
        client.containers.get(killed).kill()
        running.join(60)
        assert "container stopped while the command ran" in seen[0].text, seen[0].text
        after = tools.call("run_command", {"command": "cat kept.txt"})
        assert after.text.startswith("exit code 0") and "kept" in after.text, after.text
        assert sandbox.name != killed
        fresh = sandbox.name
    names = [c.name for c in client.containers.list(all=True)]
    assert killed not in names and fresh not in names


@pytest.mark.bubblewrap
@pytest.mark.parametrize("channel", ["plan", "results", "tests_after", LAST_CHECKPOINT])
def test_a_kill_between_a_steps_writes_and_the_next_checkpoint(tmp_path: Path, channel: str) -> None:
    """The narrowest window, hit on purpose: the runner dies right after a step's results are saved
    (the plan; a subtask's or a merge's results; the final tests) and before the next checkpoint, or
    after the graph's last checkpoint and before the job's row says it ended.
    The resumed job applies them and goes on: nothing is planned, coded or merged twice."""
    backend = require_backend("bubblewrap")
    repo = make_repo(tmp_path / "repo", {"README.md": "# chain\n"})
    with ScriptedModelServer(chain_script(3)) as server:
        settings = job_settings(tmp_path, server.base_url, backend, test_command="true")
        runner = Director(settings)
        job_id = runner.submit(Task(instruction="chain", repo=str(repo), base="main")).id
        process = start_runner(settings, job_id, die_after_writes_to=channel)
        process.join(60)
        assert process.exitcode == -9, process.exitcode
        final = runner.run(job_id)
        planner_calls = [r for r in server.requests if r.role == "planner"]
    assert final.status == JobStatus.SUCCEEDED, final.error
    assert len(planner_calls) == 1
    _check_chain(runner, repo, job_id, n=3)
    kinds = Counter(e.kind for e in runner.events(job_id))
    assert kinds["plan.ready"] == 1 and kinds["job.prepared"] == 1 and kinds["agent.commit"] == 3, kinds
