"""Every call the App makes into Shipyard's jobs (the Director, its job store, event log and queue), in one
place: the rest of the App sees only these methods."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from orchestrator.config.settings import Settings
from orchestrator.engine.report import Report
from orchestrator.runtime.director import Director
from orchestrator.store.events import DirectorAnswer, Event, GitHubRequest
from orchestrator.store.jobs import Job, JobLookupError, JobStatus, Task


class JobsAPI:
    def __init__(self, settings: Settings):
        self.director = Director(settings)

    @property
    def engine(self) -> Engine:
        """The job store's database, where the App keeps its own tables too."""
        return self.director.records.engine

    def get(self, job_id: str) -> Job | None:
        """The job; None once it is pruned."""
        try:
            return self.director.get(job_id)
        except JobLookupError:
            return None

    def events_after(self, job_id: str, after: int) -> list[Event]:
        return self.director.events(job_id, after=after)

    def report(self, job_id: str) -> Report | None:
        return self.director.report(job_id)

    def submit(self, task: Task) -> Job:
        """Record a job (not queued yet: `launch` does that, once the App has noted it)."""
        return self.director.submit(task)

    def launch(self, job_id: str, request: dict[str, Any]) -> None:
        """Note where on GitHub the job comes from, and queue it for the workers."""
        self.director.records.events.append(GitHubRequest(job_id=job_id, **request))
        self.requeue(job_id)

    def requeue(self, job_id: str) -> None:
        """Queue the job, if it is not already (an earlier try may have stopped just before)."""
        self.director.enqueue(job_id)

    def waiting_for_approval(self, job_ids: list[str]) -> list[str]:
        return [j for j in job_ids if (job := self.get(j)) is not None and job.status == JobStatus.AWAITING_APPROVAL]

    def waiting_for_budget(self, job_ids: list[str]) -> list[str]:
        return [j for j in job_ids if (job := self.get(j)) is not None and job.status == JobStatus.AWAITING_BUDGET]

    def topup(self, job_id: str, amount: float, user: str) -> None:
        """More budget for a campaign waiting for it; a worker runs it on."""
        self.director.topup_later(job_id, amount, by=user)

    def answer(self, job_id: str, answer: dict[str, Any], user: str) -> None:
        """Approve, reject or send back (replan) the job's waiting plan for `user`; a worker runs it on."""
        self.director.record_answer(job_id, DirectorAnswer(action=answer["action"], reason=answer.get("reason", ""),
                                                           by=user))
        self.director.answer_later(job_id)

    def close(self) -> None:
        self.director.close()
