"""A job as the TUI sees it: its events folded into plan, subtasks, agents, tests and reviews.

Pure data, no widgets: the jobs list and the job screen both fold the same event
stream with it, one event at a time, so following a live job costs only the new events.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from orchestrator.store.event_log import Event

# Enough for any real job; a runaway stream of test runs or reviews cannot grow memory.
MAX_RECORDS = 200


@dataclass
class AgentProgress:
    name: str
    role: str
    subtask: str | None
    started: float
    last: float
    status: str = "running"  # until agent.finished says submitted, limit or error
    steps: int = 0
    tokens: int = 0
    cost: float = 0.0
    seconds: float | None = None
    reason: str = ""
    verdict: str | None = None

    @property
    def short_name(self) -> str:
        """`s1.coder.2` reads `coder 2` under its subtask."""
        parts = self.name.split(".")
        if self.subtask and parts[0] == self.subtask and len(parts) > 1:
            parts = parts[1:]
        return " ".join(parts)

    def elapsed(self, now: float) -> float:
        return self.seconds if self.seconds is not None else max(0.0, now - self.started)


@dataclass
class SubtaskProgress:
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


@dataclass
class TestRecord:
    subtask: str | None
    agent: str | None  # the subtask's id, or one candidate's name when several race
    passed: bool | None
    exit_code: int | None
    command: str | None
    output: str
    ts: float


@dataclass
class VerdictRecord:
    subtask: str | None
    agent: str | None
    decision: str
    summary: str
    comments: list[str]


class JobProgress:
    def __init__(self, job_id: str):
        self.job_id = job_id
        self.cursor = 0  # id of the last event folded in
        self.status: str | None = None
        self.summary = ""
        self.subtasks: dict[str, SubtaskProgress] = {}
        self.agents: dict[str, AgentProgress] = {}
        self.tests: deque[TestRecord] = deque(maxlen=MAX_RECORDS)
        self.verdicts: deque[VerdictRecord] = deque(maxlen=MAX_RECORDS)
        self.base_sha: str | None = None
        self.job_branch: str | None = None
        self.job_head: str | None = None
        self.test_command: str | None = None
        self.tests_before: bool | None = None
        self.tokens = 0
        self.cost = 0.0
        self.started: float | None = None
        self.last: float | None = None
        self.accepted: dict[str, Any] | None = None
        self.discarded = False
        self.plan_version = 0  # bumped when the plan is replaced, so views rebuild
        # What changed since the views last looked: "plan", "subtask:<id>", "agent:<name>", "agents"
        # (one more), "tests", "verdicts", "commits", "usage" (tokens, cost), "job" (status, accepted...).
        self.changed: set[str] = set()

    # -- reading --------------------------------------------------------------------

    @property
    def done(self) -> int:
        return sum(1 for s in self.subtasks.values() if s.status == "merged")

    @property
    def total(self) -> int:
        return len(self.subtasks)

    @property
    def plan(self) -> dict[str, Any]:
        """The plan as the orchestrator's Plan model takes it (for the plan editor)."""
        return {
            "summary": self.summary,
            "subtasks": [
                {"id": s.id, "title": s.title, "instructions": s.instructions, "files": s.files,
                 "depends_on": s.depends_on, "acceptance": s.acceptance}
                for s in self.subtasks.values()
            ],
        }

    def agents_of(self, subtask: str | None) -> list[AgentProgress]:
        if subtask is None:
            return [a for a in self.agents.values() if a.subtask is None]
        return [self.agents[name] for name in self.subtasks[subtask].agents] if subtask in self.subtasks else []

    def waves(self) -> list[list[SubtaskProgress]]:
        """Subtasks by the wave they can run in: a subtask runs after everything it depends on."""
        level: dict[str, int] = {}

        def depth(sub_id: str, seen: frozenset[str] = frozenset()) -> int:
            if sub_id not in level:
                deps = [d for d in self.subtasks[sub_id].depends_on if d in self.subtasks and d not in seen]
                level[sub_id] = 1 + max((depth(d, seen | {sub_id}) for d in deps), default=0)
            return level[sub_id]

        waves: dict[int, list[SubtaskProgress]] = {}
        for sub in self.subtasks.values():
            waves.setdefault(depth(sub.id), []).append(sub)
        return [waves[k] for k in sorted(waves)]

    # -- folding ----------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        self.cursor = max(self.cursor, event.id or 0)
        self.started = event.ts if self.started is None else self.started
        self.last = event.ts
        self.tokens += event.tokens
        self.cost += event.cost
        if event.tokens or event.cost:
            self.changed.add("usage")
        payload = event.payload
        kind = event.kind
        if event.agent and kind.startswith("agent."):
            self._agent_event(event)
        if kind in ("plan.ready", "plan.edited"):
            self._set_plan(payload.get("plan") or {})
        elif kind == "subtask.status" and event.subtask:
            sub = self._subtask(event.subtask)
            sub.status = payload.get("status", sub.status)
            sub.reason = payload.get("reason", "")
            if sub.status == "coding" and sub.base is None:
                sub.base = self.job_head
                sub.branch = payload.get("branch") or sub.branch
            self.changed.add(f"subtask:{sub.id}")
        elif kind == "merge" and event.subtask:
            sub = self._subtask(event.subtask)
            if payload.get("ok"):
                sub.status = "merged"
                self.job_head = payload.get("sha") or self.job_head
                self.changed.add("commits")
            else:
                sub.status = "conflict"
            self.changed.add(f"subtask:{sub.id}")
        elif kind == "test.result":
            self.tests.append(TestRecord(
                subtask=event.subtask, agent=event.agent, passed=payload.get("passed"),
                exit_code=payload.get("exit_code"), command=payload.get("command"),
                output=payload.get("output", ""), ts=event.ts,
            ))
            self.changed.add("tests")
        elif kind == "review.verdict":
            self.verdicts.append(VerdictRecord(
                subtask=event.subtask, agent=event.agent, decision=payload.get("decision", ""),
                summary=payload.get("summary", ""), comments=list(payload.get("comments", [])),
            ))
            if event.agent in self.agents:
                self.agents[event.agent].verdict = payload.get("decision")
                self.changed.add(f"agent:{event.agent}")
            self.changed.add("verdicts")
        elif kind == "agent.commit":
            self.changed.add("commits")
        elif kind == "job.prepared":
            self.base_sha = self.job_head = payload.get("base_sha")
            self.job_branch = payload.get("job_branch")
            self.test_command = payload.get("test_command")
            self.tests_before = payload.get("tests_before")
            self.changed.update(("job", "tests"))
        elif kind in ("job.status", "job.finished"):
            self.status = payload.get("status", self.status)
            self.changed.add("job")
        elif kind == "job.accepted":
            self.accepted = payload
            self.changed.add("job")
        elif kind == "job.discarded":
            self.discarded = True
            self.changed.add("job")

    def _agent_event(self, event: Event) -> None:
        name = event.agent or ""
        agent = self.agents.get(name)
        if agent is None:
            agent = self.agents[name] = AgentProgress(
                name=name, role=event.role or "", subtask=event.subtask, started=event.ts, last=event.ts
            )
            if event.subtask:
                self._subtask(event.subtask).agents.append(name)
                self.changed.add(f"subtask:{event.subtask}")
            self.changed.add("agents")
        agent.last = event.ts
        payload = event.payload
        if event.kind == "agent.message":
            agent.steps = max(agent.steps, int(payload.get("step") or 0))
        elif event.kind == "agent.finished":
            agent.status = payload.get("status", "error")
            agent.reason = payload.get("reason", "")
            agent.steps = payload.get("steps", agent.steps)
            agent.seconds = payload.get("seconds")
            agent.tokens += event.tokens
            agent.cost += event.cost
        self.changed.add(f"agent:{name}")

    def _set_plan(self, plan: dict[str, Any]) -> None:
        old = self.subtasks
        self.summary = plan.get("summary", "")
        subtasks: dict[str, SubtaskProgress] = {}
        for raw in plan.get("subtasks", []):
            sub = SubtaskProgress(
                id=raw["id"], title=raw.get("title", ""), instructions=raw.get("instructions", ""),
                depends_on=list(raw.get("depends_on", [])), files=list(raw.get("files", [])),
                acceptance=list(raw.get("acceptance", [])),
            )
            if raw["id"] in old:  # an edited plan keeps what already happened to a subtask
                before = old[raw["id"]]
                sub.status, sub.reason, sub.branch, sub.base, sub.agents = (
                    before.status, before.reason, before.branch, before.base, before.agents)
            subtasks[sub.id] = sub
        self.subtasks = subtasks
        self.plan_version += 1
        self.changed.add("plan")

    def _subtask(self, sub_id: str) -> SubtaskProgress:
        # Events of a subtask the plan does not list (an old plan, a resolver) still show.
        if sub_id not in self.subtasks:
            self.subtasks[sub_id] = SubtaskProgress(id=sub_id, title="")
            self.plan_version += 1
            self.changed.add("plan")
        return self.subtasks[sub_id]
