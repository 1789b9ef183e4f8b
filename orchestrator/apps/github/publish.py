"""Publishing a finished job's result: its branch pushed and a pull request opened, or its commits on the
branch of the pull request it came from; or, when there is nothing to publish, the reason why.

Publishing is its own step, kept in the store and tried again while GitHub or git has trouble; every
part of it can be done twice without harm (a push of the same commits, a pull request found before one
is opened). Its result is the last word of the status comment and, where the requester should hear of
it, a notice for them; posting those is the next step, the desk's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from orchestrator.apps.github.client import GitHub
from orchestrator.apps.github.git_remote import AppGit, NotFastForward, PushRefused
from orchestrator.apps.github.jobs_api import JobsAPI
from orchestrator.apps.github.records import GitHubJob
from orchestrator.apps.github.report_markdown import report_markdown
from orchestrator.apps.github.status import defuse, plain
from orchestrator.engine.report import Report
from orchestrator.store.jobs import Job, JobStatus
from sandboxes.git.branches import branch_name
from sandboxes.git.repo import GitRepo


class Published(BaseModel):
    outcome: str  # the status comment's last word
    notice: str | None = None  # a comment that tells the requester
    pushed: str | None = None  # the sha now at the head of the pull request's branch, for a follow-up


class PullWatcher(Protocol):
    """Who looks after the checks of the pull requests the App opens (ci.py)."""

    def pull_coming(self, record: GitHubJob, job: Job, branch: str) -> None: ...

    def pull_opened(self, job_id: str, number: int) -> None: ...


class Publisher:
    def __init__(self, github: GitHub, git: AppGit, jobs: JobsAPI, watcher: PullWatcher, clones: Path):
        self.github = github
        self.git = git
        self.jobs = jobs
        self.watcher = watcher
        self.clones = clones

    def publish(self, record: GitHubJob, job: Job) -> Published:
        """Push and open the pull request, or say why not. Raises when GitHub or git may do better later;
        a refusal for good (a repository rule) is the result, with GitHub's words."""
        report = self.jobs.report(job.id)
        if report is None or not deliverable(report):
            return _explain(record, job, report)
        try:
            return self._push(record, job, report)
        except PushRefused as refused:
            return unpublished(record, job, refused.summary, refused.remote)

    def _push(self, record: GitHubJob, job: Job, report: Report) -> Published:
        clone = GitRepo.open(job.task.repo, self.clones)
        installation, branch = record.installation, report.job_branch
        body = report_markdown(report)
        failing = caveat(report)
        if record.push_to is not None:
            try:
                sha = self.git.push(installation, clone, branch, record.clone_url, to=record.push_to)
            except NotFastForward as exc:  # the branch moved on meanwhile: keep the work visible anyway
                self.git.push(installation, clone, branch, record.clone_url)
                outcome = (f"Could not push to `{record.push_to}` ({defuse(str(exc))}); the commits are on the "
                           f"branch `{branch}` instead.")
                return Published(outcome=outcome, notice=f"@{record.requested_by} {outcome}")
            outcome = f"Pushed the changes to `{record.push_to}`{failing}."
            return Published(outcome=outcome, notice=f"@{record.requested_by} {outcome}\n\n{body}", pushed=sha)
        self.watcher.pull_coming(record, job, branch)
        self.git.push(installation, clone, branch, record.clone_url)
        pull = self.github.find_pull(installation, record.repo, branch) or self.github.open_pull(
            installation, record.repo, title=record.title, head=branch, base=job.task.base,
            body=f"Closes #{record.number}.\n\n{body}", draft=not report.succeeded)
        self.watcher.pull_opened(job.id, pull.number)
        if not failing:
            return Published(outcome=f"Opened pull request #{pull.number}.")
        draft = " as a draft" if not report.succeeded else ""
        return Published(outcome=f"Opened pull request #{pull.number}{draft}{failing.replace(', ', ': ', 1)}.")


def caveat(report: Report) -> str:
    """What a reader of the pull request must know first: "" for verified work."""
    if report.verified:
        return ""
    if report.status == "unverified":
        return ", unverified: no test checked it"
    if report.status == "partial":
        return ", in part: some subtasks failed"
    return ", though the tests fail on it"


def unpublished(record: GitHubJob, job: Job, why: str, remote: list[str] | None = None) -> Published:
    """The result could not be published, for good: GitHub's reason, in its own words where it gave some."""
    lines = [f"Could not publish the result: {plain(why, 500)}"]
    if remote:
        lines += ["GitHub said:", "```", *(defuse(line).replace("```", "'''") for line in remote), "```"]
    lines.append(f"The work stays on branch `{branch_name(job.id)}` on the Shipyard host.")
    outcome = "\n".join(lines)
    return Published(outcome=outcome, notice=f"@{record.requested_by} job {job.id} is done, but its result could "
                                             f"not be published.\n\n{outcome}")


def deliverable(report: Report) -> bool:
    """Changes worth a pull request: the job succeeded (verified or not), in part (a draft), or failed only
    because the tests fail at the end (a draft)."""
    if not report.diff_stat.files:
        return False
    if report.succeeded or report.status == "partial":
        return True
    merged = bool(report.subtasks) and all(sub.status == "merged" for sub in report.subtasks)
    after = report.tests_after
    return merged and not report.stop_reason and after is not None and after.passed is False


def _explain(record: GitHubJob, job: Job, report: Report | None) -> Published:
    if job.status == JobStatus.REJECTED:
        return Published(outcome=f"Stopped: {plain(job.error or 'the plan was rejected', 500)}.")
    if job.status == JobStatus.CANCELLED:
        return Published(outcome="Cancelled.")
    if report is not None and report.succeeded:
        return Published(outcome="Done: nothing needed to change.")
    why = _failure(job, report)
    return Published(outcome=f"Failed: {why} The work so far stays on branch `{branch_name(job.id)}` on the "
                             "Shipyard host.", notice=f"@{record.requested_by} job {job.id} failed: {why}")


def _failure(job: Job, report: Report | None) -> str:
    """Why the job failed, in a sentence or two."""
    if report is None or report.stop_reason:
        return f"{plain((report.stop_reason if report else None) or job.error or 'it stopped', 500)}."
    failed = [f"{sub.id} ({plain(sub.reason or sub.status, 200)})" for sub in report.subtasks
              if sub.status != "merged"]
    if failed:
        return f"subtasks not done: {'; '.join(failed)}."
    return "the tests fail after the changes."
