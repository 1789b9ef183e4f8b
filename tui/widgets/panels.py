"""The job screen's panels: its header, test results, review comments, usage and the plan's dependencies.

Each shows the scope chosen in the plan tree: the whole job, one subtask or one agent.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable, Static

from orchestrator.store.job_view import AgentView, JobView
from orchestrator.store.jobs import Job
from tui.format import duration, label, money, short, status_text, tokens
from tui.logbook import JOB

TEST_TAIL_FAILED = 15
TEST_TAIL_PASSED = 3


def scope_subtask(progress: JobView, scope: str) -> str | None:
    """The subtask a scope is about; None for the whole job (and the planner)."""
    kind, _, key = scope.partition(":")
    if kind == "subtask":
        return key
    if kind == "agent" and key in progress.agents:
        return progress.agents[key].subtask
    return None


def job_status(job: Job, progress: JobView) -> str:
    if progress.discarded:
        return "discarded"
    if progress.accepted and progress.accepted.ok:
        return "accepted"
    return job.status.value


def tests_summary(progress: JobView) -> Text:
    """The job's tests in a few characters: before the job → after it (`tests ✗→✓`)."""
    def mark(passed: bool | None) -> tuple[str, str]:
        return {True: ("✓", "green"), False: ("✗", "red"), None: ("·", "dim")}[passed]

    if not progress.base_sha:
        return Text("tests -", style="dim")
    after = progress.tests_after.passed if progress.tests_after else None
    return Text.assemble(("tests ", "dim"), mark(progress.tests_before), ("→", "dim"), mark(after))


class JobHeader(Static):
    def show(self, job: Job, progress: JobView, now: float, pending: str | None = None) -> None:
        # A job's clock stops when it ends; accepting or discarding it later adds nothing.
        end = (progress.ended or progress.last or now) if job.status.finished else now
        elapsed = end - (progress.started or job.created_at)
        first = Text.assemble(
            status_text(job_status(job, progress)), "  ", (job.id, "bold"), ("  ", ""),
            f"{progress.done}/{progress.total} merged" if progress.total else "no plan yet",
            (" · ", "dim"), tests_summary(progress),
            (" · ", "dim"), duration(elapsed), (" · ", "dim"), money(progress.cost),
            (" · ", "dim"), f"{tokens(progress.tokens)} tok",
            (f" · on {progress.worker}", "dim") if progress.worker else "",
        )
        branch = progress.job_branch or f"shipyard/{job.id}"
        second = Text.assemble(
            (Path(job.task.repo).name or job.task.repo, "bold"), " ", (job.task.base, ""), (" → ", "dim"),
            (branch, "cyan"), ("  ", ""), (short(job.task.instruction, 300), "italic"),
        )
        lines = [first, second]
        if pending:
            lines.append(Text(pending, style="yellow"))
        if job.error and job.status.finished:
            lines.append(Text(short(job.error, 300), style="red"))
        for line in lines:
            line.no_wrap = True
            line.overflow = "ellipsis"
        self.update(Group(*lines))


class TestsPanel(Static):
    def show(self, progress: JobView, scope: str) -> None:
        subtask = scope_subtask(progress, scope)
        parts: list[RenderableType] = []
        if scope == JOB:
            before = {True: ("passed", "green"), False: ("FAILED", "red"), None: ("no test command", "dim")}
            word, style = before[progress.tests_before] if progress.base_sha else ("not run yet", "dim")
            parts.append(Text.assemble("Before the job: ", (word, style),
                                       f"  `{progress.test_command}`" if progress.test_command else ""))
            if progress.baseline_failures:
                parts.append(Text(f"Failing at base (pre-existing): {', '.join(progress.baseline_failures[:10])}",
                                  style="yellow"))
        runs = [t for t in progress.tests if scope == JOB or t.subtask == subtask]
        for run in runs:
            who = run.agent or run.subtask or "job branch"
            if run.passed is None:
                parts.append(Text(f"{who}: no test command", style="dim"))
                continue
            head = Text.assemble(
                ("✓ " if run.passed else "✗ ", "green" if run.passed else "red"), (f"{who} ", "bold"),
                ("passed" if run.passed else f"FAILED (exit {run.exit_code})", "green" if run.passed else "red bold"),
                (f"  `{run.command}`", "dim"),
            )
            tail = [line for line in run.output.rstrip().splitlines() if line.strip()]
            tail = tail[-(TEST_TAIL_PASSED if run.passed else TEST_TAIL_FAILED):]
            parts.append(head)
            parts.extend(Text("   " + line, style="dim", no_wrap=True, overflow="ellipsis") for line in tail)
        if not runs:
            parts.append(Text("No test runs yet.", style="dim"))
        self.update(Group(*parts))


class ReviewsPanel(Static):
    def show(self, progress: JobView, scope: str) -> None:
        subtask = scope_subtask(progress, scope)
        agent = scope.partition(":")[2] if scope.startswith("agent:") else None
        parts: list[RenderableType] = []
        for verdict in progress.verdicts:
            if scope != JOB and verdict.subtask != subtask:
                continue
            if agent and verdict.agent != agent:
                continue
            parts.append(Text.assemble((f"{verdict.agent or verdict.subtask} ", "bold"),
                                       status_text(verdict.decision)))
            parts.append(Padding(Text(verdict.summary), (0, 0, 0, 3)))
            parts.extend(Padding(Text(f"- {comment}", style="yellow"), (0, 0, 0, 3)) for comment in verdict.comments)
        if not parts:
            parts.append(Text("No reviews yet.", style="dim"))
        self.update(Group(*parts))


class UsageTable(DataTable[Text | str]):
    """Tokens, cost and time per agent, and their total."""

    COLUMNS = ("agent", "steps", "tokens", "cost", "time")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for column in self.COLUMNS:
            self.add_column(column, key=column)

    def show(self, progress: JobView, scope: str, now: float) -> None:
        kind, _, key = scope.partition(":")
        if kind == "agent":
            agents = [progress.agents[key]] if key in progress.agents else []
        elif kind == "subtask":
            agents = progress.agents_of(key)
        else:  # planner first, then subtask by subtask, as in the tree
            agents = progress.agents_of(None) + [a for sub in progress.subtasks for a in progress.agents_of(sub)]
        self.clear()
        for agent in agents:
            self.add_row(*self._row(agent, now), key=agent.name)
        self.add_row(
            Text("total", style="bold"), str(sum(a.steps for a in agents)),
            Text(tokens(sum(a.tokens for a in agents)), style="bold"),
            Text(money(sum(a.cost for a in agents)), style="bold"),
            duration(sum(a.elapsed(now) for a in agents)), key="total",
        )

    @staticmethod
    def _row(agent: AgentView, now: float) -> tuple[Text | str, ...]:
        status = status_text(agent.status)
        return (Text.assemble(status[:1], " ", agent.name), str(agent.steps), tokens(agent.tokens),
                money(agent.cost), duration(agent.elapsed(now)))


class PlanPanel(Static):
    """The dependency view: subtasks by the wave they run in, or one subtask in full."""

    def show(self, progress: JobView, scope: str) -> None:
        sent_back = [Text.assemble((f"Plan {back.round} sent back: ", "yellow bold"), back.note)
                     for back in progress.sent_back]
        if not progress.subtasks:
            waiting = "No plan yet: the planner is " + ("planning again." if sent_back else "reading the repository.")
            self.update(Group(*sent_back, Text(waiting, style="dim")))
            return
        subtask = scope_subtask(progress, scope)
        if subtask in progress.subtasks:
            self.update(self._subtask(progress, subtask))
            return
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_column(no_wrap=True, style="dim")
        for number, wave in enumerate(progress.waves(), start=1):
            for index, sub in enumerate(wave):
                after = "← " + ", ".join(sub.depends_on) if sub.depends_on else ""
                grid.add_row(f"wave {number}" if index == 0 else "", Text(sub.id, style="bold"),
                             status_text(sub.status), Text(sub.title, overflow="ellipsis", no_wrap=True), after)
        context = [Text(f"Repository instructions: {', '.join(progress.instructions)}", style="dim")
                   ] if progress.instructions else []
        self.update(Group(*sent_back, Text(progress.summary, style="italic"), *context, Text(""), grid))

    @staticmethod
    def _subtask(progress: JobView, sub_id: str) -> RenderableType:
        sub = progress.subtasks[sub_id]
        needed_by = [s.id for s in progress.subtasks.values() if sub_id in s.depends_on]
        rows = Table.grid(padding=(0, 1), expand=True)
        rows.add_column(style="dim", no_wrap=True)
        rows.add_column(ratio=1)
        rows.add_row("status", Text.assemble(status_text(sub.status), (f"  {sub.reason}" if sub.reason else "", "red")))
        deps = Text()
        for dep in sub.depends_on:
            deps.append_text(Text.assemble((dep, "bold"), " (", label(progress.subtasks[dep].status)
                                           if dep in progress.subtasks else "?", ")  "))
        rows.add_row("after", deps or Text("-"))
        rows.add_row("before", ", ".join(needed_by) or "-")
        rows.add_row("branch", Text(sub.branch or "-", style="cyan"))
        rows.add_row("files", ", ".join(sub.files) or "-")
        rows.add_row("task", sub.instructions or "-")
        rows.add_row("done when", "\n".join(f"• {a}" for a in sub.acceptance) or "-")
        return Group(Text(f"{sub.id}  {sub.title}", style="bold"), Text(""), rows)
