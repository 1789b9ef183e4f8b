"""What a webhook event asks of Shipyard: start a job, approve, reject or send back a plan, look at a check's
result, or nothing."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from orchestrator.apps.github.payloads import (
    CheckRunEvent,
    InstallationEvent,
    IssueCommentEvent,
    IssuesEvent,
    ReviewCommentEvent,
    StatusEvent,
    WebhookEvent,
    WorkflowRunEvent,
)
from orchestrator.config.settings import GitHubSettings


class Thread(BaseModel):
    """An issue or pull request conversation, where Shipyard answers."""

    installation: int
    repo: str  # owner/name
    number: int
    is_pull: bool


class ReviewSpot(BaseModel):
    """Where in a pull request's diff a review comment was made."""

    path: str
    line: int | None
    diff_hunk: str


class CampaignAsk(BaseModel):
    """`/shipyard campaign GOAL --until COMMAND`: a goal held by its verifier."""

    goal: str
    verifier: str


class ThreadIntent(BaseModel):
    """What someone asked for in a thread: by labelling the issue, or by a command in a comment."""

    thread: Thread
    user: str


class Run(ThreadIntent):
    kind: Literal["run"] = "run"
    request: str  # what the command asked for; empty when the issue itself is the request
    title: str
    body: str
    review: ReviewSpot | None = None
    campaign: CampaignAsk | None = None


class Refusal(BaseModel):
    """Why a Run cannot start a job, fit for a comment."""

    reason: str


class Approve(ThreadIntent):
    kind: Literal["approve"] = "approve"


class Reject(ThreadIntent):
    kind: Literal["reject"] = "reject"
    reason: str


class Replan(ThreadIntent):
    """`/shipyard replan <what is wrong>`: the waiting plan goes back to the planner with the note."""

    kind: Literal["replan"] = "replan"
    note: str


class TopUp(ThreadIntent):
    """`/shipyard topup USD`: more budget for the campaign of this thread that waits for it."""

    kind: Literal["topup"] = "topup"
    amount: float


class InstallationChanged(BaseModel):
    kind: Literal["installation"] = "installation"
    installation: int
    action: str
    account: str


class CheckResult(BaseModel):
    """A check on a commit ended: a GitHub Actions workflow run, another App's check run, or a commit status."""

    kind: Literal["check"] = "check"
    installation: int
    repo: str
    branches: list[str]  # the branches it may be about
    sha: str
    name: str
    passed: bool
    run_id: int | None = None  # a workflow run's: its jobs' logs can be read, its failed jobs run again
    attempt: int = 1  # the workflow run's attempt: 2 and more are re-runs
    details: str = ""  # what the check says about itself (another App's output, a status's description)


class Ignore(BaseModel):
    kind: Literal["ignore"] = "ignore"
    reason: str


Intent = Run | Approve | Reject | Replan | TopUp | InstallationChanged | CheckResult | Ignore

# Check conclusions that call for a fix; the others (cancelled, skipped, neutral, stale...) call for nothing.
FAILED = frozenset({"failure", "timed_out", "startup_failure"})
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def command_text(body: str | None, prefix: str) -> str | None:
    """What follows the command prefix when a line of the comment starts with it (the rest of the
    comment included); None when the comment is no command. Quoted lines (`> /shipyard ...`) and lines
    inside a fenced code block (an example, a pasted log) are not."""
    pattern = re.compile(rf"[ \t]*{re.escape(prefix)}(?=\s|$)(.*)", re.IGNORECASE)
    lines = (body or "").splitlines()
    fence = ""
    for n, line in enumerate(lines):
        marks = _FENCE.match(line)
        if fence:  # closed by a run of the same mark at least as long, with nothing after it
            if marks and marks.group(1).startswith(fence) and not marks.group(2).strip():
                fence = ""
        elif marks:
            fence = marks.group(1)
        elif found := pattern.match(line):
            return "\n".join([found.group(1), *lines[n + 1:]]).strip()
    return None


def interpret(event: WebhookEvent, settings: GitHubSettings) -> Intent:
    if isinstance(event, InstallationEvent):
        return InstallationChanged(installation=event.installation.id, action=event.action,
                                   account=event.installation.account.login)
    if isinstance(event, WorkflowRunEvent | CheckRunEvent | StatusEvent):
        return _check_result(event)
    if isinstance(event, IssuesEvent):
        label = event.label.name if event.label else ""
        if event.action != "labeled" or label.lower() != settings.trigger_label.lower():
            return Ignore(reason=f"issues.{event.action} {label}".strip())
        if event.sender.is_bot:  # automation labelling issues must not spend money on jobs nobody asked for
            return Ignore(reason=f"label added by the bot {event.sender.login}")
        thread = Thread(installation=event.installation.id, repo=event.repository.full_name,
                        number=event.issue.number, is_pull=event.issue.pull_request is not None)
        return Run(thread=thread, user=event.sender.login, request="", title=event.issue.title,
                   body=event.issue.body or "")
    if event.action != "created":
        return Ignore(reason=f"comment {event.action}")
    if event.comment.user.is_bot:  # Shipyard's own comments among them: they mention the commands
        return Ignore(reason=f"comment by the bot {event.comment.user.login}")
    text = command_text(event.comment.body, settings.command_prefix)
    if text is None:
        return Ignore(reason="no command in the comment")
    if isinstance(event, IssueCommentEvent):
        issue = event.issue
        thread = Thread(installation=event.installation.id, repo=event.repository.full_name, number=issue.number,
                        is_pull=issue.pull_request is not None)
        title, body, review = issue.title, issue.body or "", None
    else:
        assert isinstance(event, ReviewCommentEvent)
        pull, comment = event.pull_request, event.comment
        thread = Thread(installation=event.installation.id, repo=event.repository.full_name, number=pull.number,
                        is_pull=True)
        title, body = pull.title, pull.body or ""
        review = ReviewSpot(path=comment.path, line=comment.line, diff_hunk=comment.diff_hunk)
    user = event.comment.user.login
    word, *rest = text.split(None, 1) or [""]
    if word.lower() == "approve":
        return Approve(thread=thread, user=user)
    if word.lower() == "reject":
        return Reject(thread=thread, user=user, reason=" ".join(rest).strip())
    if word.lower() == "replan":
        return Replan(thread=thread, user=user, note=" ".join(rest).strip())
    if word.lower() == "topup":
        amount = _amount(" ".join(rest))
        if amount is None:
            return Ignore(reason=f"`topup` needs an amount of USD, not {' '.join(rest)[:40]!r}")
        return TopUp(thread=thread, user=user, amount=amount)
    campaign = _campaign(" ".join(rest)) if word.lower() == "campaign" else None
    return Run(thread=thread, user=user, request=campaign.goal if campaign else text, title=title, body=body,
               review=review, campaign=campaign)


def _campaign(text: str) -> CampaignAsk | None:
    goal, found, verifier = text.partition("--until")
    verifier = verifier.strip().splitlines()[0].strip().strip("`") if verifier.strip() else ""
    if not found or not goal.strip() or not verifier:
        return None
    return CampaignAsk(goal=goal.strip(), verifier=verifier)


def _amount(text: str) -> float | None:
    try:
        amount = float(text.strip().lstrip("$").split()[0])
    except (ValueError, IndexError):
        return None
    return amount if amount > 0 else None


def _check_result(event: WorkflowRunEvent | CheckRunEvent | StatusEvent) -> CheckResult | Ignore:
    where = {"installation": event.installation.id, "repo": event.repository.full_name}
    if isinstance(event, StatusEvent):
        if event.state not in ("success", "failure", "error"):
            return Ignore(reason=f"status {event.state}")
        return CheckResult(**where, branches=[b.name for b in event.branches], sha=event.sha, name=event.context,
                           passed=event.state == "success", details=event.description or "")
    if event.action != "completed":
        return Ignore(reason=f"check {event.action}")
    if isinstance(event, WorkflowRunEvent):
        run = event.workflow_run
        head = run.head_repository.full_name if run.head_repository else None
        if run.head_branch is None or head != event.repository.full_name:
            return Ignore(reason="a workflow run on a fork or a tag")
        if run.conclusion != "success" and run.conclusion not in FAILED:
            return Ignore(reason=f"workflow run {run.conclusion}")
        return CheckResult(**where, branches=[run.head_branch], sha=run.head_sha, name=run.name or f"run {run.id}",
                           passed=run.conclusion == "success", run_id=run.id, attempt=run.run_attempt)
    check = event.check_run
    if check.app is not None and check.app.slug == "github-actions":
        return Ignore(reason="an Actions job: its workflow run is looked at")
    branch = check.check_suite.head_branch if check.check_suite else None
    if branch is None or (check.conclusion != "success" and check.conclusion not in FAILED):
        return Ignore(reason=f"check run {check.conclusion} on {branch or 'a fork'}")
    output = check.output
    details = "\n\n".join(part for part in (output.title, output.summary, output.text) if part)
    return CheckResult(**where, branches=[branch], sha=check.head_sha, name=check.name,
                       passed=check.conclusion == "success", details=details)
