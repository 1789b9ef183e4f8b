"""Every job and its folded progress, kept up to date by reading only what changed.

One poll is one cheap look at the store (`Director.activity`: the latest event id, the latest
job update, the count). Only when that moves are the jobs listed again or the new events of
all jobs read — one query for all of them — and folded into each job's view. An idle store
costs two tiny queries a poll, whatever the number of jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Job

if TYPE_CHECKING:
    from orchestrator.runtime.director import Director

BATCH = 5000  # events read at a time while catching up: a store of any size loads without a long stall


@dataclass
class Change:
    """What one poll brought: the jobs whose row or progress moved; whether the list itself did."""

    jobs: set[str] = field(default_factory=set)
    listed: bool = False

    def __bool__(self) -> bool:
        return bool(self.jobs) or self.listed


class JobFeed:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.views: dict[str, JobView] = {}
        self.cursor = 0  # the last event folded in, of any job
        self._stamp: tuple[float, int] | None = None

    def view(self, job_id: str) -> JobView:
        found = self.views.get(job_id)
        if found is None:
            found = self.views[job_id] = JobView(job_id)
        return found

    def poll(self, director: Director) -> Change:
        """Bring the jobs and their views up to date (runs in a thread)."""
        latest, *stamp = director.activity()
        change = Change()
        if tuple(stamp) != self._stamp:
            self._stamp = (stamp[0], stamp[1])
            fresh = {job.id: job for job in director.list(limit=None)}
            change.listed = fresh.keys() != self.jobs.keys()
            change.jobs |= {i for i, job in fresh.items() if self.jobs.get(i) != job}
            self.jobs = fresh
            for gone in set(self.views) - set(fresh):
                del self.views[gone]
        while self.cursor < latest:
            batch = director.events_since(self.cursor, BATCH)
            if not batch:
                break
            for event in batch:
                # A job created after the listing above is listed on the next poll, its view ready.
                self.view(event.job_id).apply(event)
                change.jobs.add(event.job_id)
            self.cursor = batch[-1].id or self.cursor
        return change
