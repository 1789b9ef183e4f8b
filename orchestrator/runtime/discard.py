"""Discarding a job: the director declines its work, and the job's branches leave the repository."""

from __future__ import annotations

from orchestrator.runtime.director import Director, JobStateError
from orchestrator.store.jobs import Job
from sandboxes.git.branches import branch_name
from sandboxes.git.repo import GitRepo


def discard(runner: Director, job_id: str) -> Job:
    """Delete a finished job's branches (its own and its agents'); the job and its events stay on record."""
    job = runner.jobs.get(job_id)
    if not job.status.finished:
        raise JobStateError(f"job {job_id} is {job.status.value}; cancel it first, then discard it")
    repo = GitRepo.open(job.task.repo, runner.settings.state_dir / "repos")
    deleted = repo.delete_job_branches(branch_name(job_id))
    runner.events.emit(job_id, "job.discarded", payload={"branches": deleted})
    return job
