"""Telling the director that a job finished, failed or waits for them.

Always an event and an entry in `shipyard inbox`; then every configured sink: a webhook
(JSON POST, retried with backoff), a shell command (the JSON on stdin), and GitHub
comments through whatever implements `GitHubCommenter` (the GitHub App).
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from typing import Literal, Protocol

import httpx
from pydantic import BaseModel
from sqlalchemy import Engine, insert, select, update

from orchestrator.config.settings import NotificationSettings
from orchestrator.store.db import notifications
from orchestrator.store.event_log import EventLog
from orchestrator.store.events import NotificationFailed, NotificationRecorded, NotificationSent
from orchestrator.store.jobs import Job, JobStatus

log = logging.getLogger(__name__)

Kind = Literal["finished", "failed", "waiting", "digest"]


class Notification(BaseModel):
    kind: Kind
    message: str
    job: Job
    ts: float


class InboxEntry(BaseModel):
    id: int
    job_id: str
    kind: str
    status: str
    message: str
    created_at: float
    read: bool


class SinkError(RuntimeError):
    """A sink could not deliver a notification (after its own retries)."""


class Sink(Protocol):
    name: str

    def send(self, notification: Notification) -> None: ...


def notification_for(job: Job) -> Notification | None:
    """What to tell about the job in its present state; None while it is queued or running."""
    if job.status == JobStatus.AWAITING_BUDGET:
        kind: Kind = "waiting"
        message = f"campaign {job.id} waits for budget: shipyard campaign topup {job.id} USD"
    elif job.status == JobStatus.AWAITING_APPROVAL:
        kind = "waiting"
        message = f"job {job.id} waits for your approval of its plan: shipyard approve {job.id}"
    elif job.status == JobStatus.FAILED:
        kind, message = "failed", f"job {job.id} failed: {job.error or 'see shipyard show ' + job.id}"
    elif job.status.finished:
        kind, message = "finished", f"job {job.id} {job.status.label}"
        branch = (job.report or {}).get("job_branch")
        if job.status.delivered and branch:
            message += f": branch {branch}"
        if job.status in (JobStatus.UNVERIFIED, JobStatus.PARTIAL) and job.error:
            message += f" ({job.error})"
    else:
        return None
    return Notification(kind=kind, message=message, job=job, ts=time.time())


class Notifier:
    def __init__(self, engine: Engine, events: EventLog, sinks: list[Sink]):
        self.engine = engine
        self.events = events
        self.sinks = sinks

    def record(self, notification: Notification) -> None:
        """The event and the inbox entry: these never depend on a sink being up."""
        with self.engine.begin() as conn:
            conn.execute(insert(notifications).values(
                job_id=notification.job.id, kind=notification.kind, status=notification.job.status.value,
                message=notification.message, created_at=notification.ts, read=False,
            ))
        self.events.append(NotificationRecorded(job_id=notification.job.id, about=notification.kind,
                                                message=notification.message))

    def deliver(self, sink: Sink, notification: Notification) -> None:
        """Send through one sink; a failure is logged and kept as an event, never raised."""
        try:
            sink.send(notification)
        except Exception as exc:  # noqa: BLE001 - a broken sink must not fail the job or the other sinks
            log.warning("notification sink %s failed for job %s: %s", sink.name, notification.job.id, exc)
            self.events.append(NotificationFailed(job_id=notification.job.id, sink=sink.name, error=str(exc)))
            return
        self.events.append(NotificationSent(job_id=notification.job.id, sink=sink.name))


class WebhookSink:
    """POSTs the notification as JSON; retries network errors, 429 and 5xx with doubling pauses."""

    name = "webhook"

    def __init__(self, url: str, attempts: int = 5, timeout: float = 10.0, pause: float = 0.5):
        self.url = url
        self.attempts = attempts
        self.timeout = timeout
        self.pause = pause

    def send(self, notification: Notification) -> None:
        body = notification.model_dump(mode="json")
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.pause * 2 ** (attempt - 1))
            try:
                response = httpx.post(self.url, json=body, timeout=self.timeout,
                                      headers={"User-Agent": "shipyard-notify"})
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code < 300:
                return
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break  # the receiver refuses this request: sending it again will not help
        raise SinkError(f"webhook {self.url}: {problem} after {attempt + 1} attempt(s)")


class CommandSink:
    """Runs a shell command with the notification JSON on stdin (e.g. notify-send, mail, a chat CLI)."""

    name = "command"

    def __init__(self, command: str, timeout: float = 60.0):
        self.command = command
        self.timeout = timeout

    def send(self, notification: Notification) -> None:
        try:
            result = subprocess.run(self.command, shell=True, input=notification.model_dump_json(), text=True,
                                    check=False, capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise SinkError(f"command `{self.command}` ran longer than {self.timeout:.0f}s") from None
        if result.returncode != 0:
            raise SinkError(f"command `{self.command}` exited {result.returncode}: {result.stderr.strip()[-300:]}")


class GitHubCommenter(Protocol):
    """What the GitHub App provides: a comment on the issue or pull request a job came from."""

    def comment(self, job: Job, body: str) -> None: ...


class GitHubCommentSink:
    name = "github"

    def __init__(self, commenter: GitHubCommenter):
        self.commenter = commenter

    def send(self, notification: Notification) -> None:
        self.commenter.comment(notification.job, comment_body(notification))


def comment_body(notification: Notification) -> str:
    job = notification.job
    lines = [f"**Shipyard** — {notification.message}"]
    if job.report:
        lines.append(f"\nBranch `{job.report.get('job_branch')}`")
    if job.error and notification.kind == "failed":
        lines.append(f"\n```\n{job.error[-2000:]}\n```")
    return "\n".join(lines)


def configured_sinks(settings: NotificationSettings) -> list[Sink]:
    sinks: list[Sink] = []
    if settings.webhook_url:
        sinks.append(WebhookSink(settings.webhook_url, settings.webhook_attempts, settings.webhook_timeout))
    if settings.command:
        sinks.append(CommandSink(settings.command))
    return sinks


class Inbox:
    """`shipyard inbox`: the notifications, newest first, each marked read once shown."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def entries(self, unread_only: bool = True, limit: int = 50) -> list[InboxEntry]:
        query = select(notifications).order_by(notifications.c.id.desc()).limit(limit)
        if unread_only:
            query = query.where(notifications.c.read.is_(False))
        with self.engine.connect() as conn:
            return [InboxEntry.model_validate(row._asdict()) for row in conn.execute(query)]

    def mark_read(self, ids: list[int]) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(update(notifications).where(notifications.c.id.in_(ids)).values(read=True))


def announcer(notifier: Notifier) -> Callable[[Job, str], None]:
    """What the engine calls with a campaign's digest after each iteration: the inbox, then every sink."""

    def announce(job: Job, message: str) -> None:
        notification = Notification(kind="digest", message=message, job=job, ts=time.time())
        notifier.record(notification)
        for sink in notifier.sinks:
            notifier.deliver(sink, notification)

    return announce
