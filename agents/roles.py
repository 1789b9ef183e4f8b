"""The four roles: a prompt, a tool set and what counts as their answer, around the shared loop."""

from __future__ import annotations

from pydantic import BaseModel

from agents.loop import AgentLimits, AgentOutcome, ChatModel, EmitFn, run_agent
from agents.plan import Plan, ReviewVerdict, Subtask
from agents.prompts import render
from agents.repo_info import file_tree, read_readme
from agents.repo_map import build_repo_map
from agents.tools import ALL_TOOLS, READ_ONLY_TOOLS, Tool, Toolset
from sandboxes.base import WORKSPACE_MOUNT, Sandbox

_READ_TOOLS = tuple(name for name in READ_ONLY_TOOLS if name != "submit")


class RoleError(RuntimeError):
    """A role could not produce its answer; the outcome says why."""

    def __init__(self, role: str, outcome: AgentOutcome):
        super().__init__(f"the {role} stopped without an answer: {outcome.reason}")
        self.outcome = outcome


def _answer_tool(name: str, description: str, model: type[BaseModel]) -> Tool:
    return Tool(name, description, model, lambda sandbox, args, limits: "received", read_only=True, ends_work=True)


SUBMIT_PLAN = _answer_tool(
    "submit_plan",
    "Submit the plan: a summary and the subtasks with their dependencies and acceptance criteria.",
    Plan,
)
SUBMIT_REVIEW = _answer_tool(
    "submit_review",
    "Submit the review verdict: approve, or request_changes with concrete comments.",
    ReviewVerdict,
)


def plan(
    model: ChatModel,
    sandbox: Sandbox,
    task: str,
    test_command: str | None,
    limits: AgentLimits,
    emit: EmitFn | None = None,
) -> tuple[Plan, AgentOutcome]:
    """Read the repo and split `task` into subtasks. An invalid plan (cycles, unknown
    dependencies) is refused by the tool's validation and the planner asked again."""
    repo = sandbox.spec.workspace
    prompt = render(
        "planner_task",
        task=task,
        test_command=test_command,
        file_tree=file_tree(repo),
        repo_map=build_repo_map(repo),
        readme=read_readme(repo),
        feedback=None,
    )
    toolset = Toolset(sandbox, _READ_TOOLS, extra=[SUBMIT_PLAN])
    outcome = run_agent(model, toolset, render("planner"), prompt, limits, emit, finish_tool="submit_plan")
    if not outcome.submitted:
        raise RoleError("planner", outcome)
    return Plan.model_validate(outcome.submission), outcome


def code(
    model: ChatModel,
    sandbox: Sandbox,
    task: str,
    subtask: Subtask,
    test_command: str | None,
    limits: AgentLimits,
    emit: EmitFn | None = None,
    feedback: str | None = None,
    notes: list[str] | None = None,
) -> AgentOutcome:
    """Implement `subtask` in the sandbox's workspace (the caller commits)."""
    system = render("coder", workspace=WORKSPACE_MOUNT, network=sandbox.spec.network)
    prompt = render(
        "coder_task", task=task, subtask=subtask, test_command=test_command, feedback=feedback, notes=notes or []
    )
    return run_agent(model, Toolset(sandbox, ALL_TOOLS), system, prompt, limits, emit)


def fix_tests(
    model: ChatModel,
    sandbox: Sandbox,
    subtask: Subtask,
    test_command: str,
    exit_code: int,
    output: str,
    limits: AgentLimits,
    emit: EmitFn | None = None,
) -> AgentOutcome:
    """Make the failing tests pass by fixing the code."""
    system = render("test_fixer", workspace=WORKSPACE_MOUNT)
    prompt = render("test_fixer_task", subtask=subtask, test_command=test_command, exit_code=exit_code, output=output)
    return run_agent(model, Toolset(sandbox, ALL_TOOLS), system, prompt, limits, emit)


def review(
    model: ChatModel,
    sandbox: Sandbox,
    subtask: Subtask,
    diff: str,
    test_command: str | None,
    tests_passed: bool,
    test_output: str,
    limits: AgentLimits,
    emit: EmitFn | None = None,
) -> tuple[ReviewVerdict, AgentOutcome]:
    """Judge the subtask's diff; read-only tools, so the reviewer cannot change the work."""
    system = render("reviewer", workspace=WORKSPACE_MOUNT)
    prompt = render(
        "reviewer_task",
        subtask=subtask,
        diff=diff,
        test_command=test_command,
        tests_passed=tests_passed,
        test_output=test_output,
    )
    toolset = Toolset(sandbox, _READ_TOOLS, extra=[SUBMIT_REVIEW])
    outcome = run_agent(model, toolset, system, prompt, limits, emit, finish_tool="submit_review")
    if not outcome.submitted:
        raise RoleError("reviewer", outcome)
    return ReviewVerdict.model_validate(outcome.submission), outcome


def resolve_conflicts(
    model: ChatModel,
    sandbox: Sandbox,
    source: str,
    target: str,
    conflicts: list[str],
    description: str,
    limits: AgentLimits,
    emit: EmitFn | None = None,
) -> AgentOutcome:
    """Resolve a merge left conflicted in the sandbox's workspace."""
    system = render(
        "resolver", workspace=WORKSPACE_MOUNT, source=source, target=target, conflicts=conflicts, description=description
    )
    task = f"Resolve the conflicts in: {', '.join(conflicts)}"
    return run_agent(model, Toolset(sandbox, ALL_TOOLS), system, task, limits, emit)
