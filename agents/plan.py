"""The planner's structured output: subtasks and the dependencies between them."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from typing import Literal

from pydantic import BaseModel, Field, model_validator


class Subtask(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="short lowercase id such as s1")
    title: str = Field(min_length=1, max_length=200)
    instructions: str = Field(min_length=1, description="what the coder must do, self-contained")
    files: list[str] = Field(default_factory=list, description="files likely to change")
    depends_on: list[str] = Field(default_factory=list, description="ids of subtasks this one builds on")
    acceptance: list[str] = Field(default_factory=list, description="concrete, checkable criteria")
    tests: list[str] = Field(default_factory=list, description="the tests this subtask must make pass: test ids "
                             "(tests/test_x.py::test_y) or paths (tests/test_x.py); they are checked after each run")


class Plan(BaseModel):
    summary: str = Field(description="one or two sentences on the approach")
    subtasks: list[Subtask] = Field(min_length=1, max_length=20)
    test_command: str | None = Field(None, description="only when the detected test command is wrong or missing: "
                                     "the shell command that runs this repository's tests from its root")

    @model_validator(mode="after")
    def _check_dependencies(self) -> Plan:
        ids = [s.id for s in self.subtasks]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"subtask ids must be unique; repeated: {duplicated}")
        for sub in self.subtasks:
            unknown = [d for d in sub.depends_on if d not in ids]
            if unknown:
                raise ValueError(f"subtask {sub.id} depends on unknown subtask(s) {unknown}")
            if sub.id in sub.depends_on:
                raise ValueError(f"subtask {sub.id} depends on itself")
        try:
            self.order()
        except CycleError as exc:
            raise ValueError(f"dependencies form a cycle: {' -> '.join(exc.args[1])}") from None
        return self

    def get(self, subtask_id: str) -> Subtask:
        return next(s for s in self.subtasks if s.id == subtask_id)

    def order(self) -> list[str]:
        """Ids in an order where every subtask comes after those it depends on."""
        return list(TopologicalSorter({s.id: s.depends_on for s in self.subtasks}).static_order())

    def ready(self, finished: set[str], started: set[str]) -> list[Subtask]:
        """Subtasks not started yet whose dependencies have all finished."""
        return [
            s for s in self.subtasks
            if s.id not in started and all(d in finished for d in s.depends_on)
        ]


class SentBack(BaseModel):
    """A plan the director sent back, with their note on what is wrong with it: the planner's next prompt has both."""

    plan: Plan
    note: str


class ReviewVerdict(BaseModel):
    decision: Literal["approve", "request_changes"]
    summary: str = Field(description="the overall judgement in a sentence or two")
    comments: list[str] = Field(default_factory=list, description="concrete, actionable requests; empty on approve")

    @property
    def approved(self) -> bool:
        return self.decision == "approve"


class PlanOption(BaseModel):
    """One way forward a campaign's planner proposes, with its own estimate of what it costs and risks."""

    plan: Plan
    cost: int = Field(ge=1, le=5, description="the effort it takes, 1 (a line) to 5 (a rewrite)")
    risk: int = Field(ge=1, le=5, description="how likely it breaks something or fails, 1 (hardly) to 5 (likely)")
    rationale: str = Field(min_length=1, description="why this way, and what it leaves for later")


class PlanOptions(BaseModel):
    options: list[PlanOption] = Field(min_length=1, max_length=4)

    def ranked(self) -> list[PlanOption]:
        """Cheapest and safest first; the planner's order breaks ties."""
        return sorted(self.options, key=lambda o: o.cost + o.risk)
