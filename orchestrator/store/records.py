"""A job's row and its events, written together wherever the two must agree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from orchestrator.store.event_log import EventLog
from orchestrator.store.events import JobFinished, JobStatusChanged, JobSubmitted
from orchestrator.store.jobs import CANCELLED_REASON, Job, JobStatus, JobStore, Task


class JobRecords:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.jobs = JobStore(engine)
        self.events = EventLog(engine)

    def submit(self, task: Task, settings: dict[str, Any] | None = None) -> Job:
        job = self.jobs.create(task, settings=settings)
        self.events.append(JobSubmitted(job_id=job.id, task=task))
        return job

    def set_status(self, job_id: str, status: JobStatus, **fields: Any) -> Job:
        self.jobs.update(job_id, status, **fields)
        self.events.append(JobStatusChanged(job_id=job_id, status=status.value))
        return self.jobs.get(job_id)

    def finish(self, job_id: str, status: JobStatus, error: str | None = None,
               report: dict[str, Any] | None = None, branch: str | None = None) -> Job:
        """The one way a job ends: its row says how, and a `job.finished` event tells the readers."""
        fields: dict[str, Any] = {"error": error}
        if report is not None:
            fields["report"] = report
        # A cancel that lands while the job ends wins, however close the two are.
        if self.jobs.settle(job_id, status, **fields) != status:
            status, error = JobStatus.CANCELLED, CANCELLED_REASON
        self.events.append(JobFinished(job_id=job_id, status=status.value, error=error, branch=branch))
        return self.jobs.get(job_id)

    def cancel(self, job_id: str) -> Job:
        """Mark the job cancelled (whatever runs it stops at once); a job that has ended stays as it ended."""
        if self.jobs.cancel(job_id):
            self.events.append(JobStatusChanged(job_id=job_id, status=JobStatus.CANCELLED.value))
        return self.jobs.get(job_id)
