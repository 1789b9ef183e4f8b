"""Every event of a job, typed: one class per kind, one union to read them back, upgrades for old rows.

An event is a frozen model: who (job, subtask, agent, role), when, what it cost (tokens and USD
of the model calls it stands for), and the fields of its kind. The log stores the kind's own
fields as a JSON payload beside the version of this schema they were written with; reading a
row upgrades an older payload step by step, so that events written by any earlier version load.
A kind this version does not know (written by a newer one) reads as `UnknownEvent`.

This module is the only place where an event kind is spelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agents.plan import Plan
from agents.usage import UsageTotals
from orchestrator.store.jobs import Task

SCHEMA_VERSION = 2


class Event(BaseModel):
    """What every event has; the fields of its kind come from its class."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    id: int | None = None
    job_id: str = ""
    subtask: str | None = None
    agent: str | None = None
    role: str | None = None
    tokens: int = 0
    cost: float = 0.0
    ts: float = Field(default_factory=time.time)

    @property
    def payload(self) -> dict[str, Any]:
        """The kind's own fields, as stored (and as `shipyard export` writes them)."""
        return self.model_dump(mode="json", exclude=BASE_FIELDS)


BASE_FIELDS = frozenset(Event.model_fields)


# -- the job -----------------------------------------------------------------------------


class JobSubmitted(Event):
    kind: Literal["job.submitted"] = "job.submitted"
    task: Task


class JobQueued(Event):
    kind: Literal["job.queued"] = "job.queued"
    action: str
    workflow: str


class JobStatusChanged(Event):
    kind: Literal["job.status"] = "job.status"
    status: str


class JobPrepared(Event):
    kind: Literal["job.prepared"] = "job.prepared"
    base_sha: str
    job_branch: str
    test_command: str | None = None
    tests_before: bool | None = None


class TestCommandChosen(Event):
    """Which command the job's tests run with and what the choice rests on; again when the planner refines it."""

    __test__ = False  # not a pytest test class, whatever its name

    kind: Literal["test.command"] = "test.command"
    command: str | None = None
    origin: str = Field("discovered", description="task, settings, discovered, planner, or none")
    evidence: list[str] = []
    reason: str = Field("", description="why there is no command, when there is none")


class TestBaseline(Event):
    """The suite at the base commit: what every later run is judged against."""

    __test__ = False

    kind: Literal["test.baseline"] = "test.baseline"
    command: str | None = None
    exit_code: int | None = None
    source: str = Field("not-run", description="where the per-test results come from (test_results.ResultSource)")
    counts: dict[str, int] = {}
    failing: list[str] = Field(default_factory=list, description="the tests failing at base: pre-existing failures")
    messages: dict[str, str] = {}
    note: str | None = None


class RepoInstructionsRead(Event):
    """The repository's own instructions for agents (AGENTS.md, CLAUDE.md...), as every agent gets them."""

    kind: Literal["repo.instructions"] = "repo.instructions"
    sources: list[str] = []
    text: str = ""
    cut: bool = False
    elsewhere: list[str] = Field(default_factory=list, description="nested ones, given to the work under them")


class JobWaiting(Event):
    kind: Literal["job.waiting"] = "job.waiting"
    waiting_for: str = "plan approval"


class JobFinished(Event):
    kind: Literal["job.finished"] = "job.finished"
    status: str
    error: str | None = None
    branch: str | None = None


class JobAccepted(Event):
    kind: Literal["job.accepted"] = "job.accepted"
    ok: bool
    sha: str | None = None
    conflicts: list[str] = []
    message: str = ""


class JobDiscarded(Event):
    kind: Literal["job.discarded"] = "job.discarded"
    branches: list[str] = []


class Notice(Event):
    """Something the director should know that changes no state: e.g. which sandbox backend stood in for
    the one asked for, and why."""

    kind: Literal["job.notice"] = "job.notice"
    text: str


class DirectorNote(Event):
    kind: Literal["director.note"] = "director.note"
    text: str


class DirectorAnswer(Event):
    """The director's answer to a plan waiting for approval, recorded before any process acts on it. `replan`
    sends the plan back to the planner with `reason` (what is wrong with it); the new plan waits again."""

    kind: Literal["director.answer"] = "director.answer"
    action: Literal["approve", "edit", "reject", "replan"]
    plan: Plan | None = None
    reason: str = Field("", description="reject: why, for the record; replan: the note the planner gets")
    by: str = ""

    def resume_value(self) -> dict[str, Any]:
        """What the graph's approval interrupt is resumed with."""
        return {"action": self.action, "plan": self.plan.model_dump() if self.plan else None, "reason": self.reason}


# -- the plan ------------------------------------------------------------------------------


class PlanReady(Event):
    kind: Literal["plan.ready"] = "plan.ready"
    plan: Plan


class PlanEdited(Event):
    kind: Literal["plan.edited"] = "plan.edited"
    plan: Plan


class PlanApproved(Event):
    kind: Literal["plan.approved"] = "plan.approved"


class PlanRejected(Event):
    kind: Literal["plan.rejected"] = "plan.rejected"
    reason: str = ""


class PlanSentBack(Event):
    """The director sent the plan back: the planner plans again with it and `note` in its prompt, and the new
    plan waits for approval. `round` counts the plans sent back so far (1 for the first)."""

    kind: Literal["plan.sent_back"] = "plan.sent_back"
    note: str
    round: int = 1


# -- subtasks ------------------------------------------------------------------------------

SubtaskState = Literal["queued", "coding", "testing", "fixing", "reviewing", "approved", "failed", "merged",
                       "conflict"]


class SubtaskStatus(Event):
    kind: Literal["subtask.status"] = "subtask.status"
    status: SubtaskState
    reason: str = ""
    branch: str | None = None
    head: str | None = None
    round: int | None = None


class SubtasksRetried(Event):
    kind: Literal["subtask.retry"] = "subtask.retry"
    subtasks: list[str]
    kept: list[str | None] = []


class CandidateChosen(Event):
    kind: Literal["candidates.chosen"] = "candidates.chosen"
    winner: str
    head: str
    scores: dict[str, dict[str, Any]] = {}


class TestResult(Event):
    __test__ = False  # not a pytest test class, whatever its name

    kind: Literal["test.result"] = "test.result"
    command: str | None = None
    passed: bool | None = None
    exit_code: int | None = None
    output: str = ""
    scope: Literal["subtask", "job"] = "subtask"
    verdict: str | None = Field(None, description="against the baseline: passed, failed or unverified")
    reasons: list[str] = []
    newly_failing: list[str] = Field(default_factory=list, description="passed at base, fail now (or new and fail)")
    pre_existing_failures: list[str] = []
    reused_from: str | None = Field(None, description="not run again: the results of this earlier run of the "
                                    "job, on the same files with the same command")


class ReviewGiven(Event):
    kind: Literal["review.verdict"] = "review.verdict"
    decision: str
    summary: str = ""
    comments: list[str] = []


class MergeDone(Event):
    kind: Literal["merge"] = "merge"
    ok: bool
    branch: str = ""
    sha: str | None = None
    conflicts: list[str] = []
    resolved: list[str] = []


# -- agents --------------------------------------------------------------------------------


class AgentMessage(Event):
    """One model call and its answer; `tokens` and `cost` are that call's."""

    kind: Literal["agent.message"] = "agent.message"
    step: int
    content: str = ""
    tool_calls: list[dict[str, Any]] = []


class AgentToolResult(Event):
    kind: Literal["agent.tool_result"] = "agent.tool_result"
    step: int
    tool: str
    arguments: Any = None
    ok: bool = True
    output: str = ""


class AgentCondensed(Event):
    """The agent's history was shortened to fit its model's context window (agents.context); the summary
    call's tokens and cost are on the agent's next message, which it precedes."""

    kind: Literal["agent.condensed"] = "agent.condensed"
    step: int
    reason: str = Field(description="window: the history outgrew the window; overflow: the endpoint refused it")
    tokens_before: int
    tokens_after: int
    messages_condensed: int = 0
    observations_elided: int = 0
    window: int
    summary: str = ""

    @property
    def why(self) -> str:
        return "after the endpoint refused it as too long" if self.reason == "overflow" else "to fit"


class AgentFinished(Event):
    """The agent's end; `usage` sums its calls (already counted, call by call, on its messages)."""

    kind: Literal["agent.finished"] = "agent.finished"
    status: str
    reason: str = ""
    summary: str = ""
    submission: dict[str, Any] | None = None
    steps: int = 0
    usage: UsageTotals = Field(default_factory=UsageTotals)
    seconds: float = 0.0


class AgentCommit(Event):
    kind: Literal["agent.commit"] = "agent.commit"
    head: str


class SandboxSetup(Event):
    """Written by versions that ran setup_command in every sandbox; kept so that their logs still read."""

    kind: Literal["sandbox.setup"] = "sandbox.setup"
    command: str
    exit_code: int
    output: str = ""


# -- the project environment -----------------------------------------------------------------


class EnvironmentSetup(Event):
    """One setup command of a project environment being prepared, and how it went."""

    kind: Literal["env.setup"] = "env.setup"
    origin: str = Field(description="where the command comes from: postCreateCommand, setup_command, python...")
    command: str
    exit_code: int
    output: str = Field("", description="its output, head and tail")
    seconds: float = 0.0
    timed_out: bool = False


class EnvironmentReady(Event):
    """The job's sandboxes start from this environment: prepared now, or found in the cache."""

    kind: Literal["env.ready"] = "env.ready"
    key: str
    source: str = Field(description="devcontainer, dockerfile, setup_command or detected")
    backend: str
    reused: bool
    image: str | None = Field(None, description="docker: the frozen image")
    evidence: list[str] = []
    seconds: float = Field(0.0, description="what setting it up took (0 when reused)")


# -- campaigns -----------------------------------------------------------------------------


class CampaignMeasured(Event):
    """The verifier's word on a commit of the campaign (its branch, or an option's job branch)."""

    kind: Literal["campaign.measured"] = "campaign.measured"
    iteration: int
    sha: str
    passed: bool
    figure: float | None = None
    of: str = Field("campaign", description="'campaign' for its branch, else the option's job id")


class CampaignOptions(Event):
    kind: Literal["campaign.options"] = "campaign.options"
    iteration: int
    options: list[dict[str, Any]] = Field(description="title, cost, risk, rationale of each, best ranked first")
    jobs: list[str] = []


class CampaignChosen(Event):
    kind: Literal["campaign.chosen"] = "campaign.chosen"
    iteration: int
    winner: str | None = Field(description="the job whose branch was merged, or None when none moved the figure")
    scores: dict[str, dict[str, Any]] = {}


class CampaignDigest(Event):
    """After each iteration: what the director should know, in a few lines."""

    kind: Literal["campaign.digest"] = "campaign.digest"
    iteration: int
    text: str
    figure_before: float | None = None
    figure_now: float | None = None
    spent: float = 0.0


class CampaignPaused(Event):
    kind: Literal["campaign.paused"] = "campaign.paused"
    spent: float
    budget: float


class CampaignToppedUp(Event):
    kind: Literal["campaign.topped_up"] = "campaign.topped_up"
    amount: float
    by: str = ""


# -- runtime and front ends ------------------------------------------------------------------


class NotificationRecorded(Event):
    kind: Literal["notification"] = "notification"
    about: str
    message: str


class NotificationSent(Event):
    kind: Literal["notification.sent"] = "notification.sent"
    sink: str


class NotificationFailed(Event):
    kind: Literal["notification.failed"] = "notification.failed"
    sink: str
    error: str


class WorkerClaimed(Event):
    kind: Literal["worker.claimed"] = "worker.claimed"
    worker: str
    action: str


class WorkerReleased(Event):
    kind: Literal["worker.released"] = "worker.released"
    worker: str
    status: str


class GitHubRequest(Event):
    kind: Literal["github.request"] = "github.request"
    repo: str
    number: int
    user: str
    push_to: str | None = None


class UnknownEvent(Event):
    """A kind this version does not know, kept as it was stored."""

    data: dict[str, Any] = {}

    @property
    def payload(self) -> dict[str, Any]:
        return dict(self.data)


AnyEvent = Annotated[
    JobSubmitted | JobQueued | JobStatusChanged | JobPrepared | TestCommandChosen | TestBaseline
    | RepoInstructionsRead | JobWaiting | JobFinished | JobAccepted | JobDiscarded | Notice | DirectorNote
    | DirectorAnswer | PlanReady | PlanEdited | PlanApproved | PlanRejected | PlanSentBack
    | SubtaskStatus | SubtasksRetried | CandidateChosen | TestResult | ReviewGiven | MergeDone | AgentMessage
    | AgentToolResult | AgentCondensed | AgentFinished | AgentCommit | SandboxSetup | EnvironmentSetup
    | EnvironmentReady | NotificationRecorded
    | NotificationSent | NotificationFailed | WorkerClaimed | WorkerReleased | GitHubRequest | CampaignMeasured
    | CampaignOptions | CampaignChosen | CampaignDigest | CampaignPaused | CampaignToppedUp,
    Field(discriminator="kind"),
]
_READER: TypeAdapter[Event] = TypeAdapter(AnyEvent)
KINDS: dict[str, type[Event]] = {
    cls.model_fields["kind"].default: cls for cls in Event.__subclasses__() if cls is not UnknownEvent
}


def kind_of(*classes: type[Event]) -> list[str]:
    """The stored kind names of these event classes (for queries that filter by kind)."""
    return [cls.model_fields["kind"].default for cls in classes]


# -- stored rows -----------------------------------------------------------------------------

# Version 1 (before events were typed) stored the same fields under a few other names.
Upgrade = Callable[[dict[str, Any]], dict[str, Any]]
UPGRADES: dict[tuple[str, int], Upgrade] = {
    ("job.submitted", 1): lambda p: {"task": p},
    ("job.waiting", 1): lambda p: {"waiting_for": p.get("for", "plan approval")},
    ("notification", 1): lambda p: {"about": p.get("kind", ""), "message": p.get("message", "")},
}


def to_row(event: Event) -> dict[str, Any]:
    """The columns of the events table for `event`."""
    row = event.model_dump(mode="json", include=BASE_FIELDS - {"id"})
    return {**row, "payload": event.payload, "v": SCHEMA_VERSION}


def from_row(row: dict[str, Any]) -> Event:
    """The event stored in `row`, whichever version wrote it."""
    kind, payload, version = row["kind"], dict(row.get("payload") or {}), row.get("v") or 1
    base = {name: row[name] for name in BASE_FIELDS if name in row}
    cls = KINDS.get(kind)
    if cls is None:
        return UnknownEvent(**base, data=payload)
    while version < SCHEMA_VERSION:
        upgrade = UPGRADES.get((kind, version))
        payload = upgrade(payload) if upgrade else payload
        version += 1
    # Fields an older version wrote and this one dropped are left behind, never refused.
    fields = {name: value for name, value in payload.items() if name in cls.model_fields and name not in BASE_FIELDS}
    try:
        return _READER.validate_python({**fields, **base})
    except ValidationError:
        return UnknownEvent(**{**base, "kind": kind}, data=payload)


# -- agents' names -----------------------------------------------------------------------------


class AgentId(BaseModel):
    """Who an agent is: its role, the subtask (or candidate) it works on, its round."""

    model_config = ConfigDict(frozen=True)

    role: str
    workspace: str | None = Field(None, description="the subtask id, or a candidate's workspace (s1-c2)")
    round: int | None = None

    @property
    def name(self) -> str:
        """As stored on events and commits: `s1.coder.2`, `s1-c1.coder.1`, `planner`, `s1.tests`."""
        parts = [p for p in (self.workspace, self.role, self.round) if p is not None]
        return ".".join(str(p) for p in parts)

    @classmethod
    def parse(cls, name: str) -> AgentId:
        parts = name.split(".")
        number = parts[-1].isdigit() and len(parts) > 1
        round_ = int(parts.pop()) if number else None
        role = parts.pop() if parts else name
        return cls(role=role, workspace=".".join(parts) or None, round=round_)

    def label(self, subtask: str | None) -> str:
        """How it reads under its subtask: `coder 2`, `c1 coder 1`, `tests`."""
        where = self.workspace or ""
        if subtask and where == subtask:
            where = ""
        elif subtask and where.startswith(f"{subtask}-"):
            where = where.removeprefix(f"{subtask}-")
        return " ".join(str(p) for p in (where or None, self.role, self.round) if p is not None)
