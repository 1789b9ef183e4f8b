"""Plan approval and cancellation of jobs that workers run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from jobkit import Deployment, quick_script, wait_for

from orchestrator.runtime.notify import Inbox
from orchestrator.store.jobs import JobStatus

pytestmark = pytest.mark.bubblewrap


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a worker's sandboxes would be)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_job_waits_for_approval_across_a_worker_restart(deploy: Callable[..., Deployment],
                                                       database: str | None) -> None:
    d = deploy(database, WORKERS__CONCURRENCY="1")
    first = d.start_worker()
    waiting = d.submit("add a note once I approve", approve_plan=True)
    d.wait_status([waiting], {JobStatus.AWAITING_APPROVAL})

    # While it waits it holds no slot (the one slot runs another job) and no sandbox.
    other = d.submit("add another note")
    d.wait_status([other], {JobStatus.SUCCEEDED})
    assert children(first.pid) == []
    assert first.stop() == 0

    d.start_worker()
    approved = d.shipyard("approve", waiting)
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert d.status(waiting) == JobStatus.SUCCEEDED
    assert d.shipyard("result", waiting).returncode == 0
    entries = [(e.kind, e.status) for e in Inbox(d.runner.records.jobs.engine).entries() if e.job_id == waiting]
    assert entries == [("finished", "succeeded"), ("waiting", "awaiting_approval")]
    assert d.shipyard("inbox").returncode == 0
    assert Inbox(d.runner.records.jobs.engine).entries() == [], "shown entries are marked read"


def test_cancel_stops_a_job_running_on_a_worker(deploy: Callable[..., Deployment]) -> None:
    # The first coder's model call outlasts any `shipyard cancel` however loaded the machine: the job cannot end on
    # its own first. The cancel gives the call up at once (the watch stops the job's model clients).
    d = deploy(None, quick_script(once_latency=600.0), WORKERS__CONCURRENCY="1")
    worker = d.start_worker()
    job = d.submit("add a note slowly")
    wait_for(lambda: any(e.payload.get("status") == "coding" for e in d.events(job, "subtask.status")), 60,
             "the coder to start")
    assert d.shipyard("cancel", job).returncode == 0

    wait_for(lambda: d.events(job, "worker.released"), 30, "the worker to let the job go")
    assert d.events(job, "worker.released")[0].payload["status"] == "cancelled"
    assert d.events(job, "job.finished")[-1].payload["status"] == "cancelled"
    assert children(worker.pid) == []
    # The slot is free again, and `result` tells the two apart by exit code.
    after = d.submit("add a note quickly")
    d.wait_status([after], {JobStatus.SUCCEEDED})
    assert d.shipyard("result", job).returncode == 1
    assert d.shipyard("result", after).returncode == 0


def test_unusable_database_is_a_one_line_error(deploy: Callable[..., Deployment]) -> None:
    d = deploy(None)
    for url, expected in (("postgresql://nobody@127.0.0.1:1/none", "cannot use the database"),
                          ("mysql://localhost/x", "unsupported database URL")):
        done = d.shipyard("submit", "a task", "--repo", str(d.repo), "--db", url)
        assert done.returncode == 2
        message = " ".join(done.stderr.split())  # the terminal may wrap the one line
        assert message.startswith("error:") and expected in message and "Traceback" not in message, message
