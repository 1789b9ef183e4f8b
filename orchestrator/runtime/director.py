"""The director's API: submit, run or resume a job's graph to its end or its approval wait, steer it.

The CLI and the TUI call these functions; they never touch the graph themselves.
"""

from __future__ import annotations

import time
from typing import Any

from langgraph.types import Command

from agents.models import ModelError
from agents.roles import RoleError
from orchestrator.config.settings import Settings
from orchestrator.engine.checkpoints import checkpointer
from orchestrator.engine.graph import build_graph
from orchestrator.engine.report import Report, build_report
from orchestrator.engine.services import JobCancelled, JobServices
from orchestrator.runtime.queue import JobQueue
from orchestrator.store.db import open_store, store_url
from orchestrator.store.event_log import EventLog
from orchestrator.store.jobs import Job, JobStatus, JobStore, Task
from sandboxes.base import SandboxError
from sandboxes.git.branches import branch_name
from sandboxes.git.command import WorkspaceError
from sandboxes.git.repo import GitRepo
from sandboxes.git.results import MergeResult
from sandboxes.select import select_backend


class Director:
    def __init__(self, settings: Settings):
        self.settings = settings
        engine = open_store(store_url(settings))
        self.jobs = JobStore(engine)
        self.events = EventLog(engine)
        self.queue = JobQueue(settings, self.jobs, self.events)

    # -- the director's actions ----------------------------------------------------

    def submit(self, task: Task) -> Job:
        """Record a job for `task`, checking first that its repo and base exist."""
        repo = self._open_repo(task.repo)
        if task.base == "HEAD":
            # Name the branch, not the moving HEAD: `accept` merges into it later.
            task = task.model_copy(update={"base": repo.current_branch() or repo.resolve("HEAD")})
        repo.resolve(task.base)
        job = self.jobs.create(task)
        self.events.emit(job.id, "job.submitted", payload=task.model_dump())
        return job

    def run(self, job_id: str) -> Job:
        """Run a job from wherever it is (new, crashed mid-way) until it ends or waits for approval."""
        job = self.jobs.get(job_id)
        if job.status == JobStatus.AWAITING_APPROVAL:
            return job
        return self._advance(job, resume=None)

    def approve(self, job_id: str, plan: dict[str, Any] | None = None) -> Job:
        """Approve the waiting plan (or an edited one) and run the job on."""
        job = self._awaiting(job_id)
        answer: dict[str, Any] = {"action": "edit", "plan": plan} if plan else {"action": "approve"}
        return self._answer(job, answer)

    def reject(self, job_id: str, reason: str = "") -> Job:
        job = self._awaiting(job_id)
        return self._answer(job, {"action": "reject", "reason": reason})

    def answer(self, job_id: str, answer: dict[str, Any]) -> Job:
        """Run the waiting job on with the director's answer, in this process (what a worker does)."""
        return self._advance(self._awaiting(job_id), resume=answer)

    def retry(self, job_id: str, subtask_ids: list[str] | None = None) -> Job:
        """Run failed subtasks again (all of them by default), then integrate and verify as
        before; what succeeded stays. Each earlier attempt is kept on a `-tryN` branch.
        A job that failed part-way (an error, not a verdict) goes on from its checkpoint."""
        job = self.jobs.get(job_id)
        if job.status != JobStatus.FAILED:
            raise JobStateError(f"job {job_id} is {job.status.value}; only a failed job's subtasks can be retried")
        report = self.report(job_id)
        if report is None and not subtask_ids:
            return self.run(job_id)
        failed = {s.id: s for s in report.subtasks if s.status == "failed"} if report else {}
        unknown = sorted(set(subtask_ids or []) - set(failed))
        if unknown or not failed:
            raise JobStateError(f"job {job_id}: only failed subtasks can be retried; failed: {sorted(failed) or 'none'}")
        chosen = set(subtask_ids or failed)
        chosen |= {i for i, s in failed.items() if s.reason.startswith("not started")}
        repo = self._open_repo(job.task.repo)
        kept = [_keep_attempt(repo, failed[i].branch) for i in sorted(chosen) if failed[i].branch]
        self.events.emit(job_id, "subtask.retry", payload={"subtasks": sorted(chosen), "kept": kept})
        self.jobs.update(job_id, JobStatus.RUNNING, error=None, report=None)
        forget = {i: None for i in chosen}
        return self._advance(job, resume=None, rewind={"results": forget, "stop_reason": None})

    def cancel(self, job_id: str) -> Job:
        """Mark the job cancelled; a process running it stops at its agents' next step."""
        job = self.jobs.get(job_id)
        if not job.status.finished:
            self.jobs.update(job_id, JobStatus.CANCELLED, error="cancelled by the director")
            self.events.emit(job_id, "job.status", payload={"status": JobStatus.CANCELLED.value})
        return self.jobs.get(job_id)

    def accept(self, job_id: str) -> MergeResult:
        """Merge the finished job's branch into the base branch of the user's repo."""
        job = self.jobs.get(job_id)
        if job.status != JobStatus.SUCCEEDED:
            raise JobStateError(f"job {job_id} is {job.status.value}; only a succeeded job can be accepted")
        repo = self._open_repo(job.task.repo)
        result = repo.accept(branch_name(job_id), job.task.base)
        self.events.emit(job_id, "job.accepted", payload=result.model_dump(mode="json"))
        return result

    def note(self, job_id: str, text: str) -> None:
        """A note from the director, added to the prompts of the agents that start after it."""
        self.events.emit(job_id, "director.note", payload={"text": text})

    # -- internals -----------------------------------------------------------------

    def _awaiting(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job.status != JobStatus.AWAITING_APPROVAL:
            raise JobStateError(f"job {job_id} is {job.status.value}, not waiting for plan approval")
        return job

    def _answer(self, job: Job, answer: dict[str, Any]) -> Job:
        if not self.queue.holds(job.id):
            return self._advance(job, resume=answer)
        # A job from the queue goes back to it, so that a worker (with its sandboxes) runs it on; we follow it.
        queued = self.queue.enqueue(job.id, "answer", answer)
        if queued is None:
            raise JobStateError(f"job {job.id} already has an answer queued; a worker (`shipyard serve`) takes it")
        return self.queue.wait(job.id, after=queued.id)

    def _open_repo(self, source: str) -> GitRepo:
        return GitRepo.open(source, self.settings.state_dir / "repos")

    def _advance(self, job: Job, resume: dict[str, Any] | None, rewind: dict[str, Any] | None = None) -> Job:
        started = time.monotonic()
        services = JobServices(
            job_id=job.id,
            task=job.task,
            settings=self.settings,
            repo=self._open_repo(job.task.repo),
            backend=select_backend(self.settings.sandbox.backend, self.settings.sandbox.image,
                                   hide=(self.settings.state_dir,)),
            events=self.events,
            jobs=self.jobs,
        )
        services.restore_usage()
        services.notes = [e.payload["text"] for e in self.events.list(job.id) if e.kind == "director.note"]
        # max_concurrency sizes the graph's thread pool. A subtask node holds a thread while it
        # waits on its stage tasks, which need threads of their own: the pool must fit the widest
        # fan-out (20 subtasks) with all their candidate coders (5), or the job deadlocks.
        config = {"configurable": {"thread_id": job.id}, "max_concurrency": GRAPH_THREADS}
        with checkpointer(self.settings) as saver:
            app = build_graph(services).compile(checkpointer=saver)
            snapshot = app.get_state(config)
            services.test_command = snapshot.values.get("test_command")
            if rewind is not None:
                # As if integration had just finished without these results: the graph
                # dispatches them again, then integrates and verifies.
                app.update_state(config, rewind, as_node="integrate")
                snapshot = app.get_state(config)
            if resume is not None:
                graph_input: Any = Command(resume=resume)
            elif snapshot.next or snapshot.tasks:
                # Crashed or stopped mid-way: continue from the checkpoint. A crash after a step's
                # tasks all finished, before the next checkpoint, leaves none "next", only their writes.
                graph_input = None
            else:
                graph_input = {}
            if job.status == JobStatus.QUEUED:
                self.jobs.update(job.id, JobStatus.PLANNING)
            try:
                # Sync durability: a stage's result is on disk before the next stage starts, so a
                # SIGKILL can cost at most the stage in flight, never one that already finished.
                app.invoke(graph_input, config, durability="sync")
            except JobCancelled:
                self.events.emit(job.id, "job.finished", payload={"status": "cancelled"})
                return self.jobs.get(job.id)
            except CANNOT_GO_ON as exc:
                # Not a bug: the model is gone for good, a sandbox or the repo refuses. The job
                # stops with the reason; the branches, events and checkpoint stay for `shipyard resume`.
                self.jobs.update(job.id, JobStatus.FAILED, error=str(exc))
                self.events.emit(job.id, "job.finished", payload={"status": "failed", "error": str(exc)})
                return self.jobs.get(job.id)
            except Exception as exc:
                # The branches, events and checkpoint stay: `shipyard resume` can go on.
                self.jobs.update(job.id, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
                self.events.emit(job.id, "job.finished", payload={"status": "failed", "error": str(exc)})
                raise
            snapshot = app.get_state(config)
        if snapshot.next:  # waiting at the approval interrupt
            self.events.emit(job.id, "job.waiting", payload={"for": "plan approval"})
            return self.jobs.get(job.id)
        return self._finish(job, snapshot.values, services, time.monotonic() - started)

    def _finish(self, job: Job, state: dict[str, Any], services: JobServices, seconds: float) -> Job:
        if state.get("decision") == "rejected":
            self.jobs.update(job.id, JobStatus.REJECTED, error=state.get("stop_reason"))
            self.events.emit(job.id, "job.finished", payload={"status": "rejected"})
            return self.jobs.get(job.id)
        report = build_report(job.id, state, services.repo, self.events, seconds)
        status = JobStatus.SUCCEEDED if report.succeeded else JobStatus.FAILED
        error = report.stop_reason or (None if report.succeeded else _why_failed(report))
        self.jobs.update(job.id, status, report=report.model_dump(mode="json"), error=error)
        self.events.emit(job.id, "job.finished", payload={"status": status.value, "branch": report.job_branch})
        return self.jobs.get(job.id)

    def report(self, job_id: str) -> Report | None:
        job = self.jobs.get(job_id)
        return Report.model_validate(job.report) if job.report else None


def _why_failed(report: Report) -> str:
    """One line on why a job that ran to its end did not succeed."""
    unmerged = [f"{s.id} {s.status}" + (f" ({s.reason})" if s.reason else "") for s in report.subtasks
                if s.status != "merged"]
    if unmerged:
        return "not merged: " + "; ".join(unmerged)
    if report.tests_after is not None and report.tests_after.passed is False:
        return f"the tests fail on the job branch (`{report.tests_after.command}`)"
    return "the plan had no subtasks" if not report.subtasks else "the job did not succeed"


def _keep_attempt(repo: GitRepo, branch: str) -> str | None:
    """Copy a failed attempt's branch to `<branch>-tryN` before the retry moves it; the copy's name."""
    try:
        repo.resolve(branch)
    except WorkspaceError:
        return None  # never started: nothing to keep
    n = 1
    while True:
        try:
            repo.resolve(f"{branch}-try{n}")
        except WorkspaceError:
            repo.ensure_branch(f"{branch}-try{n}", branch)
            return f"{branch}-try{n}"
        n += 1


class JobStateError(ValueError):
    """The job is not in a state where that action makes sense."""


GRAPH_THREADS = 20 * (1 + 5) + 8

# Failures that end a job with their message as its reason, rather than as a bug's traceback.
CANNOT_GO_ON = (RoleError, ModelError, SandboxError, WorkspaceError)

