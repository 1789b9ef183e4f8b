"""The job queue: a DBOS queue of workflows, each running one job up to its end or its approval wait.

DBOS (dbos-transact) keeps the queue in a database it migrates itself: a SQLite file in the
state dir by default, or the PostgreSQL database of the job store, with one code path for
both. It dequeues atomically (one worker per workflow), caps the jobs each worker runs, and
refuses a second workflow for a job while one is queued or running (its deduplication id
is the job id). The enqueuing side here is a DBOSClient, so `shipyard submit` and
`shipyard approve` never start a DBOS runtime; workers (orchestrator.runtime.worker) do.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.config.settings import Settings
from orchestrator.store.db import is_postgres, libpq_url, store_url
from orchestrator.store.event_log import EventLog
from orchestrator.store.events import Event, JobFinished, JobQueued, JobWaiting
from orchestrator.store.jobs import Job, JobStore

if TYPE_CHECKING:
    from dbos import DBOSClient

QUEUE_NAME = "shipyard-jobs"
WORKFLOW_NAME = "shipyard.advance"
APP_NAME = "shipyard"
# Workers run only the workflows of their own version: change it when the workflow's arguments change.
APP_VERSION = "shipyard-1"
# The events that end one advance of a job: it finished (any way) or waits for the director.
SETTLING_EVENTS = (JobFinished, JobWaiting)

Action = Literal["run", "answer"]


def system_url(settings: Settings) -> str:
    """Where DBOS keeps the queue: next to the jobs."""
    url = store_url(settings)
    if is_postgres(url):
        return libpq_url(url)
    return f"sqlite:///{settings.state_dir / 'queue.db'}"


class JobQueue:
    def __init__(self, settings: Settings, jobs: JobStore, events: EventLog):
        self.settings = settings
        self.jobs = jobs
        self.events = events
        self._client: DBOSClient | None = None

    def enqueue(self, job_id: str, action: Action = "run", answer: dict[str, Any] | None = None) -> Event | None:
        """Queue the job for a worker (to run it, or to run it on with an answer to its approval wait);
        None if the job is already queued or running."""
        from dbos import error  # imported when used: every command builds a Director, few enqueue

        workflow_id = f"{job_id}.{action}.{secrets.token_hex(3)}"
        try:
            self.client().enqueue(
                {"queue_name": QUEUE_NAME, "workflow_name": WORKFLOW_NAME, "workflow_id": workflow_id,
                 "app_version": APP_VERSION, "deduplication_id": job_id},
                job_id, action, answer,
            )
        except error.DBOSQueueDeduplicatedError:
            return None
        return self.events.append(JobQueued(job_id=job_id, action=action, workflow=workflow_id))

    def holds(self, job_id: str) -> bool:
        """Whether the job came through the queue (and so goes back to it after its approval wait)."""
        return self.events.has(job_id, JobQueued)

    def wait(self, job_id: str, after: int | None) -> Job:
        """Follow the job on whatever worker runs it until it finishes or waits again."""
        for event in self.events.follow(job_id, after=after or 0):
            if isinstance(event, SETTLING_EVENTS):
                break
        return self.jobs.get(job_id)

    def forget(self, job_id: str) -> None:
        """Delete the job's workflows from the queue's records."""
        client = self.client()
        ids = [w.workflow_id for w in client.list_workflows(workflow_id_prefix=f"{job_id}.")]
        if ids:
            client.delete_workflows(ids)

    def client(self) -> DBOSClient:
        if self._client is None:
            from dbos import DBOS, DBOSClient

            url = system_url(self.settings)
            DBOS.migrate(url)
            self._client = DBOSClient(system_database_url=url)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.destroy()
            self._client = None

