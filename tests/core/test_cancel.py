"""A cancel that lands while a subtask's tests run stops the job there: no subtask is failed on its account."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from corekit import MakeDirector
from helpers import approve, call, coder, make_repo, plan_entry, subtask

from orchestrator.engine.watch import stop_running
from orchestrator.store.events import SubtaskStatus
from orchestrator.store.jobs import Job, JobStatus, Task

# The tests of the coder's work (x.txt) say they started, then wait to be let go; the baseline's run is quick.
GATE = """import os, pathlib, time
here = pathlib.Path({here!r})
if os.path.exists("x.txt"):
    (here / "started").touch()
    deadline = time.monotonic() + 120
    while not (here / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
"""


def test_a_cancel_during_a_subtasks_tests_cancels_the_job_and_fails_no_subtask(
        tmp_path: Path, make_director: MakeDirector) -> None:
    gate = tmp_path / "gate.py"
    gate.write_text(GATE.format(here=str(tmp_path)))
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
        _wait_for(lambda: (tmp_path / "started").exists() or not runner.is_alive(), "s1's tests to start")
        assert runner.is_alive(), "the job ended before s1's tests ran"
        director.cancel(job.id)
        # What the job's watch does once it sees the cancelled row (it looks every second).
        assert stop_running(job.id, "cancelled")
    finally:
        (tmp_path / "go").touch()
        runner.join(120)
    assert ended and ended[0].status == JobStatus.CANCELLED
    statuses = [(e.subtask, e.status) for e in director.events(job.id, kinds=(SubtaskStatus,))]
    assert ("s1", "failed") not in statuses and ("s2", "failed") not in statuses, statuses


def _wait_for(condition, what: str, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
