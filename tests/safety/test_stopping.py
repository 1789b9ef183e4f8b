"""cancel, a second resume, Ctrl-C and SIGTERM do what they say, at every stage, within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable

import pytest
from helpers import call, plan_entry, subtask
from safekit import CHANGE, SLOW, World, ended, interrupt_a_run, one_error_line, slow, wait_for

from orchestrator.store.jobs import JobStatus

pytestmark = pytest.mark.bubblewrap


def _sleeping(marker: str) -> bool:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return bool(found.stdout.strip())


def _cancel_and_see_it_end(w: World, process: subprocess.Popen[str]) -> None:
    job = w.only_job()
    assert w.shipyard("cancel", job.id).returncode == 0
    wait_for(lambda: w.director().get(job.id).status == JobStatus.CANCELLED, 20, "the job cancelled")
    code, _, err = ended(process, 20)
    assert code == 1 and "Traceback" not in err, err
    finished = [e for e in w.director().events(job.id) if e.kind == "job.finished"]
    assert [e.payload["status"] for e in finished] == ["cancelled"]


def test_cancel_during_the_baseline_tests(world: Callable[..., World]) -> None:
    w = world(CHANGE, test_command="sleep 317")
    process = w.start("run", "add a note", "--repo", ".")
    wait_for(lambda: _sleeping("sleep 317"), 60, "the baseline tests to run")
    _cancel_and_see_it_end(w, process)
    wait_for(lambda: not _sleeping("sleep 317"), 20, "the baseline's command to be stopped")
    assert w.asked("planner") == 0


@pytest.mark.parametrize("role", ["planner", "coder", "reviewer"])
def test_cancel_while_an_agent_waits_for_its_model(world: Callable[..., World], role: str) -> None:
    w = world(slow(role))
    process = w.start("run", "add a note", "--repo", ".")
    wait_for(lambda: w.asked(role), 60, f"the {role} to ask its model")
    _cancel_and_see_it_end(w, process)


def test_cancel_while_the_plan_waits_for_approval(world: Callable[..., World]) -> None:
    w = world(CHANGE)
    assert w.shipyard("run", "add a note", "--repo", ".", "--approve-plan").returncode == 0
    job = w.only_job()
    assert job.status == JobStatus.AWAITING_APPROVAL
    assert w.shipyard("cancel", job.id).returncode == 0
    assert w.director().get(job.id).status == JobStatus.CANCELLED
    refused = w.shipyard("approve", job.id)
    assert refused.returncode == 2 and "cancelled, not waiting for plan approval" in one_error_line(refused.stderr)


def test_cancel_during_integration(world: Callable[..., World]) -> None:
    conflict = [
        plan_entry(subtask("s1", "one"), subtask("s2", "two")),
        {"match": {"role": "coder", "any_message_contains": "Your subtask: s1"},
         "tool_calls": [call("create_file", path="README.md", content="one\n"), call("submit", summary="1")]},
        {"match": {"role": "coder", "any_message_contains": "Your subtask: s2"},
         "tool_calls": [call("create_file", path="README.md", content="two\n"), call("submit", summary="2")]},
        {"match": {"role": "reviewer"}, "repeat": True,
         "tool_calls": [call("submit_review", decision="approve", summary="ok")]},
        {"match": {"role": "coder", "any_message_contains": "Resolve the conflicts"}, "latency": SLOW,
         "tool_calls": [call("submit", summary="never")]},
    ]
    w = world(conflict)
    process = w.start("run", "two notes", "--repo", ".")
    wait_for(lambda: any("Resolve the conflicts" in str(r.messages) for r in w.server.requests), 90,
             "the resolver to ask its model")
    _cancel_and_see_it_end(w, process)


def test_cancel_of_a_job_on_a_worker(world: Callable[..., World]) -> None:
    w = world(slow("coder"))
    submitted = w.shipyard("submit", "add a note", "--repo", ".")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    worker = w.start("serve", cwd=w.elsewhere, env={"SHIPYARD_WORKERS__HEARTBEAT": "0.5",
                                                       "SHIPYARD_WORKERS__LEASE": "2"})
    try:
        wait_for(lambda: w.asked("coder"), 90, "the coder to ask its model")
        assert w.shipyard("cancel", job_id).returncode == 0
        wait_for(lambda: any(e.kind == "worker.released" for e in w.director().events(job_id)), 30,
                 "the worker to let the job go")
        assert w.director().get(job_id).status == JobStatus.CANCELLED
        released = [e for e in w.director().events(job_id) if e.kind == "worker.released"]
        assert released[0].payload["status"] == "cancelled"
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        ended(worker, 30)


def test_a_second_resume_is_refused_naming_the_process_that_holds_the_job(world: Callable[..., World]) -> None:
    w = world(slow("coder"))
    first = w.start("run", "add a note", "--repo", ".")
    wait_for(lambda: w.asked("coder"), 60, "the coder to ask its model")
    job = w.only_job()
    second = w.shipyard("resume", job.id, cwd=w.elsewhere)
    line = one_error_line(second.stderr)
    assert second.returncode == 2 and f"is running in process {first.pid}" in line and "shipyard cancel" in line
    assert w.asked("coder") == 1, "the refused resume asked no model"
    os.killpg(first.pid, signal.SIGINT)
    ended(first, 20)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_ends_at_once_with_a_resume_hint(world: Callable[..., World], sig: int) -> None:
    w = world(slow("coder"))
    job, code, err = interrupt_a_run(w, sig, within=10)
    assert code == 130, err
    line = one_error_line(err)
    assert f"shipyard resume {job.id}" in line
    assert w.director().get(job.id).status == JobStatus.FAILED
    assert w.asked("coder") == 1, "no model call after the interrupt"
    # The job goes on when resumed: the slow answer was used up, the next one is quick.
    resumed = w.shipyard("resume", job.id, cwd=w.elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    assert w.director().get(job.id).status == JobStatus.SUCCEEDED
