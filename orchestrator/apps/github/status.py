"""The one status comment per job: a plain summary, link-free, rebuilt from the job's events."""

from __future__ import annotations

import re

from pydantic import BaseModel

from orchestrator.store.event_log import Event
from orchestrator.store.jobs import Job, JobStatus

HEADER = "**Shipyard**"
WORDS = {
    JobStatus.QUEUED: "queued: waiting for a worker",
    JobStatus.PLANNING: "planning",
    JobStatus.AWAITING_APPROVAL: "waiting for approval of the plan",
    JobStatus.RUNNING: "working",
    JobStatus.SUCCEEDED: "done",
    JobStatus.FAILED: "failed",
    JobStatus.REJECTED: "stopped: plan rejected",
    JobStatus.CANCELLED: "cancelled",
}


class PlannedSubtask(BaseModel):
    title: str
    instructions: str
    files: list[str]
    status: str = "waiting"
    reason: str = ""


class Progress(BaseModel):
    """What the job's events have said so far, fed event by event. No running cost: it changes with every
    model call, and each change would be an edit of the comment."""

    last_event: int = 0
    summary: str = ""
    subtasks: dict[str, PlannedSubtask] = {}
    test_command: str | None = None
    tests_before: bool | None = None
    tests_after: bool | None = None
    tests_after_run: bool = False

    def add(self, event: Event) -> None:
        self.last_event = max(self.last_event, event.id or 0)
        payload = event.payload
        if event.kind in ("plan.ready", "plan.edited"):
            self.summary = payload["plan"]["summary"]
            self.subtasks = {s["id"]: PlannedSubtask(title=s["title"], instructions=s["instructions"],
                                                     files=s.get("files", [])) for s in payload["plan"]["subtasks"]}
        elif event.kind == "subtask.status" and event.subtask in self.subtasks:
            self.subtasks[event.subtask].status = payload["status"]
            self.subtasks[event.subtask].reason = payload.get("reason", "")
        elif event.kind == "merge" and payload.get("ok") and event.subtask in self.subtasks:
            self.subtasks[event.subtask].status = "merged"
        elif event.kind == "job.prepared":
            self.test_command = payload.get("test_command")
            self.tests_before = payload.get("tests_before")
        elif event.kind == "test.result" and payload.get("scope") == "job":
            self.tests_after, self.tests_after_run = payload.get("passed"), True


def status_comment(job: Job, progress: Progress, prefix: str, outcome: str | None = None) -> str:
    """The status comment's text; `outcome` is the last word once the job's result is delivered."""
    lines = [f"{HEADER} job {job.id}: {WORDS[job.status]}."]
    if progress.summary:
        lines += ["", f"Plan: {plain(progress.summary)}"]
        waiting = job.status == JobStatus.AWAITING_APPROVAL
        for sub_id, sub in progress.subtasks.items():
            line = f"- {sub_id} {plain(sub.title)}: {sub.status}"
            if sub.reason:
                line += f" ({plain(sub.reason, 200)})"
            lines.append(line)
            if waiting:
                lines.append(f"  {plain(sub.instructions, 400)}")
                if sub.files:
                    lines.append(f"  Files: {plain(', '.join(sub.files), 200)}")
        if waiting:
            lines += ["", f"Reply `{prefix} approve` to go ahead with this plan, or `{prefix} reject <why>` "
                          "to drop it."]
    if progress.test_command:
        lines += ["", f"Tests (`{plain(progress.test_command, 200)}`): before {_passed(progress.tests_before)}, "
                      f"after {_passed(progress.tests_after) if progress.tests_after_run else 'not run yet'}."]
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
