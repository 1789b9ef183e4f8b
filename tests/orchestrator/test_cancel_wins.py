"""`shipyard cancel` against a job that is ending at the same moment: whichever lands first, the job's
row and its `job.finished` event agree, and a cancel that was accepted is never overwritten."""

from __future__ import annotations

import threading
from pathlib import Path

from orchestrator.store.db import open_store
from orchestrator.store.events import JobFinished
from orchestrator.store.jobs import JobStatus, Task
from orchestrator.store.records import JobRecords


def _records(tmp_path: Path) -> JobRecords:
    return JobRecords(open_store(f"sqlite:///{tmp_path / 'state.db'}"))


def _running(records: JobRecords) -> str:
    job = records.submit(Task(instruction="a note", repo=".", base="main"))
    records.jobs.advance(job.id, JobStatus.RUNNING)
    return job.id


def _finished(records: JobRecords, job_id: str) -> JobFinished:
    events = [e for e in records.events.list(job_id) if isinstance(e, JobFinished)]
    assert len(events) == 1, events
    return events[0]


def test_a_cancel_before_the_engine_writes_its_end_wins(tmp_path: Path) -> None:
    records = _records(tmp_path)
    job_id = _running(records)
    assert records.cancel(job_id).status == JobStatus.CANCELLED
    # The engine read the job as running a moment ago, and now writes its success.
    ended = records.finish(job_id, JobStatus.SUCCEEDED, report={"succeeded": True}, branch="shipyard/x")
    assert ended.status == JobStatus.CANCELLED
    assert ended.error == "cancelled by the director"
    assert ended.report == {"succeeded": True}, "what the job did is kept"
    assert _finished(records, job_id).status == "cancelled"


def test_a_cancel_after_the_job_ended_leaves_it_as_it_ended(tmp_path: Path) -> None:
    records = _records(tmp_path)
    job_id = _running(records)
    records.finish(job_id, JobStatus.SUCCEEDED)
    before = len(records.events.list(job_id))
    assert records.cancel(job_id).status == JobStatus.SUCCEEDED
    assert len(records.events.list(job_id)) == before, "no status change is announced"


def test_cancel_and_end_racing_always_agree(tmp_path: Path) -> None:
    records = _records(tmp_path)
    for _ in range(40):
        job_id = _running(records)
        start = threading.Barrier(2)
        cancelled: list[bool] = []

        def cancel(job_id: str = job_id, start: threading.Barrier = start, cancelled: list[bool] = cancelled) -> None:
            start.wait()
            cancelled.append(records.jobs.cancel(job_id))

        def finish(job_id: str = job_id, start: threading.Barrier = start) -> None:
            start.wait()
            records.finish(job_id, JobStatus.SUCCEEDED)

        threads = [threading.Thread(target=cancel), threading.Thread(target=finish)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        final = records.jobs.get(job_id).status
        # An accepted cancel always wins; a refused one means the job had ended first.
        assert final == (JobStatus.CANCELLED if cancelled[0] else JobStatus.SUCCEEDED)
        assert _finished(records, job_id).status == final.value
