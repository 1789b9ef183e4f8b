"""The director's API: every action a front end offers — the CLI, the TUI, the GitHub desk, a
worker — is a method here, and front ends hold no orchestration logic of their own.

Reading: `get`, `find`, `list`, `events`, `follow`, `view`, `report`, `diff`.
Acting: `submit`, `run`/`resume`, `approve`, `reject`, `replan`, `answer`, `retry`, `cancel`, `note`,
`accept`, `discard`, `prune`, `launch` (in a process of its own), `finish`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from agents.plan import Plan
from orchestrator.config.settings import Settings, for_job, job_snapshot
from orchestrator.engine.report import Report
from orchestrator.engine.watch import stop_running
from orchestrator.runtime import background
from orchestrator.runtime.notify import Inbox, Notifier, announcer, configured_sinks
from orchestrator.runtime.queue import JobQueue
from orchestrator.store.db import open_store, store_url
from orchestrator.store.events import (
    CampaignPaused,
    CampaignToppedUp,
    DirectorAnswer,
    DirectorNote,
    Event,
    JobAccepted,
    JobDiscarded,
    JobWaiting,
    PlanEdited,
    PlanReady,
    PlanSentBack,
    SubtasksRetried,
)
from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Job, JobStatus, Task
from orchestrator.store.records import JobRecords
from sandboxes.git.branches import branch_name
from sandboxes.git.command import WorkspaceError
from sandboxes.git.remotes import is_url
from sandboxes.git.repo import GitRepo
from sandboxes.git.results import MergeResult

if TYPE_CHECKING:
    from orchestrator.engine.campaign_report import CampaignReport
    from orchestrator.engine.context import ModelSource
    from orchestrator.runtime.prune import PruneResult

# The engine (LangGraph, the model clients, the sandboxes) is imported by the actions that run a job, not by
# the director itself: reading commands (`shipyard jobs`, `show`, the TUI) start without the model stack.


class JobStateError(ValueError):
    """The job is not in a state where that action makes sense."""


class Director:
    def __init__(self, settings: Settings, models: ModelSource | None = None):
        self.settings = settings
        self.models = models  # what the agents of jobs run here talk to; None: the configured endpoints
        self.records = JobRecords(open_store(store_url(settings)))
        self.queue = JobQueue(settings, self.records.jobs, self.records.events)
        # A campaign's digest after each iteration goes to the inbox and the notification sinks.
        self.announce = announcer(Notifier(self.records.engine, self.records.events,
                                           configured_sinks(settings.notifications)))

    # -- reading ---------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        return self.records.jobs.get(job_id)

    def find(self, ref: str) -> Job:
        """The job whose id is `ref` or starts with it."""
        return self.records.jobs.find(ref)

    def list(self, status: JobStatus | None = None, limit: int | None = 100) -> list[Job]:
        """The newest jobs first; every one with `limit=None`."""
        return self.records.jobs.list(status, limit=limit)

    def activity(self) -> tuple[int, float, int]:
        """One cheap look at the whole store: the latest event id, the latest job update, how many jobs.
        A front end that polls re-reads only when these move."""
        return self.records.events.latest(), *self.records.jobs.stamp()

    def events_since(self, after: int, limit: int | None = None) -> list[Event]:
        """Every job's events after id `after`, oldest first."""
        return self.records.events.since(after, limit)

    def events(self, job_id: str, after: int = 0, limit: int | None = None,
               kinds: tuple[type[Event], ...] = ()) -> list[Event]:
        return self.records.events.list(job_id, after=after, limit=limit, kinds=kinds)

    def follow(self, job_id: str, after: int = 0, poll: float = 0.2,
               until: Callable[[], bool] | None = None) -> Iterator[Event]:
        return self.records.events.follow(job_id, after=after, poll=poll, until=until)

    def view(self, job_id: str) -> JobView:
        return JobView.of(job_id, self.events(job_id))

    def plan(self, job_id: str) -> Plan | None:
        """The job's plan as it stands: the planner's, or the director's edit of it."""
        plans = self.events(job_id, kinds=(PlanReady, PlanEdited))
        last = plans[-1] if plans else None
        return last.plan if isinstance(last, PlanReady | PlanEdited) else None

    def report(self, job_id: str) -> Report | None:
        job = self.get(job_id)
        if not job.report or job.task.campaign is not None:
            return None
        return Report.model_validate(job.report)

    def campaign_report(self, job_id: str) -> CampaignReport | None:
        job = self.get(job_id)
        if not job.report or job.task.campaign is None:
            return None
        from orchestrator.engine.campaign_report import CampaignReport  # LangGraph's: only for a campaign

        return CampaignReport.model_validate(job.report)

    def diff(self, job_id: str) -> str:
        """The job branch's changes against where the job started."""
        job = self.get(job_id)
        report = self.report(job_id)
        if report is None:
            raise JobStateError(f"job {job_id} has no result yet ({job.status.value})")
        return self._repo(job).diff(report.base_sha, report.job_branch)

    def inbox(self) -> Inbox:
        """What needs the director: the notifications of finished, failed and waiting jobs."""
        return Inbox(self.records.engine)

    def changes(self, job_id: str, base: str, ref: str) -> tuple[str, str]:
        """What `ref` (a branch of the job) changed since `base`: the commit it names, and the diff."""
        repo = self._repo(self.get(job_id))
        head = repo.resolve(ref)
        return head, repo.diff(base, head)

    def settled(self, job_id: str) -> bool:
        """Whether the job has stopped moving: ended, or waiting for the director."""
        status = self.get(job_id).status
        return status.finished or status.waiting

    # -- running ---------------------------------------------------------------------

    def submit(self, task: Task) -> Job:
        """Record a job for `task`, checking first that it can run at all: its repo and base exist, every
        role has a usable model, a sandbox backend answers, the disk has room. A job that could never run
        is refused here, before it is a record and a branch."""
        from orchestrator.engine.runner import open_repo, preflight

        preflight(self.settings, task)
        if not is_url(task.repo):
            # Stored absolute: a front end opened elsewhere (the TUI, a worker) finds the same checkout.
            task = task.model_copy(update={"repo": str(Path(task.repo).expanduser().resolve())})
        repo = open_repo(self.settings, task.repo)
        if task.base == "HEAD":
            # Name the branch, not the moving HEAD: `accept` merges into it later.
            task = task.model_copy(update={"base": repo.current_branch() or repo.resolve("HEAD")})
        repo.resolve(task.base)
        return self.records.submit(task, settings=job_snapshot(self.settings))

    def run(self, job_id: str) -> Job:
        """Run a job from wherever it is (new, crashed mid-way) until it ends or waits for approval."""
        job = self.get(job_id)
        if job.status.waiting:
            return job
        return self._advance(job)

    resume = run

    def enqueue(self, job_id: str) -> Job:
        """Hand the job to the queue, for a worker (`shipyard serve`) to run."""
        self.queue.enqueue(job_id)
        return self.get(job_id)

    def launch(self, job_id: str, action: background.Action = "run", repo: Path | None = None,
               subtasks: list[str] | None = None) -> subprocess.Popen[bytes]:
        """Run (or answer, or retry) the job in a process of its own, which outlives the caller."""
        return background.launch(self.settings, job_id, action, repo=repo, subtasks=subtasks)

    # -- the plan ----------------------------------------------------------------------

    def approve(self, job_id: str, plan: Plan | None = None, by: str = "") -> Job:
        """Approve the waiting plan (or an edited one) and run the job on."""
        self.record_answer(job_id, DirectorAnswer(action="edit" if plan else "approve", plan=plan, by=by))
        return self.answer(job_id)

    def reject(self, job_id: str, reason: str = "", by: str = "") -> Job:
        self.record_answer(job_id, DirectorAnswer(action="reject", reason=reason, by=by))
        return self.answer(job_id)

    def replan(self, job_id: str, note: str, by: str = "") -> Job:
        """Send the waiting plan back: the planner plans again with it and `note` (what is wrong with it) in its
        prompt, and the new plan waits for approval in turn. At most `max_replans` times a job."""
        self.record_answer(job_id, DirectorAnswer(action="replan", reason=note, by=by))
        return self.answer(job_id)

    def replans(self, job_id: str) -> tuple[int, int]:
        """How many times the job's plan was sent back, and how many times it may be (its `max_replans`)."""
        job = self.get(job_id)
        return len(self.events(job_id, kinds=(PlanSentBack,))), for_job(self.settings, job.settings).max_replans

    def record_answer(self, job_id: str, answer: DirectorAnswer) -> DirectorAnswer:
        """Keep the director's answer to the waiting plan; `answer` (here, in a launched process or on a
        worker) acts on it."""
        job = self._awaiting(job_id)
        if answer.action == "replan":
            self._may_replan(job, answer.reason)
        return cast(DirectorAnswer, self.records.events.append(answer.model_copy(update={"job_id": job_id})))

    def _may_replan(self, job: Job, note: str) -> None:
        if not note.strip():
            raise JobStateError(f"job {job.id}: say what is wrong with the plan, for the planner to plan again")
        if job.task.plan is not None:
            raise JobStateError(f"job {job.id} was given its plan (a campaign's option): no planner to plan again")
        done, limit = self.replans(job.id)
        if done >= limit:
            raise JobStateError(f"job {job.id}'s plan was sent back {done} time{'s' * (done != 1)} already, the limit "
                                f"(max_replans = {limit}): approve, edit or reject it")

    def pending_answer(self, job_id: str) -> DirectorAnswer | None:
        """The director's latest answer to the plan that waits now, if there is one."""
        if self.get(job_id).status != JobStatus.AWAITING_APPROVAL:
            return None
        waits = self.events(job_id, kinds=(JobWaiting,))
        since = waits[-1].id or 0 if waits else 0
        answers = [e for e in self.events(job_id, after=since, kinds=(DirectorAnswer,))
                   if isinstance(e, DirectorAnswer)]
        return answers[-1] if answers else None

    def answer(self, job_id: str) -> Job:
        """Run the waiting job on with the director's recorded answer (to its plan, or a campaign's top-up): in
        this process, or back on the queue when a worker holds the job (we then follow it until it settles)."""
        job = self.get(job_id)
        if job.status == JobStatus.AWAITING_BUDGET:
            amount = self.pending_topup(job_id)
            if amount is None:
                raise JobStateError(f"job {job_id} waits for budget: `shipyard campaign topup {job_id} USD`")
            resume: dict[str, object] = {"topup": amount}
        else:
            job = self._awaiting(job_id)
            answer = self.pending_answer(job_id)
            if answer is None:
                raise JobStateError(f"job {job_id} has no answer to its plan yet: `shipyard approve`, `reject` or "
                                    "`replan` it")
            resume = answer.resume_value()
        if not self.queue.holds(job.id):
            return self._advance(job, resume=resume)
        queued = self.queue.enqueue(job.id, "answer", resume)
        if queued is None:
            raise JobStateError(f"job {job.id} already has an answer queued; a worker (`shipyard serve`) takes it")
        return self.queue.wait(job.id, after=queued.id)

    def record_topup(self, job_id: str, amount: float, by: str = "") -> None:
        """Keep a top-up for a campaign waiting for budget; `answer` (here, in a launched process or on a
        worker) goes on with it."""
        self._topped_up(job_id, amount, by)

    def pending_topup(self, job_id: str) -> float | None:
        """The top-ups given since the campaign paused, while it still waits; None when there is none."""
        if self.get(job_id).status != JobStatus.AWAITING_BUDGET:
            return None
        pauses = self.events(job_id, kinds=(CampaignPaused,))
        since = pauses[-1].id or 0 if pauses else 0
        given = [e.amount for e in self.events(job_id, after=since, kinds=(CampaignToppedUp,))
                 if isinstance(e, CampaignToppedUp)]
        return sum(given) if given else None

    def answer_later(self, job_id: str) -> None:
        """Queue the job to run on with the director's recorded answer, for a worker; return at once."""
        answer = self.pending_answer(job_id)
        if answer is None:
            raise JobStateError(f"job {job_id} has no answer to its plan yet")
        self.queue.enqueue(job_id, "answer", answer.resume_value())

    def topup_later(self, job_id: str, amount: float, by: str = "") -> None:
        """A top-up for a worker to act on; return at once."""
        self._topped_up(job_id, amount, by)
        self.queue.enqueue(job_id, "answer", {"topup": amount})

    def _topped_up(self, job_id: str, amount: float, by: str) -> Job:
        job = self.get(job_id)
        if job.task.campaign is None or job.status != JobStatus.AWAITING_BUDGET:
            raise JobStateError(f"job {job_id} is {job.status.value}: only a campaign waiting for budget "
                                "takes a top-up")
        self.records.events.append(CampaignToppedUp(job_id=job_id, amount=amount, by=by))
        return job

    def answer_here(self, job_id: str, resume: dict[str, object]) -> Job:
        """What a worker does with a queued answer (to a plan, or a top-up): run the job on in this process."""
        job = self.get(job_id)
        if not job.status.waiting:
            raise JobStateError(f"job {job_id} is {job.status.value}: nothing waits for an answer")
        return self._advance(job, resume=dict(resume))

    # -- campaigns ---------------------------------------------------------------------

    def topup(self, job_id: str, amount: float, by: str = "") -> Job:
        """Give a campaign that waits for budget `amount` USD more; it goes on where it stood (here, or on the
        worker that holds it, followed until it settles)."""
        job = self._topped_up(job_id, amount, by)
        resume = {"topup": amount}
        if not self.queue.holds(job_id):
            return self._advance(job, resume=resume)
        queued = self.queue.enqueue(job_id, "answer", resume)
        if queued is None:
            raise JobStateError(f"job {job_id} already has an answer queued; a worker (`shipyard serve`) takes it")
        return self.queue.wait(job_id, after=queued.id)

    # -- steering ----------------------------------------------------------------------

    def retry(self, job_id: str, subtask_ids: list[str] | None = None) -> Job:
        """Run failed subtasks again (all of them by default), then integrate and verify as
        before; what succeeded stays. Each earlier attempt is kept on a `-tryN` branch.
        A job that failed part-way (an error, not a verdict) goes on from its checkpoint."""
        job = self.get(job_id)
        if job.status not in (JobStatus.FAILED, JobStatus.PARTIAL, JobStatus.CANCELLED):
            raise JobStateError(f"job {job_id} is {job.status.label}; only a failed, partial or cancelled job can be "
                                "retried")
        report = self.report(job_id)
        if report is None and not subtask_ids:
            if job.status == JobStatus.CANCELLED:
                # Cancelled mid-way: it goes on from its checkpoint, as after a crash.
                job = self.records.set_status(job_id, JobStatus.RUNNING, error=None)
            return self.run(job_id)
        failed = {s.id: s for s in report.subtasks if s.status == "failed"} if report else {}
        unknown = sorted(set(subtask_ids or []) - set(failed))
        if unknown or not failed:
            raise JobStateError(f"job {job_id}: only failed subtasks can be retried; "
                                f"failed: {sorted(failed) or 'none'}")
        chosen = set(subtask_ids or failed)
        chosen |= {i for i, s in failed.items() if s.reason.startswith("not started")}
        repo = self._repo(job)
        kept = [_keep_attempt(repo, failed[i].branch) for i in sorted(chosen) if failed[i].branch]
        self.records.events.append(SubtasksRetried(job_id=job_id, subtasks=sorted(chosen), kept=kept))
        self.records.jobs.update(job_id, JobStatus.RUNNING, error=None, report=None)
        forget = {i: None for i in chosen}
        return self._advance(job, rewind={"results": forget, "stop_reason": None})

    def cancel(self, job_id: str) -> Job:
        """Mark the job cancelled; whatever runs it stops at its next step."""
        return self.records.cancel(job_id)

    def note(self, job_id: str, text: str) -> None:
        """A note from the director, read by every agent that starts after it, in every role."""
        self.get(job_id)
        self.records.events.append(DirectorNote(job_id=job_id, text=text))

    def interrupt(self, job_id: str, grace: Callable[[], object] = lambda: None) -> str:
        """Ctrl-C: stop the job's work in this process at once — its sandboxes, its model calls — keeping all
        it did; `grace()` waits a moment for the job to end itself. The line that tells the director."""
        from orchestrator.engine.runner import interrupted_reason

        stop_running(job_id)
        grace()
        if not self.settled(job_id):
            self.finish(job_id, JobStatus.FAILED, error=interrupted_reason(job_id))
        return interrupted_reason(job_id)

    def finish(self, job_id: str, status: JobStatus, error: str | None = None) -> Job:
        """End a job that cannot run (e.g. its repository is gone), as the engine ends the others."""
        return self.records.finish(job_id, status, error=error)

    # -- the result --------------------------------------------------------------------

    def accept(self, job_id: str) -> MergeResult:
        """Merge the finished job's branch into the base branch of the user's repo."""
        job = self.get(job_id)
        if not job.status.delivered:
            raise JobStateError(f"job {job_id} is {job.status.label}; only a job that succeeded (verified or not, or "
                                "in part) can be accepted")
        result = self._repo(job).accept(branch_name(job_id), job.task.base)
        self.records.events.append(JobAccepted(job_id=job_id, ok=result.ok, sha=result.sha,
                                               conflicts=result.conflicts, message=result.message))
        return result

    def discard(self, job_id: str) -> Job:
        """Delete a finished job's branches (its own and its agents'); the job and its events stay."""
        job = self.get(job_id)
        if not job.status.finished:
            raise JobStateError(f"job {job_id} is {job.status.value}; cancel it first, then discard it")
        deleted = self._repo(job).delete_job_branches(branch_name(job_id))
        self.records.events.append(JobDiscarded(job_id=job_id, branches=deleted))
        return job

    def prune(self, older_than: float, dry_run: bool = False) -> PruneResult:
        """Forget finished jobs older than `older_than` seconds whose branches are gone."""
        from orchestrator.runtime.prune import prune

        return prune(self.settings, self.records, self.queue, older_than, dry_run)

    # -- internals -----------------------------------------------------------------------

    def _advance(self, job: Job, **how: Any) -> Job:
        """The job's graph on from its checkpoint, in this process, with this director's models and sinks."""
        from orchestrator.engine.context import endpoint_model
        from orchestrator.engine.runner import advance

        return advance(self.settings, self.records, job, models=self.models or endpoint_model,
                       announce=self.announce, **how)

    def close(self) -> None:
        """Let go of the queue's connection (commands that enqueued end with this)."""
        self.queue.close()

    def _awaiting(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status != JobStatus.AWAITING_APPROVAL:
            raise JobStateError(f"job {job_id} is {job.status.value}, not waiting for plan approval")
        return job

    def _repo(self, job: Job) -> GitRepo:
        from orchestrator.engine.runner import open_repo

        return open_repo(self.settings, job.task.repo)


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
