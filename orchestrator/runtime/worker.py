"""`shipyard serve`: a worker that runs queued jobs, up to `workers.concurrency` at once.

Each job advance (to its end or to its approval wait) is a DBOS workflow on the queue of
orchestrator.queue; a worker is a DBOS executor with an id of its own. DBOS leaves it to
the deployment to say when an executor is dead, so every worker keeps a lease in the
`workers` table: it beats every `workers.heartbeat` seconds, and a worker whose beat is
older than `workers.lease` (or, on the same host, whose process is gone) is dead. Any
live worker then deletes the dead one's row (one wins) and has DBOS put its workflows
back on the queue; whoever dequeues one resumes the job from its last LangGraph
checkpoint. A worker that finds its own row gone was declared dead while it still ran:
it exits at once, so a job never runs on two workers for longer than one heartbeat.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import threading
import time
from typing import Any

from dbos import DBOS
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.config.settings import Settings
from orchestrator.engine.watch import HEARTBEAT, STALE, JobHeldError
from orchestrator.runtime.director import Director
from orchestrator.runtime.notify import Notification, Notifier, Sink, configured_sinks, notification_for
from orchestrator.runtime.queue import APP_NAME, APP_VERSION, QUEUE_NAME, WORKFLOW_NAME, system_url
from orchestrator.store.db import workers
from orchestrator.store.events import WorkerClaimed, WorkerReleased
from orchestrator.store.jobs import Job, JobStatus

log = logging.getLogger(__name__)

# Exit status of a worker that lost its lease: a supervisor should start it again.
LEASE_LOST = 75

# DBOS is one runtime per process, and so is the worker its workflows run on.
_worker: Worker | None = None


def _current() -> Worker:
    if _worker is None:
        raise RuntimeError("no worker is serving in this process")
    return _worker


@DBOS.workflow(name=WORKFLOW_NAME)
def advance_workflow(job_id: str, action: str, answer: dict[str, Any] | None) -> str:
    status = advance_step(job_id, action, answer)
    # A workflow of its own, so that a slow webhook never holds a job slot.
    DBOS.start_workflow(notify_workflow, job_id)
    return status


@DBOS.step(name="shipyard.advance-job")
def advance_step(job_id: str, action: str, answer: dict[str, Any] | None) -> str:
    return _current().advance(job_id, action, answer).status.value


@DBOS.workflow(name="shipyard.notify")
def notify_workflow(job_id: str) -> None:
    notification = record_step(job_id)
    if notification is not None:
        for index in range(len(_current().notifier.sinks)):
            deliver_step(notification, index)


@DBOS.step(name="shipyard.notify-record")
def record_step(job_id: str) -> dict[str, Any] | None:
    """The event and inbox entry, once; what they say is kept for the sinks, however late they run."""
    notification = notification_for(_current().director.get(job_id))
    if notification is None:
        return None
    _current().notifier.record(notification)
    return notification.model_dump(mode="json")


@DBOS.step(name="shipyard.notify-deliver")
def deliver_step(notification: dict[str, Any], sink_index: int) -> None:
    notifier = _current().notifier
    notifier.deliver(notifier.sinks[sink_index], Notification.model_validate(notification))


class Worker:
    def __init__(self, settings: Settings, extra_sinks: list[Sink] | None = None):
        self.settings = settings
        self.host = socket.gethostname()
        self.id = f"{self.host}-{os.getpid()}-{secrets.token_hex(3)}"
        self.director = Director(settings)
        self.engine = self.director.records.engine
        self.notifier = Notifier(self.engine, self.director.records.events, configured_sinks(settings.notifications)
                                 + (extra_sinks or []))
        self._running = 0
        self._lock = threading.Lock()
        self._last_beat = time.time()

    # -- one job ------------------------------------------------------------------

    def advance(self, job_id: str, action: str, answer: dict[str, Any] | None) -> Job:
        """Run the job from where it is to its end or its approval wait, on this worker."""
        job = self.director.get(job_id)
        if job.status.finished:  # cancelled while queued, or it ended just before its worker died
            return job
        events = self.director.records.events
        events.append(WorkerClaimed(job_id=job_id, worker=self.id, action=action))
        with self._lock:
            self._running += 1
        try:
            job = self._run_when_free(job, action, answer)
        except JobHeldError as exc:  # another process runs it still (a `shipyard resume` elsewhere): its job
            log.warning("job %s not run on worker %s: %s", job_id, self.id, exc)
            job = self.director.get(job_id)
        except Exception as exc:
            log.exception("job %s failed on worker %s", job_id, self.id)
            job = self._failed(job_id, exc)
        finally:
            with self._lock:
                self._running -= 1
        events.append(WorkerReleased(job_id=job_id, worker=self.id, status=job.status.value))
        return job

    def _run_when_free(self, job: Job, action: str, answer: dict[str, Any] | None) -> Job:
        """Run the job on; while another process still holds it — a worker declared dead but not yet gone
        (frozen, cut off) — wait for its hold to lapse, as long as a hold can outlive its holder."""
        deadline = time.monotonic() + 2 * STALE
        while True:
            try:
                if not job.status.waiting:
                    return self.director.run(job.id)
                if action == "answer" and answer is not None:
                    return self.director.answer_here(job.id, answer)
                return job
            except JobHeldError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(HEARTBEAT)
                job = self.director.get(job.id)
                if job.status.finished:
                    return job

    def _failed(self, job_id: str, exc: Exception) -> Job:
        job = self.director.get(job_id)
        if not job.status.finished:  # it failed before its graph ran, e.g. its repository is gone
            job = self.director.finish(job_id, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return job

    # -- serving ------------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        """Take queued jobs until `stop` is set; then hand the running ones back to the queue."""
        global _worker
        _worker = self
        workers_cfg = self.settings.workers
        now = time.time()
        # The row comes first: a worker with workflows but no row counts as dead.
        with self.engine.begin() as conn:
            conn.execute(insert(workers).values(id=self.id, host=self.host, pid=os.getpid(), started_at=now,
                                                heartbeat_at=now))
        try:
            DBOS(config={"name": APP_NAME, "system_database_url": system_url(self.settings), "executor_id": self.id,
                         "application_version": APP_VERSION, "log_level": "WARNING"})
            DBOS.launch()
            # The queue's settings live in the database: the last worker started sets them for all.
            DBOS.register_queue(QUEUE_NAME, worker_concurrency=workers_cfg.concurrency,
                                polling_interval_sec=workers_cfg.poll, on_conflict="always_update")
        except BaseException:
            with self.engine.begin() as conn:
                conn.execute(delete(workers).where(workers.c.id == self.id))
            raise
        log.info("worker %s takes jobs from the queue", self.id)
        self.take_over()
        while not stop.wait(workers_cfg.heartbeat):
            self.beat()
            self.take_over()
        self.leave()

    def beat(self) -> None:
        try:
            with self.engine.begin() as conn:
                beaten = conn.execute(update(workers).where(workers.c.id == self.id)
                                      .values(heartbeat_at=time.time())).rowcount
        except SQLAlchemyError as exc:
            if time.time() - self._last_beat > self.settings.workers.lease:
                self._exit_lost(f"no heartbeat reached the database for a whole lease ({exc})")
            log.warning("heartbeat failed (will retry): %s", exc)
            return
        if not beaten:
            self._exit_lost("another worker found this one dead and took over its jobs")
        self._last_beat = time.time()

    def take_over(self) -> None:
        """Put the jobs (and notifications) of dead workers back on the queue."""
        try:
            pending = DBOS.list_workflows(status="PENDING", load_input=False, load_output=False)
            owners = {w.executor_id for w in pending if w.executor_id and w.executor_id != self.id}
            for owner in sorted(owners):
                if self._bury(owner):
                    # What DBOS's own recovery service would do for an executor it knows is dead.
                    handles = DBOS._recover_pending_workflows([owner])
                    log.warning("worker %s is dead: %d workflow(s) back on the queue", owner, len(handles))
        except Exception as exc:  # noqa: BLE001 - a database blip; the next heartbeat tries again
            log.warning("looking for dead workers failed (will retry): %s", exc)

    def _bury(self, owner: str) -> bool:
        """Delete a dead worker's row; True if it is dead and this worker won the right to take over."""
        with self.engine.begin() as conn:
            row = conn.execute(select(workers).where(workers.c.id == owner)).first()
            if row is None:  # stopped (it handed its jobs back) or already buried
                return True
            expired = row.heartbeat_at < time.time() - self.settings.workers.lease
            gone = row.host == self.host and not _process_alive(row.pid)
            if not (expired or gone):
                return False
            # Only the worker whose delete matches the beat it saw wins; a fresh beat means alive after all.
            return bool(conn.execute(delete(workers).where(
                workers.c.id == owner, workers.c.heartbeat_at == row.heartbeat_at)).rowcount)

    def leave(self) -> None:
        """Stop taking jobs and end the process; the running jobs resume on the next worker at once."""
        DBOS.destroy()
        with self.engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.id == self.id))
        if self._running:
            log.warning("worker %s stopped with %d job(s) running: they resume on the next worker", self.id,
                        self._running)
        # Job threads cannot be stopped from outside, and must not run on once the row is gone.
        _exit_now(0)

    def _exit_lost(self, why: str) -> None:
        log.error("worker %s lost its lease: %s; exiting so that no job runs twice", self.id, why)
        _exit_now(LEASE_LOST)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_now(code: int) -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
