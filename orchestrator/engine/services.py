"""What the nodes of one job's graph work with: its repo, sandboxes, models, events and budgets.

None of this goes into a checkpoint; it is rebuilt when a job resumes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.loop import AgentLimits, EmitFn
from agents.models import ModelClient, Role, Usage, UsageLedger
from orchestrator.config.settings import Settings
from orchestrator.engine.state import TestRun
from orchestrator.store.event_log import EventLog
from orchestrator.store.jobs import JobStatus, JobStore, Task
from sandboxes.base import Sandbox, SandboxBackend, SandboxSpec
from sandboxes.git.branches import branch_name
from sandboxes.git.repo import GitRepo
from sandboxes.git.workspace import Workspace


class JobCancelled(Exception):
    """The director cancelled the job; raised from inside whatever step is running."""


@dataclass
class JobServices:
    job_id: str
    task: Task
    settings: Settings
    repo: GitRepo
    backend: SandboxBackend
    events: EventLog
    jobs: JobStore
    ledger: UsageLedger = field(default_factory=UsageLedger)
    notes: list[str] = field(default_factory=list)
    test_command: str | None = None
    _last_cancel_check: float = 0.0

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

    def drop_workspace(self, name: str) -> None:
        """Remove the worktree called `name` if there is one; its branch stays."""
        path = self.worktree_path(name)
        if path.exists():
            self.repo.remove_workspace(self.repo.open_workspace(path))

    # -- events -----------------------------------------------------------------

    def emit(self, kind: str, subtask: str | None = None, role: str | None = None, agent: str | None = None,
             **payload: Any) -> None:
        self.events.emit(self.job_id, kind, subtask=subtask, role=role, agent=agent, payload=payload)

    def agent_emitter(self, role: Role, agent: str, subtask: str | None) -> EmitFn:
        """Logs an agent's steps and stops it at its next step once the job is cancelled."""

        def emit(kind: str, payload: dict[str, Any]) -> None:
            usage = payload.get("usage") or {}
            self.events.emit(
                self.job_id,
                kind,
                subtask=subtask,
                role=role,
                agent=agent,
                payload=payload,
                tokens=usage.get("input_tokens", 0) + usage.get("output_tokens", 0),
                cost=usage.get("cost", 0.0),
            )
            self.check_cancelled()

        return emit

    def check_cancelled(self, every: float = 1.0) -> None:
        now = time.monotonic()
        if now - self._last_cancel_check < every:
            return
        self._last_cancel_check = now
        if self.jobs.get(self.job_id).status == JobStatus.CANCELLED:
            raise JobCancelled(self.job_id)

    def set_status(self, status: JobStatus) -> None:
        self.jobs.update(self.job_id, status)
        self.emit("job.status", status=status.value)

    # -- models and budgets -----------------------------------------------------

    def model(self, role: Role, agent: str, candidate: int | None = None) -> ModelClient:
        """The role's model; candidate coders each get another model or temperature."""
        spec = self.settings.model_for(role)
        if candidate is not None:
            spec = self.settings.candidate_model(spec, candidate)
        return ModelClient(spec, role, self.ledger, agent=agent)

    def limits(self) -> AgentLimits:
        budgets = self.settings.budgets
        job_cost = self.task.max_cost if self.task.max_cost is not None else budgets.max_cost_per_job
        return AgentLimits(
            max_steps=budgets.max_steps_per_agent,
            max_tokens=budgets.max_tokens_per_agent,
            max_cost=budgets.max_cost_per_agent,
            max_seconds=budgets.max_seconds_per_agent,
            job_max_cost=job_cost,
        )

    def budget_left(self) -> bool:
        cap = self.limits().job_max_cost
        return cap is None or self.ledger.total().cost < cap

    def restore_usage(self) -> None:
        """After a restart, count what finished agents already spent (from their events)."""
        for event in self.events.list(self.job_id):
            if event.kind == "agent.finished":
                usage = event.payload.get("usage", {})
                self.ledger.record(
                    Usage(
                        role=event.role or "", model="(earlier run)", agent=event.agent,
                        input_tokens=usage.get("input_tokens", 0), output_tokens=usage.get("output_tokens", 0),
                        cost=usage.get("cost", 0.0), priced=True, latency=usage.get("latency", 0.0),
                    )
                )

    # -- sandboxes --------------------------------------------------------------

    @contextmanager
    def sandbox(self, workspace: Path, agent: str) -> Iterator[Sandbox]:
        """A sandbox on `workspace`, with the setup command already run."""
        sandbox_settings = self.settings.sandbox
        spec = SandboxSpec(
            workspace=workspace,
            image=self.task.image or sandbox_settings.image,
            network=sandbox_settings.network or self.task.network,
            limits=sandbox_settings.limits,
            labels={"job": self.job_id, "agent": agent},
        )
        with self.backend.start(spec) as sandbox:
            if self.settings.setup_command:
                result = sandbox.exec(self.settings.setup_command)
                self.emit("sandbox.setup", agent=agent, command=self.settings.setup_command,
                          exit_code=result.exit_code, output=result.output[-4000:])
            yield sandbox

    def run_tests(self, sandbox: Sandbox, command: str | None) -> TestRun:
        if not command:
            return TestRun(command=None, passed=None)
        result = sandbox.exec(command)
        return TestRun(
            command=command,
            passed=result.ok,
            exit_code=result.exit_code,
            output=result.output,
            seconds=round(result.duration, 2),
        )
