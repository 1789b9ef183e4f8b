"""Notifications: a webhook receiving real HTTP from a worker, and the sinks on their own."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jobkit import Deployment, wait_for

from orchestrator.runtime.notify import CommandSink, SinkError, WebhookSink, notification_for
from orchestrator.store.jobs import Job, JobStatus, Task


class Receiver:
    """A local HTTP endpoint that answers 500 to its first `fail_first` POSTs, then 200."""

    def __init__(self, fail_first: int = 0, status: int = 500):
        self.fail_first = fail_first
        self.status = status
        self.accepted: list[dict[str, Any]] = []
        self.refused = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    fail = receiver.refused < receiver.fail_first
                    if fail:
                        receiver.refused += 1
                    else:
                        receiver.accepted.append(body)
                self.send_response(receiver.status if fail else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.mark.bubblewrap
def test_webhook_gets_one_post_per_finished_job(deploy: Callable[..., Deployment],
                                                receiver: Callable[..., Receiver]) -> None:
    hook = receiver(fail_first=2)
    d = deploy(None, NOTIFICATIONS__WEBHOOK_URL=hook.url)
    d.start_worker()
    jobs = [d.submit(f"add note {n}") for n in range(3)]
    d.wait_status(jobs, {JobStatus.SUCCEEDED})
    wait_for(lambda: len(hook.accepted) >= 3, 30, "three accepted POSTs")
    time.sleep(1.0)  # room for a duplicate to show up, if there were one

    assert hook.refused == 2, "the first two POSTs failed, and were retried"
    assert sorted(body["job"]["id"] for body in hook.accepted) == sorted(jobs)
    assert {body["kind"] for body in hook.accepted} == {"finished"}
    for job in jobs:
        assert [e.payload["sink"] for e in d.events(job, "notification.sent")] == ["webhook"]
        assert len(d.events(job, "notification")) == 1


def _job(status: JobStatus, error: str | None = None) -> Job:
    task = Task(instruction="do it", repo="/tmp/repo")
    return Job(id="20250101-000000-abcd", status=status, task=task, created_at=0, updated_at=0, error=error)


def test_webhook_does_not_retry_a_refusal(receiver: Callable[..., Receiver]) -> None:
    hook = receiver(fail_first=5, status=404)
    sink = WebhookSink(hook.url, attempts=5, pause=0.01)
    with pytest.raises(SinkError, match="HTTP 404 after 1 attempt"):
        sink.send(notification_for(_job(JobStatus.FAILED, "boom")))  # type: ignore[arg-type]
    assert hook.refused == 1


def test_webhook_gives_up_after_its_attempts() -> None:
    sink = WebhookSink("http://127.0.0.1:1/hook", attempts=3, pause=0.01)
    with pytest.raises(SinkError, match="after 3 attempt"):
        sink.send(notification_for(_job(JobStatus.SUCCEEDED)))  # type: ignore[arg-type]


def test_command_sink_gets_the_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    CommandSink(f"cat > {out}").send(notification_for(_job(JobStatus.AWAITING_APPROVAL)))  # type: ignore[arg-type]
    got = json.loads(out.read_text())
    assert got["kind"] == "waiting" and got["job"]["status"] == "awaiting_approval"
    with pytest.raises(SinkError, match="exited 3"):
        CommandSink("exit 3").send(notification_for(_job(JobStatus.FAILED)))  # type: ignore[arg-type]


def test_nothing_to_tell_while_a_job_runs() -> None:
    assert notification_for(_job(JobStatus.RUNNING)) is None
    assert notification_for(_job(JobStatus.QUEUED)) is None
    assert notification_for(_job(JobStatus.CANCELLED)).kind == "finished"  # type: ignore[union-attr]
