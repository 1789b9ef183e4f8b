"""A cancel that lands while tests run (the baseline's, a subtask's) stops the job there: no subtask is failed on
its account, and nothing of the job is left checked out, so that it can be discarded."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from corekit import MakeDirector
from helpers import approve, call, coder, git, make_repo, plan_entry, subtask

from agents.fake_model import FakeModels
from orchestrator.engine.watch import stop_running
from orchestrator.runtime.director import Director
from orchestrator.store.events import SubtaskStatus
from orchestrator.store.jobs import Job, JobStatus, Task

# The tests of the base (no x.txt) or of the coder's work say they started, then wait to be let go; others are quick.
GATE = """import os, pathlib, time
here = pathlib.Path({here!r})
if os.path.exists("x.txt") == {at_subtask!r}:
    (here / "started").touch()
    deadline = time.monotonic() + 120
    while not (here / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
"""


@pytest.mark.parametrize("where", ["baseline", "subtask"])
def test_a_cancel_during_tests_cancels_the_job_fails_no_subtask_and_leaves_it_discardable(
        where: str, tmp_path: Path, make_director: MakeDirector) -> None:
    gate = tmp_path / "gate.py"
    gate.write_text(GATE.format(here=str(tmp_path), at_subtask=where == "subtask"))
    director, _ = make_director([
        plan_entry(subtask("s1", "make x"), subtask("s2", "after x", depends_on=["s1"])),
        coder("s1", call("create_file", path="x.txt", content="x"), call("submit", summary="x")),
        approve("s1"),
    ])
    repo = make_repo(tmp_path / "repo", {"README.md": "r\n"})
    job = director.submit(Task(instruction="x", repo=str(repo), test_command=f"{sys.executable} {gate}"))
    ended: list[Job] = []
    runner = threading.Thread(target=lambda: ended.append(director.run(job.id)))
    runner.start()
    try:
        _wait_for(lambda: (tmp_path / "started").exists() or not runner.is_alive(), f"the {where} tests to start")
        assert runner.is_alive(), f"the job ended before the {where} tests ran"
        director.cancel(job.id)
        # What the job's watch does once it sees the cancelled row (it looks every second).
        assert stop_running(job.id, "cancelled")
    finally:
        (tmp_path / "go").touch()
        runner.join(120)
    assert ended and ended[0].status == JobStatus.CANCELLED
    statuses = [(e.subtask, e.status) for e in director.events(job.id, kinds=(SubtaskStatus,))]
    assert ("s1", "failed") not in statuses and ("s2", "failed") not in statuses, statuses
    # No worktree holds the job's branches: a discard deletes them all.
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "branch", "--list", "shipyard/*") != ""
    director.discard(job.id)
    assert git(repo, "branch", "--list", "shipyard/*").strip() == ""


def _wait_for(condition, what: str, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class CancelAtReview(FakeModels):
    """Cancels the job as s1's reviewer is asked: the review goes on, and the job stops at its next look."""

    director: Director | None = None
    job_id = ""

    def ask(self, role: str, agent: str | None, model: str, wire: list[dict[str, Any]], tokens: int) -> Any:
        if role == "reviewer" and agent == "s1.reviewer.1" and self.director is not None:
            self.director.cancel(self.job_id)
        return super().ask(role, agent, model, wire, tokens)


def test_a_job_cancelled_as_a_subtask_is_approved_is_retried_and_runs_the_subtasks_after_it(
        tmp_path: Path, make_director: MakeDirector) -> None:
    models = CancelAtReview([
        plan_entry(subtask("s1", "make x"), subtask("s2", "make y", depends_on=["s1"])),
        coder("s1", call("create_file", path="x.txt", content="x"), call("submit", summary="x")),
        approve("s1"),
        coder("s2", call("create_file", path="y.txt", content="y"), call("submit", summary="y")),
        approve("s2"),
    ])
    director, _ = make_director(None, models=models)
    job = director.submit(Task(instruction="x", repo=str(make_repo(tmp_path / "repo", {"README.md": "r\n"}))))
    models.director, models.job_id = director, job.id
    assert director.run(job.id).status == JobStatus.CANCELLED
    models.director = None
    done = director.retry(job.id)
    assert done.status == JobStatus.UNVERIFIED, done.error  # delivered; the sample has no tests to verify it
    assert [s.id for s in director.report(job.id).subtasks if s.status == "merged"] == ["s1", "s2"]
