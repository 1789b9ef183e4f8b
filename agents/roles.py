"""The roles: each a spec (its prompts, tools, finishing tool and model), run by the one shared loop.

A role's run gets what every run of any role gets in a `RoleRun` — the model, the sandbox,
limits, an observer, a budget and the director's notes as they stand when the agent starts —
plus its own inputs as keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from agents.context import ContextWindow
from agents.loop import AgentLimits, AgentObserver, AgentOutcome, Budget, ChatModel, run_agent
from agents.mcp_tools import McpServers
from agents.models import Role
from agents.plan import Plan, PlanOptions, ReviewVerdict, SentBack, Subtask
from agents.prompts import render
from agents.repo_info import file_tree, read_readme
from agents.repo_map import build_repo_map
from agents.tools import ALL_TOOLS, READ_ONLY_TOOLS, Tool, Toolset
from sandboxes.base import WORKSPACE_MOUNT, Sandbox, cap_output

_READ_TOOLS = tuple(name for name in READ_ONLY_TOOLS if name != "submit")


class RoleError(RuntimeError):
    """A role could not produce its answer; the outcome says why."""

    def __init__(self, role: str, outcome: AgentOutcome):
        super().__init__(f"the {role} stopped without an answer: {outcome.reason}")
        self.outcome = outcome


class PromptLimits(BaseModel):
    """How much of a long input goes into a prompt (head and tail kept, the cut said)."""

    test_output_chars: int = Field(6_000, description="of a test run's output, for the test-fixer and reviewer")
    feedback_test_chars: int = Field(3_000, description="of failing tests' output, in a reviewer's feedback")
    diff_chars: int = Field(60_000, description="of the diff a reviewer reads")


PROMPT_LIMITS = PromptLimits()


def _answer_tool(name: str, description: str, model: type[BaseModel]) -> Tool:
    return Tool(name, description, model, lambda sandbox, args, limits: "received", read_only=True, ends_work=True)


@dataclass(frozen=True)
class RoleSpec:
    name: str
    model_role: Role  # the configured model that serves it
    system: str  # prompt template of the system message
    task: str  # prompt template of the task message
    tools: tuple[str, ...]
    answer: Tool | None = None  # the tool that ends the run with the role's answer; else `submit`

    @property
    def finish_tool(self) -> str:
        return self.answer.name if self.answer else "submit"


PLANNER = RoleSpec("planner", "planner", "planner", "planner_task", _READ_TOOLS, _answer_tool(
    "submit_plan", "Submit the plan: a summary and the subtasks with their dependencies and acceptance criteria.",
    Plan))
CODER = RoleSpec("coder", "coder", "coder", "coder_task", ALL_TOOLS)
TEST_FIXER = RoleSpec("test_fixer", "test_fixer", "test_fixer", "test_fixer_task", ALL_TOOLS)
REVIEWER = RoleSpec("reviewer", "reviewer", "reviewer", "reviewer_task", _READ_TOOLS, _answer_tool(
    "submit_review", "Submit the review verdict: approve, or request_changes with concrete comments.",
    ReviewVerdict))
RESOLVER = RoleSpec("resolver", "coder", "resolver", "resolver_task", ALL_TOOLS)
CAMPAIGN_PLANNER = RoleSpec(
    "planner", "planner", "campaign_planner", "campaign_planner_task", _READ_TOOLS, _answer_tool(
        "submit_options", "Submit the alternative plans for the next iteration, each with its cost, risk and "
        "rationale.", PlanOptions))


@dataclass
class RoleRun:
    """What one run of a role works with."""

    model: ChatModel
    sandbox: Sandbox
    limits: AgentLimits
    observer: AgentObserver | None = None
    budget: Budget | None = None
    notes: list[str] = field(default_factory=list)
    instructions: str = ""  # the repository's own instructions for agents (AGENTS.md...), bounded
    write_check: Callable[[str], str | None] | None = None  # why a path must not be written, or None
    context: ContextWindow | None = None  # None: the conversation is sent whole, however long
    mcp: McpServers = field(default_factory=McpServers)


def run_role(spec: RoleSpec, run: RoleRun, system_inputs: dict[str, Any] | None = None,
             **inputs: Any) -> AgentOutcome:
    """Render the role's prompts with `inputs` and run the loop until it submits or stops."""
    system = render(spec.system, workspace=WORKSPACE_MOUNT, network=run.sandbox.spec.network,
                    **(system_inputs or {}))
    task = render(spec.task, notes=run.notes, instructions=run.instructions, **inputs)
    with run.mcp.tools(run.sandbox) as mcp_tools:
        # Built-in tools, the servers' and the answer, always in this order: a stable prefix for prompt caches.
        toolset = Toolset(run.sandbox, spec.tools, extra=[*mcp_tools, *([spec.answer] if spec.answer else [])],
                          write_check=run.write_check)
        return run_agent(run.model, toolset, system, task, run.limits, run.observer, spec.finish_tool, run.budget,
                         run.context)


def plan(run: RoleRun, task: str, test_command: str | None, test_evidence: Sequence[str] = (),
         pre_existing: Sequence[str] = (), sent_back: Sequence[SentBack] = ()) -> tuple[Plan, AgentOutcome]:
    """Read the repo and split `task` into subtasks. An invalid plan (cycles, unknown
    dependencies) is refused by the tool's validation and the planner asked again. `sent_back`: the plans the
    director sent back so far, each with their note on what is wrong with it (re-planning)."""
    files = run.sandbox
    outcome = run_role(PLANNER, run, task=task, test_command=test_command, test_evidence=list(test_evidence),
                       pre_existing=list(pre_existing), file_tree=file_tree(files),
                       repo_map=build_repo_map(files), readme=read_readme(files), feedback=None,
                       sent_back=list(sent_back))
    if not outcome.submitted:
        raise RoleError("planner", outcome)
    return Plan.model_validate(outcome.submission), outcome


def propose(run: RoleRun, goal: str, verifier: str, figure_rule: str, iteration: int, output: str,
            figure: float | None, first_figure: float | None, journal: str, options: int,
            test_command: str | None) -> PlanOptions:
    """A campaign's next iteration: up to `options` alternative plans, each with its cost and risk."""
    outcome = run_role(CAMPAIGN_PLANNER, run, {"options": options}, goal=goal, verifier=verifier,
                       figure_rule=figure_rule, iteration=iteration,
                       output=cap_output(output, PROMPT_LIMITS.test_output_chars)[0], figure=figure,
                       first_figure=first_figure, journal=journal, test_command=test_command,
                       file_tree=file_tree(run.sandbox))
    if not outcome.submitted:
        raise RoleError("campaign planner", outcome)
    proposed = PlanOptions.model_validate(outcome.submission)
    return PlanOptions(options=proposed.ranked()[:options])


def code(run: RoleRun, task: str, subtask: Subtask, test_command: str | None,
         feedback: str | None = None) -> AgentOutcome:
    """Implement `subtask` in the sandbox's workspace (the caller commits)."""
    return run_role(CODER, run, task=task, subtask=subtask, test_command=test_command, feedback=feedback)


def fix_tests(run: RoleRun, subtask: Subtask, test_command: str, exit_code: int, output: str,
              verdict: str = "", pre_existing: Sequence[str] = ()) -> AgentOutcome:
    """Make the failing tests pass by fixing the code. `verdict` says which tests broke against the
    baseline; `pre_existing` names the failures that were there before the work, not to be chased."""
    shown, _ = cap_output(output, PROMPT_LIMITS.test_output_chars)
    return run_role(TEST_FIXER, run, subtask=subtask, test_command=test_command, exit_code=exit_code, output=shown,
                    verdict=verdict, pre_existing=list(pre_existing))


def review(run: RoleRun, subtask: Subtask, diff: str, test_command: str | None, tests_passed: bool | None,
           test_output: str, what_ran: str = "", tampering: str = "", no_change: str | None = None,
           ) -> tuple[ReviewVerdict, AgentOutcome]:
    """Judge the subtask's diff; read-only tools, so the reviewer cannot change the work. `what_ran` says
    exactly what the tests did (none ran; which failures pre-exist), `tampering` lists signs of tests
    deleted or skipped, `no_change` is the coder's word when it changed nothing."""
    outcome = run_role(REVIEWER, run, subtask=subtask, diff=cap_output(diff, PROMPT_LIMITS.diff_chars)[0],
                       test_command=test_command, tests_passed=tests_passed, what_ran=what_ran, tampering=tampering,
                       no_change=no_change, test_output=cap_output(test_output, PROMPT_LIMITS.test_output_chars)[0])
    if not outcome.submitted:
        raise RoleError("reviewer", outcome)
    return ReviewVerdict.model_validate(outcome.submission), outcome


def resolve_conflicts(run: RoleRun, source: str, target: str, conflicts: list[str],
                      description: str) -> AgentOutcome:
    """Resolve a merge left conflicted in the sandbox's workspace."""
    return run_role(RESOLVER, run, source=source, target=target, conflicts=conflicts, description=description)
