"""Workers as real processes on one queue (SQLite and PostgreSQL): every job runs, and never twice at once.

The proof is in the events: a worker emits `worker.claimed` before it runs a job and
`worker.released` after; a job's claims by different workers must never overlap, and
the scripted model server's log shows how often each job was planned.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable

import pytest
from jobkit import Deployment, quick_script, wait_for

from orchestrator.runtime.worker import LEASE_LOST
from orchestrator.store.events import Event
from orchestrator.store.jobs import JobStatus

pytestmark = pytest.mark.bubblewrap

DONE = {JobStatus.SUCCEEDED}


def claims(deployment: Deployment, job_id: str) -> list[tuple[str, Event]]:
    """The job's claim and release events, in order, as (kind, event)."""
    return [(e.kind, e) for e in deployment.events(job_id, "worker.claimed", "worker.released")]


def assert_claims_alternate(deployment: Deployment, job_id: str, killed: dict[str, float]) -> list[str]:
    """No claim while another is open, unless the open one's worker was killed first; the claiming workers."""
    holder: Event | None = None
    owners = []
    for kind, event in claims(deployment, job_id):
        worker = event.payload["worker"]
        if kind == "worker.claimed":
            if holder is not None:
                dead_at = killed.get(holder.payload["worker"])
                assert dead_at is not None and dead_at < event.ts, (
                    f"job {job_id} claimed by {worker} while {holder.payload['worker']} held it")
            holder = event
            owners.append(worker)
        else:
            assert holder is not None and holder.payload["worker"] == worker, f"{job_id}: release without claim"
            holder = None
    assert holder is None, f"job {job_id} was never released"
    return owners


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in points:
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.timeout(420)  # longer than the wait, so that a job stuck says where it stands
def test_two_workers_run_ten_jobs_each_once(deploy: Callable[..., Deployment], database: str | None) -> None:
    d = deploy(database, quick_script(latency=0.2), WORKERS__CONCURRENCY="2")
    d.start_worker()
    d.start_worker()
    jobs = [d.submit(f"add note number {n}") for n in range(10)]
    d.wait_status(jobs, DONE, timeout=300)  # ten jobs four at a time: minutes on a machine that is busy

    per_worker: dict[str, list[tuple[float, float]]] = {}
    for job in jobs:
        owners = assert_claims_alternate(d, job, killed={})
        assert len(owners) == 1, f"job {job} ran {len(owners)} times"
        (_, start), (_, end) = claims(d, job)
        per_worker.setdefault(owners[0], []).append((start.ts, end.ts))
    assert len(per_worker) == 2, "both workers should have taken jobs"
    assert all(max_overlap(spans) <= 2 for spans in per_worker.values()), "a worker ran more than its 2 slots"
    # Each job was planned exactly once: nothing ran twice, even one step.
    planned = Counter(next(m["content"] for m in r.messages if m["role"] == "user")
                      for r in d.server.requests if r.role == "planner")
    assert sorted(planned.values()) == [1] * 10


def test_killed_workers_job_is_finished_elsewhere(deploy: Callable[..., Deployment], database: str | None) -> None:
    """PostgreSQL: the other worker takes the job over. SQLite: the one worker, restarted, does."""
    d = deploy(database, quick_script(latency=0.2, coder_latency=3.0), WORKERS__CONCURRENCY="2")
    first = d.start_worker()
    job = d.submit("add a note slowly")
    wait_for(lambda: any(e.payload.get("status") == "coding" for e in d.events(job, "subtask.status")), 60,
             "the coder to start")
    if database is not None:
        d.start_worker()
    time.sleep(0.5)  # mid-way through the coder's slow answer
    killed_at = time.time()
    first.kill()
    if database is None:
        d.start_worker()
    d.wait_status([job], DONE, timeout=60)

    owners = assert_claims_alternate(d, job, killed={claims(d, job)[0][1].payload["worker"]: killed_at})
    assert len(owners) == 2 and owners[0] != owners[1]
    assert d.events(job, "job.finished")[-1].payload["status"] == "succeeded"
    # The plan was made once: the take-over resumed from the checkpoint, it did not start over.
    assert sum(1 for r in d.server.requests if r.role == "planner") == 1


def test_worker_presumed_dead_exits_when_it_wakes(deploy: Callable[..., Deployment], postgres_url: str) -> None:
    """A frozen worker's lease expires, another takes its job over, and the frozen one, thawed, steps aside."""
    d = deploy(postgres_url, quick_script(latency=0.2, coder_latency=2.0))
    frozen = d.start_worker()
    job = d.submit("add a note")
    wait_for(lambda: d.events(job, "worker.claimed"), 60, "the first worker to claim the job")
    frozen.signal(signal.SIGSTOP)
    d.start_worker()
    wait_for(lambda: len(d.events(job, "worker.claimed")) == 2, 30, "the take-over after the lease")
    frozen.signal(signal.SIGCONT)
    assert frozen.process.wait(timeout=30) == LEASE_LOST
    d.wait_status([job], DONE, timeout=60)


def test_worker_prints_its_stacks_on_sigusr1_and_serves_on(deploy: Callable[..., Deployment]) -> None:
    d = deploy(None)
    worker = d.start_worker()
    wait_for(lambda: "takes jobs from the queue" in worker.log.read_text(), 60, "the worker to start")
    worker.dump_stacks()
    log = worker.log.read_text()
    assert "orchestrator/runtime/worker.py" in log and " in serve" in log, log[-3000:]
    job = d.submit("add a note")
    d.wait_status([job], DONE)
    assert worker.process.poll() is None
