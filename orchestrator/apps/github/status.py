"""The one status comment per job: a plain summary, link-free, rebuilt from the job's events."""

from __future__ import annotations

import re

from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Job, JobStatus

HEADER = "**Shipyard**"
WORDS = {
    JobStatus.QUEUED: "queued: waiting for a worker",
    JobStatus.PLANNING: "planning",
    JobStatus.AWAITING_APPROVAL: "waiting for approval of the plan",
    JobStatus.AWAITING_BUDGET: "waiting for budget",
    JobStatus.RUNNING: "working",
    JobStatus.SUCCEEDED: "done",
    JobStatus.UNVERIFIED: "done, unverified: no test checked it",
    JobStatus.PARTIAL: "done in part: some subtasks failed",
    JobStatus.FAILED: "failed",
    JobStatus.REJECTED: "stopped: plan rejected",
    JobStatus.CANCELLED: "cancelled",
}


def status_comment(job: Job, progress: JobView, prefix: str, outcome: str | None = None) -> str:
    """The status comment's text; `outcome` is the last word once the job's result is delivered. It carries
    no running cost: that changes with every model call, and each change would be an edit of the comment."""
    what = "campaign" if job.task.campaign else "job"
    lines = [f"{HEADER} {what} {job.id}: {WORDS.get(job.status, job.status.value)}."]
    if job.task.campaign and progress.figures:
        shown = " → ".join("-" if f is None else f"{f:g}" for f in progress.figures)
        lines += ["", f"Verifier (`{plain(job.task.campaign.verifier, 200)}`): {shown}"]
        lines += [f"- {plain(digest, 300)}" for digest in progress.digests[-5:]]
        if job.status == JobStatus.AWAITING_BUDGET:
            lines += ["", f"Reply `{prefix} topup <USD>` to go on."]
    for back in progress.sent_back:
        lines += ["", f"Plan {back.round} was sent back: {plain(back.note, 400)}"]
    if progress.summary:
        lines += ["", f"Plan: {plain(progress.summary)}"]
        waiting = job.status == JobStatus.AWAITING_APPROVAL
        for sub_id, sub in progress.subtasks.items():
            status = "waiting" if sub.status == "queued" else sub.status
            line = f"- {sub_id} {plain(sub.title)}: {status}"
            if sub.reason:
                line += f" ({plain(sub.reason, 200)})"
            lines.append(line)
            if waiting:
                lines.append(f"  {plain(sub.instructions, 400)}")
                if sub.files:
                    lines.append(f"  Files: {plain(', '.join(sub.files), 200)}")
        if waiting:
            lines += ["", f"Reply `{prefix} approve` to go ahead with this plan, `{prefix} reject <why>` to drop "
                          f"it, or `{prefix} replan <what is wrong>` to have it planned again."]
    if progress.test_command:
        after = progress.tests_after
        lines += ["", f"Tests (`{plain(progress.test_command, 200)}`): before {_passed(progress.tests_before)}, "
                      f"after {_passed(after.passed) if after is not None else 'not run yet'}."]
    if outcome:
        lines += ["", outcome]
    return "\n".join(lines)


def plain(text: str, limit: int = 300) -> str:
    """Text from agents or users on one line, cut to `limit`, its @mentions defused so that nobody gets pinged."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return defuse(flat)


def defuse(text: str) -> str:
    """Text written by others (agents, users, git, GitHub) with its @mentions broken by a zero-width space: quoted
    in a comment, it pings nobody."""
    return re.sub(r"@(?=\w)", "@\u200b", text)


def _passed(passed: bool | None) -> str:
    return {True: "passed", False: "failing", None: "no result"}[passed]
