"""What a webhook event asks of Shipyard: start a job, approve or reject a plan, or nothing."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from orchestrator.apps.github.payloads import (
    InstallationEvent,
    IssueCommentEvent,
    IssuesEvent,
    ReviewCommentEvent,
    WebhookEvent,
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


class Run(BaseModel):
    kind: Literal["run"] = "run"
    thread: Thread
    user: str
    request: str  # what the command asked for; empty when the issue itself is the request
    title: str
    body: str
    review: ReviewSpot | None = None


class Approve(BaseModel):
    kind: Literal["approve"] = "approve"
    thread: Thread
    user: str


class Reject(BaseModel):
    kind: Literal["reject"] = "reject"
    thread: Thread
    user: str
    reason: str


class InstallationChanged(BaseModel):
    kind: Literal["installation"] = "installation"
    installation: int
    action: str
    account: str


class Ignore(BaseModel):
    kind: Literal["ignore"] = "ignore"
    reason: str


Intent = Run | Approve | Reject | InstallationChanged | Ignore


def command_text(body: str | None, prefix: str) -> str | None:
    """What follows the command prefix when a line of the comment starts with it (the rest of the
    comment included); None when the comment is no command. Quoted lines (`> /shipyard ...`) are not."""
    pattern = re.compile(rf"^[ \t]*{re.escape(prefix)}(?=\s|$)(.*)", re.MULTILINE | re.DOTALL | re.IGNORECASE)
    found = pattern.search(body or "")
    return found.group(1).strip() if found else None


def interpret(event: WebhookEvent, settings: GitHubSettings) -> Intent:
    if isinstance(event, InstallationEvent):
        return InstallationChanged(installation=event.installation.id, action=event.action,
                                   account=event.installation.account.login)
    if isinstance(event, IssuesEvent):
        label = event.label.name if event.label else ""
        if event.action != "labeled" or label.lower() != settings.trigger_label.lower():
            return Ignore(reason=f"issues.{event.action} {label}".strip())
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
    return Run(thread=thread, user=user, request=text, title=title, body=body, review=review)
