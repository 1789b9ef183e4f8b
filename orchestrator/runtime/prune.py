"""`shipyard prune`: forget old finished jobs, but never one whose work exists only on its branches.

A job's record (report, events, checkpoints, queue entries, inbox entries, log file) is what
explains its branches; while a `shipyard/<job>` branch holds work not merged into the job's base
branch (or is pushed to the repository's remote), the record stays. An accepted job's work is in
its base branch: its branches are deleted and its record forgotten.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete

from orchestrator.config.settings import Settings
from orchestrator.engine.checkpoints import checkpointer
from orchestrator.engine.runner import open_repo
from orchestrator.runtime.queue import JobQueue
from orchestrator.store.db import events, jobs, notifications
from orchestrator.store.jobs import Job
from orchestrator.store.records import JobRecords
from sandboxes.git.branches import branch_name
from sandboxes.git.command import WorkspaceError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """Seconds in an age like 30d, 12h, 90m, 2w or 45s."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if match is None:
        raise ValueError(f"'{text}' is not an age: write a number and a unit, e.g. 30d, 12h, 90m, 2w")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass
class PruneResult:
    pruned: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # job id -> why it stays


def prune(settings: Settings, records: JobRecords, queue: JobQueue, older_than: float,
          dry_run: bool = False) -> PruneResult:
    """Forget the finished jobs last updated more than `older_than` seconds ago, unless their work is on
    branches that are not merged: an accepted job's branches are deleted with it."""
    cutoff = time.time() - older_than
    result = PruneResult()
    for job in records.jobs.list(limit=1_000_000):
        if not job.status.finished or job.updated_at >= cutoff:
            continue
        branches = job_branches(settings, job)
        if branches is None:
            result.kept[job.id] = f"cannot tell whether its branches exist in {job.task.repo}"
        elif branches and not _accepted(settings, job):
            shown = ", ".join(branches[:3]) + (" ..." if len(branches) > 3 else "")
            result.kept[job.id] = (f"its work is on branches not merged into {job.task.base} ({shown}): "
                                   f"`shipyard accept {job.id}` or `shipyard discard {job.id}` it first")
        else:
            if not dry_run:
                if branches:  # accepted: its commits are in the base branch, its own branches are spent
                    open_repo(settings, job.task.repo).delete_job_branches(branch_name(job.id))
                forget(settings, records, queue, job)
            result.pruned.append(job.id)
    return result


def _accepted(settings: Settings, job: Job) -> bool:
    """Whether the job's branch is merged into its base branch in the job's (local) repository."""
    if _is_url(job.task.repo):
        return False
    try:
        repo = open_repo(settings, job.task.repo)
        return repo.is_merged(branch_name(job.id), job.task.base)
    except WorkspaceError:
        return False


def job_branches(settings: Settings, job: Job) -> list[str] | None:
    """The job's branches in its repository (and its remote, for a URL); None if git cannot tell."""
    patterns = [f"refs/heads/{branch_name(job.id)}", f"refs/heads/{branch_name(job.id)}--*"]
    source = job.task.repo
    if not _is_url(source) and not Path(source).expanduser().is_dir():
        return []  # the repository is gone, and its branches with it
    try:
        repo = open_repo(settings, source)
    except WorkspaceError:
        return None if _is_url(source) else []
    found = _git(["--git-dir", str(repo.git_dir), "for-each-ref", "--format=%(refname:short)", *patterns])
    if found is None:
        return None
    if _is_url(source):
        remote = _git(["ls-remote", "--heads", source, *patterns])
        if remote is None:
            return None
        found += [line.split("refs/heads/", 1)[1] for line in remote if "refs/heads/" in line]
    return sorted(set(found))


def forget(settings: Settings, records: JobRecords, queue: JobQueue, job: Job) -> None:
    """Delete everything kept about the job; its branches are already gone."""
    with checkpointer(settings) as saver:
        saver.delete_thread(job.id)
    queue.forget(job.id)
    with records.engine.begin() as conn:
        conn.execute(delete(events).where(events.c.job_id == job.id))
        conn.execute(delete(notifications).where(notifications.c.job_id == job.id))
        conn.execute(delete(jobs).where(jobs.c.id == job.id))
    (settings.state_dir / "logs" / f"{job.id}.log").unlink(missing_ok=True)


def _git(args: list[str]) -> list[str] | None:
    done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=120, check=False)
    return done.stdout.splitlines() if done.returncode == 0 else None


def _is_url(source: str) -> bool:
    return "://" in source or re.match(r"^[\w.-]+@[\w.-]+:", source) is not None
