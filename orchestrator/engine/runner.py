"""Advancing one job: its graph, run from its last checkpoint to its end or its approval wait."""

from __future__ import annotations

import threading
import time
from typing import Any

from langgraph.graph import StateGraph
from langgraph.types import Command

from agents.context_window import context_window
from agents.model_errors import ModelError
from agents.models import ROLES, api_key, warm_up
from agents.roles import RoleError
from orchestrator.config.settings import Settings, for_job
from orchestrator.engine.campaign import Announce, build_campaign_graph
from orchestrator.engine.campaign_report import build_campaign_report
from orchestrator.engine.checkpoints import checkpointer
from orchestrator.engine.context import JobCancelled, JobContext, ModelSource, endpoint_model
from orchestrator.engine.graph import build_graph
from orchestrator.engine.report import Report, build_report
from orchestrator.engine.watch import JobWatch
from orchestrator.store.events import JobWaiting, Notice
from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import CANCELLED_REASON, Job, JobStatus, Task
from orchestrator.store.records import JobRecords
from sandboxes.base import SandboxError, check_disk
from sandboxes.git.command import WorkspaceError
from sandboxes.git.repo import GitRepo
from sandboxes.select import Selection, choose_backend

# max_concurrency sizes the graph's thread pool. A subtask node holds a thread while it waits on
# its stage tasks, which need threads of their own: the pool must fit the widest fan-out (20
# subtasks) with all their candidate coders (5), or the job deadlocks.
GRAPH_THREADS = 20 * (1 + 5) + 8

# Failures that end a job with their message as its reason, rather than as a bug's traceback.
CANNOT_GO_ON = (RoleError, ModelError, SandboxError, WorkspaceError)


def open_repo(settings: Settings, source: str) -> GitRepo:
    """The job's repository: a local checkout, or a clone of a URL cached in the state dir."""
    return GitRepo.open(source, settings.state_dir / "repos")


def advance(settings: Settings, records: JobRecords, job: Job, resume: dict[str, Any] | None = None,
            rewind: dict[str, Any] | None = None, models: ModelSource = endpoint_model,
            announce: Announce = lambda job, message: None) -> Job:
    """Run the job's graph from wherever its checkpoint stands (new, crashed mid-way, answered)
    until it ends or waits for approval. `rewind` rewrites the state first, as a retry does."""
    started = time.monotonic()
    settings = for_job(settings, job.settings)
    watch = JobWatch(job.id, records.jobs).start()
    try:
        return _advance(settings, records, job, watch, resume, rewind, models, announce, started)
    finally:
        watch.close()


def _advance(settings: Settings, records: JobRecords, job: Job, watch: JobWatch, resume: dict[str, Any] | None,
             rewind: dict[str, Any] | None, models: ModelSource, announce: Announce, started: float) -> Job:
    try:
        ctx = _context(settings, records, job, models)
    except CANNOT_GO_ON as exc:
        # Nothing was spent: the repo, the disk or the sandboxes cannot be used. Said before any agent runs.
        return records.finish(job.id, JobStatus.FAILED, error=str(exc))
    ctx.watch = watch
    if models is endpoint_model:
        threading.Thread(target=_warm_up, args=(ctx.settings,), name=f"warm-up-{job.id}", daemon=True).start()
    config = {"configurable": {"thread_id": job.id}, "max_concurrency": GRAPH_THREADS}
    with checkpointer(settings) as saver:
        app = _graph(settings, records, ctx, models, announce).compile(checkpointer=saver)
        snapshot = app.get_state(config)
        if rewind is not None:
            # As if integration had just finished without these results: the graph
            # dispatches them again, then integrates and verifies.
            app.update_state(config, rewind, as_node="integrate")
            snapshot = app.get_state(config)
        ended = resume is None and not (snapshot.next or snapshot.tasks) and snapshot.created_at is not None
        if resume is not None:
            graph_input: Any = Command(resume=resume)
        elif snapshot.next or snapshot.tasks:
            # Crashed or stopped mid-way: continue from the checkpoint. A crash after a step's
            # tasks all finished, before the next checkpoint, leaves none "next", only their writes.
            graph_input = None
        else:
            graph_input = {}
        if job.status == JobStatus.QUEUED:
            records.jobs.advance(job.id, JobStatus.PLANNING)
        if not ended:
            # A graph at its end (killed after its last checkpoint, before the job's row said so) is
            # only reported: invoking it would start it over, planner and all.
            try:
                # Sync durability: a stage's result is on disk before the next stage starts, so a
                # SIGKILL can cost at most the stage in flight, never one that already finished.
                app.invoke(graph_input, config, durability="sync")
            except Exception as exc:
                return _ended_by(records, job, watch, exc)
            snapshot = app.get_state(config)
    if watch.reason is not None:
        return _stopped(records, job, watch)
    if snapshot.next:  # waiting at an interrupt: the plan's approval, or a campaign's top-up
        waiting_for = "budget" if job.task.campaign else "plan approval"
        records.events.append(JobWaiting(job_id=job.id, waiting_for=waiting_for))
        return records.jobs.get(job.id)
    if job.task.campaign is not None:
        return _finish_campaign(records, job, snapshot.values, ctx, time.monotonic() - started)
    return _finish(records, job, snapshot.values, ctx, time.monotonic() - started)


def _warm_up(settings: Settings) -> None:
    """What the planner's first call would pay for (the endpoints' clients, the windows their servers state),
    built while the job prepares instead."""
    specs = [settings.model_for(role) for role in ROLES]
    warm_up(specs)
    for spec in specs:
        context_window(spec)


def _graph(settings: Settings, records: JobRecords, ctx: JobContext, models: ModelSource,
           announce: Announce) -> StateGraph:
    if ctx.task.campaign is None:
        return build_graph(ctx)
    return build_campaign_graph(ctx, records, lambda child: advance(settings, records, child, models=models),
                                announce)


def _finish_campaign(records: JobRecords, job: Job, state: dict[str, Any], ctx: JobContext, seconds: float) -> Job:
    children = [j for entry in state.get("journal", []) for j in entry.jobs]
    spent = records.events.spent(job.id) + sum(records.events.spent(j) for j in children)
    report = build_campaign_report(job.id, state, ctx.repo.resolve(state["branch"]), spent, seconds)
    status = JobStatus.SUCCEEDED if report.passed else JobStatus.FAILED
    return records.finish(job.id, status, error=report.stop_reason, report=report.model_dump(mode="json"),
                          branch=report.branch)


def _ended_by(records: JobRecords, job: Job, watch: JobWatch, exc: Exception) -> Job:
    """The job's end when its graph raised: stopped on purpose, or a failure it cannot go on from."""
    if watch.reason is not None or isinstance(exc, JobCancelled):
        # Whatever the stopped sandbox or model call raised, the job ended because it was stopped.
        return _stopped(records, job, watch)
    if isinstance(exc, CANNOT_GO_ON):
        # Not a bug: the model is gone for good, a sandbox or the repo refuses. The job stops with
        # the reason; the branches, events and checkpoint stay for `shipyard resume`.
        return records.finish(job.id, JobStatus.FAILED, error=str(exc))
    # The branches, events and checkpoint stay: `shipyard resume` can go on.
    records.finish(job.id, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
    raise exc


def _stopped(records: JobRecords, job: Job, watch: JobWatch) -> Job:
    if watch.reason == "taken over":  # another process runs it now: it is theirs to end
        return records.jobs.get(job.id)
    if watch.reason == "interrupted":
        return records.finish(job.id, JobStatus.FAILED, error=interrupted_reason(job.id))
    return records.finish(job.id, JobStatus.CANCELLED, error=CANCELLED_REASON)


def interrupted_reason(job_id: str) -> str:
    return f"interrupted; `shipyard resume {job_id}` goes on from its last checkpoint"


def preflight(settings: Settings, task: Task) -> Selection:
    """What must hold before a job spends anything: each role's model can be asked, the disk has room, a
    sandbox backend works. One-line errors that say what to fix."""
    for role in ROLES:
        api_key(settings.model_for(role), role)
    if settings.context.summarizer is not None:
        api_key(settings.context.summarizer, "summarizer")
    check_disk(settings.state_dir, settings.sandbox.limits)
    return choose_backend(settings.sandbox.backend, task.image or settings.sandbox.image, hide=(settings.state_dir,))


def _context(settings: Settings, records: JobRecords, job: Job, models: ModelSource) -> JobContext:
    selection = preflight(settings, job.task)
    if selection.note:
        records.events.append(Notice(job_id=job.id, text=selection.note))
    return JobContext(job_id=job.id, task=job.task, settings=settings, repo=open_repo(settings, job.task.repo),
                      backend=selection.backend, events=records.events, jobs=records.jobs, models=models)


def _finish(records: JobRecords, job: Job, state: dict[str, Any], ctx: JobContext, seconds: float) -> Job:
    if state.get("decision") == "rejected":
        return records.finish(job.id, JobStatus.REJECTED, error=state.get("stop_reason"))
    view = JobView.of(job.id, records.events.list(job.id))
    report = build_report(job.id, state, ctx.repo, view, seconds)
    status = JobStatus(report.status)
    error = report.stop_reason or (None if report.verified else why_not_verified(report))
    return records.finish(job.id, status, error=error, report=report.model_dump(mode="json"),
                          branch=report.job_branch)


def why_not_verified(report: Report) -> str:
    """One line on why a job that ran to its end did not succeed verified: what failed, or what nothing checked."""
    after = report.tests_after
    if after is not None and after.passed is False:
        why = "; ".join(after.comparison.reasons) if after.comparison else f"`{after.command}` fails"
        return f"the job branch breaks the tests (`{after.command}`): {why}"
    unmerged = [f"{s.id} {s.status}" + (f" ({s.reason})" if s.reason else "") for s in report.subtasks
                if s.status != "merged"]
    if unmerged:
        return "not merged: " + "; ".join(unmerged)
    if not report.subtasks:
        return "the plan had no subtasks"
    if after is not None and after.comparison is not None:
        return "not verified: " + "; ".join(after.comparison.reasons)
    return "not verified: no tests ran"
