"""How the jobs list orders and filters jobs: what needs the director first, then what runs, then the rest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Job, JobStatus

NEEDS_ME, RUNNING, REST = 0, 1, 2
GROUP_NAMES = {NEEDS_ME: "needs me", RUNNING: "running", REST: "done"}


def group(job: Job, view: JobView) -> int:
    """Plans and campaigns waiting, work finished but not accepted, failures not discarded: the director's."""
    settled = view.discarded or bool(view.accepted and view.accepted.ok)
    if job.status.waiting or ((job.status.delivered or job.status == JobStatus.FAILED) and not settled):
        return NEEDS_ME
    if not job.status.finished:
        return RUNNING
    return REST


def ordered(jobs: list[Job], views: Callable[[str], JobView]) -> list[Job]:
    """Needs me, running, the rest; the newest first within each."""
    return sorted(jobs, key=lambda job: (group(job, views(job.id)), -job.created_at, job.id))


@dataclass(frozen=True)
class Filter:
    key: str
    name: str
    keeps: Callable[[Job, JobView], bool]


FILTERS = [
    Filter("1", "all", lambda job, view: True),
    Filter("2", "needs me", lambda job, view: group(job, view) == NEEDS_ME),
    Filter("3", "running", lambda job, view: group(job, view) == RUNNING),
    Filter("4", "failed", lambda job, view: job.status in (JobStatus.FAILED, JobStatus.CANCELLED,
                                                           JobStatus.REJECTED)),
    Filter("5", "campaigns", lambda job, view: job.task.campaign is not None),
]


def matches(job: Job, view: JobView, words: list[str]) -> bool:
    """Every word is in the job's task, repo, id or branch (case-insensitive)."""
    haystack = " ".join((job.task.instruction, job.task.repo, job.id, view.job_branch or f"shipyard/{job.id}",
                         job.task.base)).lower()
    return all(word in haystack for word in words)


def short_id(job_id: str) -> str:
    """The random tail of an id (`20260105-093000-5a1f` → `5a1f`): enough to tell jobs apart on screen."""
    return job_id.rsplit("-", 1)[-1]
