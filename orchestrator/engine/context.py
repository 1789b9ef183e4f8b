"""What the nodes of one job's graph work with: its repo, sandboxes, models, events and budget.

Nothing here is job state: that is the checkpoint's (the graph's state) and the event log's.
A context is rebuilt whenever a job runs or resumes, and holds no copy of either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from langchain_core.messages import AIMessage

from agents.context import Condensation, ContextWindow
from agents.context_window import context_window
from agents.loop import AgentLimits, AgentOutcome, ChatModel, calls_of, text_of
from agents.mcp_tools import McpServers
from agents.models import ModelClient, ModelSpec, Role
from agents.repo_instructions import read_repo_instructions
from agents.roles import RoleRun, RoleSpec
from agents.test_discovery import TestCommand
from agents.tools import ToolObservation
from agents.usage import UsageLedger, UsageTotals
from orchestrator.config.settings import Settings
from orchestrator.engine.state import TestRun
from orchestrator.engine.test_results import TestReport, not_run, run_suite
from orchestrator.engine.tested_trees import TestedTrees
from orchestrator.engine.verification import judge
from orchestrator.engine.watch import JobWatch
from orchestrator.environments.cache import PreparedEnvironment
from orchestrator.environments.prepare import ensure_environment
from orchestrator.store.event_log import EventLog
from orchestrator.store.events import (
    AgentCommit,
    AgentCondensed,
    AgentFinished,
    AgentId,
    AgentMessage,
    AgentToolResult,
    DirectorNote,
    Event,
    JobStatusChanged,
    Notice,
    TestResult,
)
from orchestrator.store.jobs import JobStatus, JobStore, Task
from sandboxes.base import Sandbox, SandboxBackend, SandboxSpec, cap_output
from sandboxes.git.branches import branch_name
from sandboxes.git.repo import GitRepo
from sandboxes.git.workspace import Workspace

# How much of a command's output an event keeps (head and tail); the log is read by people.
EVENT_OUTPUT_CHARS = 8_000
NO_COMMAND = "no tests ran: no test command was found or configured"


class ModelSource(Protocol):
    """Makes an agent's model from its role's spec: real endpoints by default, an in-process fake in tests."""

    def __call__(self, spec: ModelSpec, role: Role, ledger: UsageLedger, agent: str | None) -> ChatModel: ...


def endpoint_model(spec: ModelSpec, role: Role, ledger: UsageLedger, agent: str | None) -> ChatModel:
    """The role's OpenAI-compatible endpoint."""
    return ModelClient(spec, role, ledger, agent=agent)


class JobCancelled(Exception):
    """The director cancelled the job; raised from inside whatever step is running."""


@dataclass
class JobContext:
    job_id: str
    task: Task
    settings: Settings
    repo: GitRepo
    backend: SandboxBackend
    events: EventLog
    jobs: JobStore
    models: ModelSource = endpoint_model
    watch: JobWatch | None = None
    _last_cancel_check: float = field(default=0.0, repr=False)
    _environment: tuple[PreparedEnvironment | None] | None = field(default=None, repr=False)
    _environment_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tested: TestedTrees = field(default_factory=TestedTrees, repr=False)

    # -- places -----------------------------------------------------------------

    @property
    def job_branch(self) -> str:
        return branch_name(self.job_id)

    def branch(self, name: str) -> str:
        return branch_name(self.job_id, name)

    def worktree_path(self, name: str) -> Path:
        return self.settings.state_dir / "worktrees" / self.job_id / name

    def workspace(self, name: str, base_ref: str, branch: str | None = None) -> Workspace:
        return self.repo.create_workspace(branch or self.branch(name), base_ref, self.worktree_path(name))

    @contextmanager
    def agent_sandbox(self, name: str, start: str, agent: AgentId) -> Iterator[tuple[Workspace, Sandbox]]:
        """Workspace `name` reset to `start`, and a sandbox on it for `agent`."""
        workspace = self.workspace(name, start)
        workspace.start_at(start)
        with self.sandbox(workspace.path, agent.name) as sandbox:
            yield workspace, sandbox

    @contextmanager
    def tests_sandbox(self, name: str, start: str) -> Iterator[Sandbox]:
        """A sandbox for a test run on workspace `name` reset to `start`."""
        with self.agent_sandbox(name, start, AgentId(role="tests", workspace=name)) as (_, sandbox):
            yield sandbox

    def commit(self, workspace: Workspace, agent: AgentId, subtask: str, role: str, message: str) -> str:
        """Commit what the agent left in `workspace` (if anything); the head either way."""
        head = workspace.commit(message, role=role, agent=agent.name) or workspace.head()
        self.emit(AgentCommit(subtask=subtask, role=role, agent=agent.name, head=head))
        return head

    def drop_workspace(self, name: str) -> None:
        """Remove the worktree called `name` if there is one; its branch stays."""
        path = self.worktree_path(name)
        if path.exists():
            self.repo.remove_workspace(self.repo.open_workspace(path))

    # -- events and the director ---------------------------------------------------

    def emit(self, event: Event) -> Event:
        return self.events.append(event.model_copy(update={"job_id": self.job_id}))

    def notes(self) -> list[str]:
        """The director's notes as they stand now: an agent reads them when it starts."""
        return [e.text for e in self.events.list(self.job_id, kinds=(DirectorNote,)) if isinstance(e, DirectorNote)]

    def check_cancelled(self, every: float = 1.0) -> None:
        """Stop here (JobCancelled) if the job was cancelled, or this process is letting it go."""
        if self.watch is not None and self.watch.reason is not None:
            raise JobCancelled(self.job_id)
        now = time.monotonic()
        if now - self._last_cancel_check < every:
            return
        self._last_cancel_check = now
        if self.jobs.get(self.job_id).status == JobStatus.CANCELLED:
            raise JobCancelled(self.job_id)

    def set_status(self, status: JobStatus) -> None:
        """Move the job on, unless the director cancelled it meanwhile (then stop here)."""
        if not self.jobs.advance(self.job_id, status):
            raise JobCancelled(self.job_id)
        self.emit(JobStatusChanged(status=status.value))

    # -- agents -------------------------------------------------------------------

    def role_run(self, spec: RoleSpec, agent: AgentId, subtask: str | None, sandbox: Sandbox,
                 candidate: int | None = None, workspace: Workspace | None = None,
                 touched: Sequence[str] = ()) -> RoleRun:
        """Everything one agent gets: its model and its window, limits, budget, the notes of now, the
        repository's instructions for the paths it works on (`touched`), its role's MCP servers, the paths it
        must not write, and an observer that logs its steps and stops it at its next step once the job is
        cancelled."""
        log = StepLog(self, agent, spec.model_role, subtask)
        model_spec = self.model_spec(spec.model_role, candidate)
        model = self.models(model_spec, spec.model_role, UsageLedger(), agent.name)
        if self.watch is not None and hasattr(model, "stop"):
            self.watch.guard(model)
        return RoleRun(
            model=model,
            sandbox=sandbox,
            limits=self.limits(),
            observer=log,
            budget=self,
            notes=self.notes(),
            instructions=read_repo_instructions(sandbox, touched).text,
            write_check=workspace.uncommittable if workspace is not None else None,
            context=self.context_window(model_spec, model, spec.model_role),
            mcp=McpServers(self.settings.mcp.for_role(spec.model_role), log.notice),
        )

    def model_spec(self, role: Role, candidate: int | None = None) -> ModelSpec:
        """The role's model; candidate coders each get another model or temperature."""
        spec = self.settings.model_for(role)
        return spec if candidate is None else self.settings.candidate_model(spec, candidate)

    def context_window(self, spec: ModelSpec, model: ChatModel, role: Role) -> ContextWindow:
        """The window of an agent's `model`: configured, else as its server says, else the default. Summaries
        are written by the configured summarizer (booked as the agent's calls) or by the model itself."""
        settings = self.settings.context
        summarizer = settings.summarizer and self.models(settings.summarizer, role, model.ledger, model.agent)
        return ContextWindow(context_window(spec) or settings.default_window, settings, summarizer)

    def limits(self) -> AgentLimits:
        budgets = self.settings.budgets
        return AgentLimits(
            max_steps=budgets.max_steps_per_agent,
            max_tokens=budgets.max_tokens_per_agent,
            max_cost=budgets.max_cost_per_agent,
            max_seconds=budgets.max_seconds_per_agent,
        )

    @property
    def max_cost(self) -> float | None:
        return self.task.max_cost if self.task.max_cost is not None else self.settings.budgets.max_cost_per_job

    def exhausted(self) -> str | None:
        """Why an agent may not spend more (agents.loop.Budget): the job stopped, or its budget is spent."""
        if self.watch is not None and self.watch.reason is not None:
            return f"the job stopped ({self.watch.reason})"
        return self.spent_out()

    def spent_out(self) -> str | None:
        """Why the job's budget allows no more (None: it does); the log holds every call's cost."""
        cap = self.max_cost
        if cap is None:
            return None
        spent = self.events.spent(self.job_id)
        return f"job budget spent (${spent:.4f} of ${cap:.4f})" if spent >= cap else None

    def budget_left(self) -> bool:
        """For a node's own code. A stopped job is not out of budget: it stops here (JobCancelled), and what
        was cut off is not recorded as failed, so that a retry or resume runs it again."""
        self.check_cancelled()
        return self.spent_out() is None

    # -- sandboxes --------------------------------------------------------------

    def environment(self) -> PreparedEnvironment | None:
        """The project environment every sandbox of the job starts from (None: the plain image), prepared
        the first time it is asked for in this process unless the cache has it. Defined by the job's base."""
        with self._environment_lock:
            if self._environment is None:
                base = self.repo.resolve(self.task.base)
                guard = self.watch.guard if self.watch is not None else lambda sandbox: None
                self._environment = (ensure_environment(self.repo, base, self.settings, self.backend, self.emit,
                                                        image=self.task.image, labels={"job": self.job_id},
                                                        guard=guard),)
            return self._environment[0]

    @contextmanager
    def sandbox(self, workspace: Path, agent: str) -> Iterator[Sandbox]:
        """A sandbox on `workspace`, started from the job's project environment."""
        sandbox_settings = self.settings.sandbox
        spec = SandboxSpec(
            workspace=workspace,
            image=self.task.image or sandbox_settings.image,
            network=sandbox_settings.network or self.task.network,
            env=dict(sandbox_settings.env),
            limits=sandbox_settings.limits,
            labels={"job": self.job_id, "agent": agent},
        )
        environment = self.environment()
        if environment is not None:
            spec = environment.apply(spec)
        self.repo.ran_in(workspace)
        with self.backend.start(spec) as sandbox:
            if self.watch is not None:
                self.watch.guard(sandbox)
            yield sandbox

    def run_tests(self, sandbox: Sandbox | None, test: TestCommand | None, name: str, baseline: TestReport | None,
                  targets: list[str] | None = None, no_command: str = NO_COMMAND) -> TestRun:
        """Run the suite with per-test results and judge it against `baseline`; `targets` None: this run
        is the baseline itself. `sandbox` may be None when there is no command: saying so needs none."""
        if test is None:
            report = not_run(no_command)
        elif sandbox is None:
            raise ValueError("a test command needs a sandbox to run in")
        else:
            report = run_suite(sandbox, test, name)
        return judge(report, baseline, targets or [], is_baseline=targets is None)

    def test_at(self, commit: str, test: TestCommand | None, name: str, baseline: TestReport | None,
                sandbox: Callable[[], AbstractContextManager[Sandbox]], targets: list[str] | None = None,
                no_command: str = NO_COMMAND) -> TestRun:
        """run_tests on the files of `commit`, in the sandbox `sandbox()` starts on them, unless a run of this
        job tested the same files with the same command: then its results, and no sandbox (see tested_trees)."""
        if test is None:
            return self.run_tests(None, None, name, baseline, targets, no_command)
        tree = self.repo.tree(commit)
        report = self._tested.get(tree, test)
        if report is None:
            with sandbox() as box:
                report = run_suite(box, test, name)
            self._tested.add(tree, test, name, report)
        return judge(report, baseline, targets or [], is_baseline=targets is None)


def test_result_event(run: TestRun, scope: Literal["subtask", "job"] = "subtask", subtask: str | None = None,
                      agent: str | None = None) -> TestResult:
    """A run as its event: the suite's output (bounded) and its verdict against the baseline."""
    c = run.comparison
    return TestResult(subtask=subtask, agent=agent, scope=scope, passed=run.passed, exit_code=run.exit_code,
                      output=cap_output(run.output, EVENT_OUTPUT_CHARS)[0], command=run.command,
                      verdict=c.verdict if c else None, reasons=c.reasons if c else [],
                      newly_failing=[*c.newly_failing, *c.new_failing, *c.targets_failing] if c else [],
                      pre_existing_failures=c.pre_existing_failures if c else [],
                      reused_from=run.report.reused_from if run.report else None)


@dataclass
class StepLog:
    """An agent's steps as events (agents.loop.AgentObserver)."""

    context: JobContext
    agent: AgentId
    role: str
    subtask: str | None

    def _emit(self, event: Event) -> None:
        self.context.emit(event.model_copy(update={"agent": self.agent.name, "role": self.role,
                                                   "subtask": self.subtask}))
        self.context.check_cancelled()

    def message(self, step: int, reply: AIMessage, usage: UsageTotals) -> None:
        self._emit(AgentMessage(step=step, content=text_of(reply), tool_calls=_bounded(calls_of(reply)),
                                tokens=usage.input_tokens + usage.output_tokens, cost=usage.cost))

    def tool_result(self, step: int, observation: ToolObservation, arguments: Any) -> None:
        self._emit(AgentToolResult(step=step, tool=observation.name, arguments=_bounded(arguments),
                                   ok=observation.ok, output=observation.text))

    def condensed(self, step: int, condensation: Condensation) -> None:
        self._emit(AgentCondensed(step=step, **condensation.model_dump()))

    def notice(self, text: str) -> None:
        """Something the director should know of this agent, such as an MCP server it runs without."""
        self._emit(Notice(text=text))

    def finished(self, outcome: AgentOutcome) -> None:
        self._emit(AgentFinished(status=outcome.status, reason=outcome.reason, summary=outcome.summary,
                                 submission=outcome.submission, steps=outcome.steps, usage=outcome.usage,
                                 seconds=outcome.seconds))


def _bounded(value: Any) -> Any:
    """`value` for the event log with every long text in it cut (head and tail): a 5 MB file an agent
    writes is its workspace's to keep, not each event's."""
    if isinstance(value, str):
        return cap_output(value, EVENT_OUTPUT_CHARS)[0]
    if isinstance(value, dict):
        return {key: _bounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_bounded(item) for item in value]
    return value
