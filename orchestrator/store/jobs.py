"""Tasks and jobs: what the director asked for, and the record of each run of it."""

from __future__ import annotations

import re
import secrets
import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine, func, insert, or_, select, update

from agents.plan import Plan
from orchestrator.store.db import jobs


class Campaign(BaseModel):
    """A goal held by a verifier, pursued in iterations of jobs on one branch until the verifier passes."""

    model_config = ConfigDict(extra="forbid")

    verifier: str = Field(min_length=1, description="a command: exit 0 when the goal holds; what it prints says how "
                          "far it is (a number)")
    figure: Literal["lower", "higher"] = Field("lower", description="which way the verifier's number improves")
    figure_pattern: str | None = Field(None, description="a regex whose first group (else whole match) is the "
                                       "number; default: the last number of the verifier's last line that has one")
    budget: float | None = Field(None, ge=0, description="USD for the whole campaign; it pauses when spent")
    iteration_budget: float | None = Field(None, ge=0, description="USD for one iteration (all its options)")
    options: int = Field(1, ge=1, le=4, description="alternative plans run side by side in each iteration")
    stall_after: int = Field(3, ge=1, description="iterations without progress after which it stops and says why")
    max_iterations: int = Field(20, ge=1)

    @field_validator("figure_pattern")
    @classmethod
    def _a_regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc})") from None
        return pattern


class Task(BaseModel):
    """What the director hands Shipyard."""

    instruction: str = Field(min_length=1)
    repo: str = Field(description="a local path or a git URL")
    base: str = Field("HEAD", description="the ref the work starts from")
    approve_plan: bool = Field(False, description="wait for the director to approve the plan")
    candidates: int = Field(1, ge=1, le=5, description="coders attempting each subtask")
    max_cost: float | None = Field(None, ge=0, description="USD for the whole job")
    network: bool = Field(False, description="let sandboxes reach the network")
    test_command: str | None = Field(None, description="overrides the configured or detected test command")
    image: str | None = Field(None, description="overrides the configured sandbox image")
    campaign: Campaign | None = Field(None, description="the task is a goal pursued over iterations of jobs")
    plan: Plan | None = Field(None, description="the plan to follow instead of asking the planner")
    parent: str | None = Field(None, description="the campaign this job is an iteration's option of")


# The fewest characters of an id's end that `find` takes for the id: what the TUI's lists show.
SHORT_ID = 4


class JobStatus(StrEnum):
    QUEUED = "queued"
    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_BUDGET = "awaiting_budget"  # a campaign whose budget is spent: a top-up goes on
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # verified: the tests ran, and nothing that passed at base fails
    UNVERIFIED = "unverified"  # succeeded, but no test verified it (none found, or none could tell)
    PARTIAL = "partial"  # some subtasks merged and break nothing; others failed
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def waiting(self) -> bool:
        """Stopped until the director answers: a plan to approve, a campaign to top up."""
        return self in (JobStatus.AWAITING_APPROVAL, JobStatus.AWAITING_BUDGET)

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.UNVERIFIED, JobStatus.PARTIAL, JobStatus.FAILED,
                        JobStatus.REJECTED, JobStatus.CANCELLED)

    @property
    def delivered(self) -> bool:
        """Ended with work on its branch that breaks nothing that passed at base: it may be accepted."""
        return self in (JobStatus.SUCCEEDED, JobStatus.UNVERIFIED, JobStatus.PARTIAL)

    @property
    def label(self) -> str:
        """How people read it: "succeeded, unverified" says what "unverified" alone does not."""
        return {JobStatus.UNVERIFIED: "succeeded, unverified", JobStatus.PARTIAL: "partially succeeded"}.get(
            self, self.value)


CANCELLED_REASON = "cancelled by the director"


class Job(BaseModel):
    id: str
    status: JobStatus
    task: Task
    created_at: float
    updated_at: float
    report: dict[str, Any] | None = None
    error: str | None = None
    settings: dict[str, Any] | None = Field(None, description="the settings it was submitted with")
    holder: str | None = Field(None, description="host:pid:nonce of the process running it now")
    held_at: float | None = Field(None, description="that process's last heartbeat")


class JobLookupError(LookupError):
    """No job, or more than one, answers to the id given."""


def _unknown(job_id: str) -> JobLookupError:
    return JobLookupError(f"no job '{job_id}': `shipyard jobs` lists them")


def new_job_id() -> str:
    # Sortable by creation time and short enough to type (branch names carry it); 32 random
    # bits keep ids unique when hundreds of jobs are queued in the same second.
    return time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(4)


class JobStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, task: Task, job_id: str | None = None, settings: dict[str, Any] | None = None) -> Job:
        now = time.time()
        job = Job(id=job_id or new_job_id(), status=JobStatus.QUEUED, task=task, created_at=now, updated_at=now,
                  settings=settings)
        with self.engine.begin() as conn:
            conn.execute(insert(jobs).values(**job.model_dump(mode="json")))
        return job

    def get(self, job_id: str) -> Job:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise _unknown(job_id)
        return Job.model_validate(row._asdict())

    def find(self, ref: str) -> Job:
        """The job whose id is `ref` or starts with it, as git does with commit ids; else the one whose id
        ends with it (at least SHORT_ID characters), the short id the TUI shows."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs.c.id).where(jobs.c.id.startswith(ref, autoescape=True)).limit(2)).all()
            if not rows and len(ref) >= SHORT_ID:
                rows = conn.execute(select(jobs.c.id).where(jobs.c.id.endswith(ref, autoescape=True)).limit(2)).all()
        if len(rows) != 1:
            if rows:
                raise JobLookupError(f"'{ref}' matches several jobs: give more of the id")
            raise _unknown(ref)
        return self.get(rows[0].id)

    def stamp(self) -> tuple[float, int]:
        """The latest update of any job, and how many there are: what a poller compares."""
        with self.engine.connect() as conn:
            latest, count = conn.execute(select(func.coalesce(func.max(jobs.c.updated_at), 0.0),
                                                func.count())).one()
        return float(latest), int(count)

    def list(self, status: JobStatus | None = None, limit: int | None = 100) -> list[Job]:
        query = select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(jobs.c.status == status.value)
        with self.engine.connect() as conn:
            return [Job.model_validate(row._asdict()) for row in conn.execute(query)]

    def advance(self, job_id: str, status: JobStatus) -> bool:
        """Move a job to `status` unless the director cancelled it; False if cancelled."""
        with self.engine.begin() as conn:
            moved = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status != JobStatus.CANCELLED.value)
                                 .values(status=status.value, updated_at=time.time())).rowcount
        return bool(moved)

    # -- who runs the job: one process at a time ------------------------------------------

    def hold(self, job_id: str, holder: str, stale_before: float, dead: str | None = None) -> bool:
        """Take the job for `holder`, unless another process holds it with a heartbeat after `stale_before`
        (`dead`: a holder known to be gone, taken over whatever its beat). True when `holder` has it."""
        now = time.time()
        free = or_(jobs.c.holder.is_(None), jobs.c.holder == holder, jobs.c.held_at < stale_before)
        if dead is not None:
            free = or_(free, jobs.c.holder == dead)
        with self.engine.begin() as conn:
            taken = conn.execute(update(jobs).where(jobs.c.id == job_id, free)
                                 .values(holder=holder, held_at=now)).rowcount
        return bool(taken)

    def beat(self, job_id: str, holder: str) -> bool:
        """The holder's heartbeat; False when the job is no longer its own."""
        with self.engine.begin() as conn:
            return bool(conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.holder == holder)
                                     .values(held_at=time.time())).rowcount)

    def release(self, job_id: str, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.holder == holder)
                         .values(holder=None, held_at=None))

    def settle(self, job_id: str, status: JobStatus, **fields: Any) -> JobStatus:
        """End the job as `status` in one statement, unless the director cancelled it first: then it stays
        cancelled (with `fields` kept). The status that stands. One UPDATE, so that a `shipyard cancel`
        landing while the job ends is never overwritten."""
        values: dict[str, Any] = {"updated_at": time.time(), **fields}
        with self.engine.begin() as conn:
            if status != JobStatus.CANCELLED:
                moved = conn.execute(update(jobs).where(jobs.c.id == job_id,
                                                        jobs.c.status != JobStatus.CANCELLED.value)
                                     .values(status=status.value, **values)).rowcount
                if moved:
                    return status
            values["error"] = CANCELLED_REASON
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(status=JobStatus.CANCELLED.value, **values))
        return JobStatus.CANCELLED

    def cancel(self, job_id: str) -> bool:
        """Mark the job cancelled unless it has ended already; whether it was."""
        ended = [s.value for s in JobStatus if s.finished]
        with self.engine.begin() as conn:
            return bool(conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status.not_in(ended))
                                     .values(status=JobStatus.CANCELLED.value, error=CANCELLED_REASON,
                                             updated_at=time.time())).rowcount)

    def update(self, job_id: str, status: JobStatus | None = None, **fields: Any) -> None:
        values: dict[str, Any] = {"updated_at": time.time(), **fields}
        if status is not None:
            values["status"] = status.value
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
