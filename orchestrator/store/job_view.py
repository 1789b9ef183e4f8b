"""A job as its events tell it: plan, subtasks, agents, tests, reviews, usage. The one fold.

Every reader — `shipyard run`'s live view, `shipyard show`, the TUI, the GitHub status comment,
the report, notifications — folds the same events with `JobView.apply`, one event at a time, so
following a live job costs only its new events. Pure data: no I/O, no rendering.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from agents.plan import Plan
from agents.usage import UsageTotals
from orchestrator.store import events as ev
from orchestrator.store.events import AgentId
from orchestrator.store.jobs import JobStatus, Task

# Enough for any real job; a runaway stream of test runs or reviews cannot grow memory.
MAX_RECORDS = 200


@dataclass
class AgentView:
    name: str
    role: str
    subtask: str | None
    started: float
    last: float
    status: str = "running"  # until its end says submitted, limit or error
    steps: int = 0
    tokens: int = 0
    cost: float = 0.0
    seconds: float | None = None
    reason: str = ""
    verdict: str | None = None
    last_step: str = ""  # the latest tool call, in a few words
    usage: UsageTotals | None = None  # the sums its ends reported
    attempt: int = 1  # which run of its subtask it belongs to (a retry starts the next)

    @property
    def label(self) -> str:
        """How it reads under its subtask: `coder 2`, `c1 coder 1`."""
        return AgentId.parse(self.name).label(self.subtask)

    def elapsed(self, now: float) -> float:
        return self.seconds if self.seconds is not None else max(0.0, now - self.started)


@dataclass
class SubtaskView:
    id: str
    title: str
    instructions: str = ""
    depends_on: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    acceptance: list[str] = field(default_factory=list)
    status: str = "queued"
    reason: str = ""
    branch: str | None = None
    # The job branch's head when the subtask started: its own changes are the diff from there.
    base: str | None = None
    agents: list[str] = field(default_factory=list)
    attempt: int = 1  # 1, then one more for every retry of it


@dataclass
class SentBackView:
    """A plan the director sent back to the planner, and what they said was wrong with it."""

    round: int
    note: str
    plan: Plan | None
    ts: float


# Subtask states that end it; when the job ends, a subtask in any other state is closed.
SUBTASK_ENDS = frozenset({"merged", "approved", "failed", "conflict", "cancelled", "stopped"})
JOB_ENDS = frozenset(status.value for status in JobStatus if status.finished)


@dataclass
class IterationView:
    """One iteration of a campaign: the options it ran, the one kept, the figure it moved, the money so far."""

    number: int
    jobs: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    winner: str | None = None
    figure_before: float | None = None
    figure_now: float | None = None
    spent: float | None = None  # the campaign's whole spend when the iteration ended
    digest: str = ""


@dataclass
class TestRecord:
    __test__ = False  # not a pytest test class, whatever its name

    subtask: str | None
    agent: str | None  # the subtask's id, or one candidate's name when several race
    passed: bool | None
    exit_code: int | None
    command: str | None
    output: str
    scope: str
    ts: float


@dataclass
class VerdictRecord:
    subtask: str | None
    agent: str | None
    decision: str
    summary: str
    comments: list[str]


class JobView:
    def __init__(self, job_id: str):
        self.job_id = job_id
        self.cursor = 0  # id of the last event folded in
        self.task: Task | None = None
        self.status: str | None = None
        self.error: str | None = None
        self.summary = ""
        self.subtasks: dict[str, SubtaskView] = {}
        self.agents: dict[str, AgentView] = {}
        self.tests: deque[TestRecord] = deque(maxlen=MAX_RECORDS)
        self.verdicts: deque[VerdictRecord] = deque(maxlen=MAX_RECORDS)
        self.notes: list[str] = []
        self.base_sha: str | None = None
        self.job_branch: str | None = None
        self.job_head: str | None = None
        self.test_command: str | None = None
        self.test_evidence: list[str] = []  # what the choice of the command rests on
        self.test_origin: str | None = None  # task, settings, discovered, planner, none
        self.no_test_reason = ""
        self.tests_before: bool | None = None
        self.baseline_counts: dict[str, int] = {}
        self.baseline_failures: list[str] = []  # failing at base: named as pre-existing everywhere
        self.baseline_messages: dict[str, str] = {}
        self.instructions: list[str] = []  # where the repository's instructions for agents come from
        self.instructions_text = ""
        self.tests_after: TestRecord | None = None
        # The project environment the job's sandboxes start from, and the setup commands run for it.
        self.environment: ev.EnvironmentReady | None = None
        self.setup_runs: deque[ev.EnvironmentSetup] = deque(maxlen=MAX_RECORDS)
        self.tokens = 0
        self.cost = 0.0
        self.started: float | None = None
        self.last: float | None = None
        self.ended: float | None = None
        self.worker: str | None = None
        self.accepted: ev.JobAccepted | None = None
        self.discarded = False
        # A campaign's course: its branch's figure at the start and after each iteration, what it is doing.
        self.figures: list[float | None] = []
        self.iteration = 0
        self.option_jobs: list[str] = []  # the jobs of the iteration under way
        self.digests: list[str] = []
        self.paused: ev.CampaignPaused | None = None
        self.iterations: dict[int, IterationView] = {}
        self.topped_up = 0.0  # USD given on top of the campaign's budget
        # The director's answer to the plan that waits, until the job moves on it (a worker may take a while).
        self.pending_answer: ev.DirectorAnswer | None = None
        self.plan_version = 0  # bumped when the plan is replaced, so views rebuild
        # The plans the director sent back for re-planning, oldest first: the plan on view is the latest one.
        self.sent_back: list[SentBackView] = []
        # What changed since the views last looked: "plan", "subtask:<id>", "agent:<name>", "agents"
        # (one more), "tests", "verdicts", "commits", "usage" (tokens, cost), "job" (status, accepted...).
        self.changed: set[str] = set()

    @classmethod
    def of(cls, job_id: str, events: list[ev.Event]) -> JobView:
        view = cls(job_id)
        for event in events:
            view.apply(event)
        return view

    # -- reading --------------------------------------------------------------------

    @property
    def done(self) -> int:
        return sum(1 for s in self.subtasks.values() if s.status == "merged")

    @property
    def total(self) -> int:
        return len(self.subtasks)

    @property
    def plan(self) -> Plan | None:
        """The plan as it stands (edits included), or None before there is one."""
        if not self.subtasks:
            return None
        return Plan.model_validate({
            "summary": self.summary,
            "subtasks": [
                {"id": s.id, "title": s.title or s.id, "instructions": s.instructions or s.title or s.id,
                 "files": s.files, "depends_on": s.depends_on, "acceptance": s.acceptance}
                for s in self.subtasks.values()
            ],
        })

    def agents_of(self, subtask: str | None) -> list[AgentView]:
        if subtask is None:
            return [a for a in self.agents.values() if a.subtask is None]
        return [self.agents[name] for name in self.subtasks[subtask].agents] if subtask in self.subtasks else []

    def usage(self) -> UsageTotals:
        """What the finished agents spent, summed."""
        total = UsageTotals()
        for agent in self.agents.values():
            if agent.usage is not None:
                total = total.plus(agent.usage)
        return total

    def waves(self) -> list[list[SubtaskView]]:
        """Subtasks by the wave they can run in: a subtask runs after everything it depends on."""
        level: dict[str, int] = {}

        def depth(sub_id: str, seen: frozenset[str] = frozenset()) -> int:
            if sub_id not in level:
                deps = [d for d in self.subtasks[sub_id].depends_on if d in self.subtasks and d not in seen]
                level[sub_id] = 1 + max((depth(d, seen | {sub_id}) for d in deps), default=0)
            return level[sub_id]

        waves: dict[int, list[SubtaskView]] = {}
        for sub in self.subtasks.values():
            waves.setdefault(depth(sub.id), []).append(sub)
        return [waves[k] for k in sorted(waves)]

    # -- folding ----------------------------------------------------------------------

    def apply(self, event: ev.Event) -> None:
        self.cursor = max(self.cursor, event.id or 0)
        self.started = event.ts if self.started is None else self.started
        self.last = event.ts
        if event.tokens or event.cost:
            self.tokens += event.tokens
            self.cost += event.cost
            self.changed.add("usage")
        if event.agent and isinstance(event, ev.AgentMessage | ev.AgentToolResult | ev.AgentFinished):
            self._agent_event(event)
        match event:
            case ev.JobSubmitted():
                self.task = event.task
                self.changed.add("job")
            case ev.PlanReady() | ev.PlanEdited():
                self._set_plan(event.plan)
            case ev.SubtaskStatus(subtask=str(sub_id)):
                sub = self._subtask(sub_id)
                sub.status, sub.reason = event.status, event.reason
                if sub.status == "coding" and sub.base is None:
                    sub.base = self.job_head
                    sub.branch = event.branch or sub.branch
                self.changed.add(f"subtask:{sub.id}")
            case ev.MergeDone(subtask=str(sub_id)):
                sub = self._subtask(sub_id)
                if event.ok:
                    sub.status = "merged"
                    self.job_head = event.sha or self.job_head
                    self.changed.add("commits")
                else:
                    sub.status = "conflict"
                self.changed.add(f"subtask:{sub.id}")
            case ev.TestResult():
                record = TestRecord(subtask=event.subtask, agent=event.agent, passed=event.passed,
                                    exit_code=event.exit_code, command=event.command, output=event.output,
                                    scope=event.scope, ts=event.ts)
                self.tests.append(record)
                if event.scope == "job":
                    self.tests_after = record
                self.changed.add("tests")
            case ev.ReviewGiven():
                self.verdicts.append(VerdictRecord(subtask=event.subtask, agent=event.agent, decision=event.decision,
                                                   summary=event.summary, comments=list(event.comments)))
                if event.agent in self.agents:
                    self.agents[event.agent].verdict = event.decision
                    self.changed.add(f"agent:{event.agent}")
                self.changed.add("verdicts")
            case ev.AgentCommit():
                self.changed.add("commits")
            case ev.JobPrepared():
                self.base_sha = self.job_head = event.base_sha
                self.job_branch = event.job_branch
                self.test_command = event.test_command
                self.tests_before = event.tests_before
                self.changed.update(("job", "tests"))
            case ev.TestCommandChosen():
                self.test_command, self.test_origin = event.command, event.origin
                self.test_evidence, self.no_test_reason = list(event.evidence), event.reason
                self.changed.update(("job", "tests"))
            case ev.TestBaseline():
                self.baseline_counts, self.baseline_failures = dict(event.counts), list(event.failing)
                self.baseline_messages = dict(event.messages)
                self.changed.update(("job", "tests"))
            case ev.RepoInstructionsRead():
                self.instructions, self.instructions_text = list(event.sources), event.text
                self.changed.add("plan")
            case ev.EnvironmentSetup():
                self.setup_runs.append(event)
                self.changed.add("job")
            case ev.EnvironmentReady():
                self.environment = event
                self.changed.add("job")
            case ev.JobStatusChanged() | ev.JobFinished():
                self.status = event.status
                self.error = getattr(event, "error", self.error)
                self.ended = event.ts if event.status in JOB_ENDS else None
                if event.status != "awaiting_approval":
                    self.pending_answer = None
                if self.ended is not None:
                    self._close(event)
                self.changed.add("job")
            case ev.DirectorAnswer():
                self.pending_answer = event
                self.changed.add("job")
            case ev.JobWaiting() | ev.PlanApproved() | ev.PlanRejected():
                self.pending_answer = None
                self.changed.add("job")
            case ev.PlanSentBack():
                # The plan goes back to the planner: kept here with the note, and off the tree until the next one.
                self.sent_back.append(SentBackView(round=event.round, note=event.note, plan=self.plan, ts=event.ts))
                self.pending_answer = None
                self.summary, self.subtasks = "", {}
                self.plan_version += 1
                self.changed.update(("plan", "job"))
            case ev.SubtasksRetried():
                for sub_id in event.subtasks:
                    sub = self._subtask(sub_id)
                    sub.attempt += 1
                    sub.status, sub.reason = "queued", ""
                    self.changed.add(f"subtask:{sub_id}")
                self.plan_version += 1  # the tree groups the attempts anew
            case ev.JobAccepted():
                self.accepted = event
                self.changed.add("job")
            case ev.JobDiscarded():
                self.discarded = True
                self.changed.add("job")
            case ev.DirectorNote():
                self.notes.append(event.text)
                self.changed.add("job")
            case ev.WorkerClaimed():
                self.worker = event.worker
                self.changed.add("job")
            case ev.CampaignMeasured(of="campaign"):
                self.figures.append(event.figure)
                self.changed.add("campaign")
            case ev.CampaignOptions():
                self.iteration, self.option_jobs = event.iteration, list(event.jobs)
                it = self._iteration(event.iteration)
                it.jobs = list(event.jobs)
                it.titles = [str(option.get("title", "")) for option in event.options]
                self.changed.add("campaign")
            case ev.CampaignChosen():
                self._iteration(event.iteration).winner = event.winner
                self.changed.add("campaign")
            case ev.CampaignDigest():
                self.digests.append(event.text)
                self.option_jobs = []
                it = self._iteration(event.iteration)
                it.figure_before, it.figure_now, it.spent, it.digest = (
                    event.figure_before, event.figure_now, event.spent, event.text)
                self.changed.add("campaign")
            case ev.CampaignPaused():
                self.paused = event
                self.changed.add("campaign")
            case ev.CampaignToppedUp():
                self.paused = None
                self.topped_up += event.amount
                self.changed.add("campaign")

    def _iteration(self, number: int) -> IterationView:
        return self.iterations.setdefault(number, IterationView(number))

    def _close(self, event: ev.Event) -> None:
        """The job ended: its subtasks and agents still under way never will be; their clocks stop here."""
        closed = "cancelled" if event.status == "cancelled" else "stopped"  # type: ignore[attr-defined]
        for sub in self.subtasks.values():
            if sub.status not in SUBTASK_ENDS:
                sub.status = closed
                self.changed.add(f"subtask:{sub.id}")
        for agent in self.agents.values():
            if agent.seconds is None:
                agent.seconds = max(0.0, event.ts - agent.started)
                self.changed.add(f"agent:{agent.name}")

    def _agent_event(self, event: ev.AgentMessage | ev.AgentToolResult | ev.AgentFinished) -> None:
        name = event.agent or ""
        agent = self.agents.get(name)
        if agent is None:
            agent = self.agents[name] = AgentView(
                name=name, role=event.role or "", subtask=event.subtask, started=event.ts, last=event.ts,
                attempt=self._subtask(event.subtask).attempt if event.subtask else 1,
            )
            if event.subtask:
                self._subtask(event.subtask).agents.append(name)
                self.changed.add(f"subtask:{event.subtask}")
            self.changed.add("agents")
        agent.last = event.ts
        agent.tokens += event.tokens
        agent.cost += event.cost
        match event:
            case ev.AgentMessage():
                agent.steps = max(agent.steps, event.step)
            case ev.AgentToolResult():
                agent.last_step = f"{event.tool}: {' '.join(event.output.split())[:60]}"
            case ev.AgentFinished():
                agent.status, agent.reason = event.status, event.reason
                agent.steps = event.steps or agent.steps
                agent.seconds = event.seconds
                # A retried agent of the same name ends again: its report counts both runs.
                agent.usage = event.usage if agent.usage is None else agent.usage.plus(event.usage)
        self.changed.add(f"agent:{name}")

    def _set_plan(self, plan: Plan) -> None:
        old = self.subtasks
        self.summary = plan.summary
        subtasks: dict[str, SubtaskView] = {}
        for raw in plan.subtasks:
            sub = SubtaskView(id=raw.id, title=raw.title, instructions=raw.instructions,
                              depends_on=list(raw.depends_on), files=list(raw.files), acceptance=list(raw.acceptance))
            if raw.id in old:  # an edited plan keeps what already happened to a subtask
                before = old[raw.id]
                sub.status, sub.reason, sub.branch, sub.base, sub.agents = (
                    before.status, before.reason, before.branch, before.base, before.agents)
            subtasks[sub.id] = sub
        self.subtasks = subtasks
        self.plan_version += 1
        self.changed.add("plan")

    def _subtask(self, sub_id: str) -> SubtaskView:
        # Events of a subtask the plan does not list (an old plan, a resolver) still show.
        if sub_id not in self.subtasks:
            self.subtasks[sub_id] = SubtaskView(id=sub_id, title="")
            self.plan_version += 1
            self.changed.add("plan")
        return self.subtasks[sub_id]
