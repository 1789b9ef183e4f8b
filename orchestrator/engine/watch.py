"""The watch over a running job: it holds the job for this process, and stops its work the moment it must.

One process at a time runs a job. The watch takes the job (a holder and a heartbeat on its row) before
the graph runs, beats while it runs, and lets go after. A second process asking for a job that is
held refuses in one line naming the holder; a holder that stopped beating (or whose process is gone,
on this host) is taken over.

While it runs, the watch looks at the job's row: once the director cancels it, or this process is
interrupted (Ctrl-C, SIGTERM), or another process took the job over, it stops what is in flight at
once — every sandbox of the job is stopped (its command ends) and every model call is given up — so
that the job ends within seconds, not after the step that was running.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
import weakref
from typing import Literal, Protocol

from orchestrator.store.jobs import JobStatus, JobStore
from sandboxes.process import process_alive

HEARTBEAT = 1.0  # seconds between a holder's beats, and between looks at the job's row
STALE = 20.0  # seconds without a beat after which a holder counts as gone

Reason = Literal["cancelled", "interrupted", "taken over"]

# The watches of the jobs this process runs, so that a Ctrl-C can stop them.
_running: dict[str, JobWatch] = {}
_running_lock = threading.Lock()


class JobHeldError(RuntimeError):
    """The job is running in another process; the message names it and says what to do."""


class Stoppable(Protocol):
    def stop(self) -> None: ...


class JobWatch:
    def __init__(self, job_id: str, jobs: JobStore):
        self.job_id = job_id
        self.jobs = jobs
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.reason: Reason | None = None
        self._things: weakref.WeakSet[Stoppable] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    # -- holding the job ------------------------------------------------------------------

    def start(self) -> JobWatch:
        """Take the job for this process (JobHeldError if another one runs it) and start watching."""
        job = self.jobs.get(self.job_id)
        dead = job.holder if job.holder and _gone(job.holder) else None
        if not self.jobs.hold(self.job_id, self.holder, time.time() - STALE, dead):
            held = self.jobs.get(self.job_id)
            host, pid = _where(held.holder or "")
            ago = time.time() - (held.held_at or 0)
            raise JobHeldError(f"job {self.job_id} is running in process {pid} on {host} (heartbeat {ago:.0f} s ago): "
                               f"`shipyard cancel {self.job_id}` stops it; resume it once that process has ended")
        with _running_lock:
            _running[self.job_id] = self
        self._thread = threading.Thread(target=self._watch, name=f"watch-{self.job_id}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(HEARTBEAT * 2)
        with _running_lock:
            _running.pop(self.job_id, None)
        if self.reason != "taken over":
            self.jobs.release(self.job_id, self.holder)

    # -- stopping ------------------------------------------------------------------------

    def guard(self, thing: Stoppable) -> None:
        """Stop `thing` (a sandbox, a model client) if the job stops while it lives."""
        with self._lock:
            self._things.add(thing)
            stopped = self.reason is not None
        if stopped:
            thing.stop()

    def stop(self, reason: Reason) -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            things = list(self._things)
        for thing in things:
            try:
                thing.stop()
            except Exception:  # noqa: BLE001 - stopping the rest matters more than one that would not stop
                pass

    def _watch(self) -> None:
        while not self._done.wait(HEARTBEAT):
            try:
                if not self.jobs.beat(self.job_id, self.holder):
                    self.stop("taken over")
                elif self.jobs.get(self.job_id).status == JobStatus.CANCELLED:
                    self.stop("cancelled")
            except Exception:  # noqa: BLE001 - the database away for a moment: the next beat tries again
                continue


def stop_running(job_id: str, reason: Reason = "interrupted") -> bool:
    """Stop the job if this process runs it (what Ctrl-C does); whether it did."""
    with _running_lock:
        watch = _running.get(job_id)
    if watch is None:
        return False
    watch.stop(reason)
    return True


def _where(holder: str) -> tuple[str, str]:
    host, _, rest = holder.partition(":")
    return host, rest.partition(":")[0]


def _gone(holder: str) -> bool:
    """Whether the holder's process is known to have ended (it ran on this host and is not alive)."""
    host, pid = _where(holder)
    return host == socket.gethostname() and pid.isdigit() and not process_alive(int(pid))
