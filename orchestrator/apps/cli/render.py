"""How jobs, plans, events and reports look in a terminal (rich)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator.engine.report import Report
from orchestrator.store.event_log import Event
from orchestrator.store.jobs import Job

STATUS_STYLE = {
    "succeeded": "green", "approved": "green", "merged": "green", "running": "cyan", "coding": "cyan",
    "testing": "cyan", "fixing": "yellow", "reviewing": "magenta", "planning": "cyan",
    "awaiting_approval": "yellow bold", "failed": "red", "rejected": "red", "cancelled": "red", "queued": "dim",
}


def styled(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def age(ts: float) -> str:
    seconds = int(time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def jobs_table(jobs: list[Job]) -> Table:
    table = Table("job", "status", "age", "subtasks", "cost", "task", expand=True)
    for job in jobs:
        report = job.report or {}
        subtasks = report.get("subtasks", [])
        done = sum(1 for s in subtasks if s["status"] == "merged")
        table.add_row(
            job.id, styled(job.status.value), age(job.created_at),
            f"{done}/{len(subtasks)}" if subtasks else "-",
            f"${report['total']['cost']:.4f}" if report else "-",
            Text(job.task.instruction, overflow="ellipsis", no_wrap=True),
        )
    return table


def plan_table(plan: dict[str, Any]) -> Table:
    table = Table("id", "title", "depends on", "files", title=plan.get("summary", ""), expand=True)
    for sub in plan["subtasks"]:
        table.add_row(sub["id"], sub["title"], ", ".join(sub["depends_on"]) or "-", ", ".join(sub["files"]) or "-")
    return table


def event_line(event: Event) -> Text:
    """One line of `shipyard logs`."""
    when = time.strftime("%H:%M:%S", time.localtime(event.ts))
    who = event.agent or event.role or event.subtask or "job"
    payload = event.payload
    if event.kind == "agent.tool_result":
        detail = f"{payload.get('tool')}({_short(payload.get('arguments'))}) -> {_short(payload.get('output'), 100)}"
    elif event.kind == "agent.message":
        detail = _short(payload.get("content") or payload.get("tool_calls"), 120)
    elif event.kind in ("subtask.status", "job.status"):
        detail = str(payload.get("status")) + (f" ({payload['reason']})" if payload.get("reason") else "")
    elif event.kind == "test.result":
        detail = f"{'passed' if payload.get('passed') else 'FAILED'} `{payload.get('command')}`"
    elif event.kind == "review.verdict":
        detail = f"{payload.get('decision')}: {payload.get('summary')}"
    elif event.kind == "agent.finished":
        detail = f"{payload.get('status')} after {payload.get('steps')} steps: {_short(payload.get('reason'), 100)}"
    else:
        detail = _short(payload, 140)
    return Text.assemble((when, "dim"), " ", (f"{who:<18}", "bold"), " ", (f"{event.kind:<18}", "cyan"), " ", detail)


def _short(value: Any, limit: int = 60) -> str:
    text = " ".join(str(value if value is not None else "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ProgressView:
    """The live view of `shipyard run`: one row per subtask, fed by the job's events."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self.status: dict[str, str] = {}
        self.agent: dict[str, str] = {}
        self.detail: dict[str, str] = {}
        self.job_status = "planning"
        self.cost = 0.0
        self.tokens = 0

    def add(self, event: Event) -> None:
        self.cost += event.cost
        self.tokens += event.tokens
        if event.kind == "job.status":
            self.job_status = event.payload["status"]
        elif event.kind == "plan.ready":
            for sub in event.payload["plan"]["subtasks"]:
                self.status.setdefault(sub["id"], "queued")
                self.detail[sub["id"]] = sub["title"]
        elif event.kind == "subtask.status" and event.subtask:
            self.status[event.subtask] = event.payload["status"]
        elif event.subtask and event.agent and event.kind.startswith("agent."):
            self.agent[event.subtask] = event.agent
            if event.kind == "agent.tool_result":
                self.detail[event.subtask] = f"{event.payload.get('tool')}: {_short(event.payload.get('output'), 50)}"

    def render(self) -> RenderableType:
        table = Table("subtask", "status", "agent", "last step", expand=True)
        for sub, status in self.status.items():
            table.add_row(sub, styled(status), self.agent.get(sub, ""), self.detail.get(sub, ""))
        head = Text.assemble(("job ", "bold"), self.job_id, "  ", styled(self.job_status),
                             f"  tokens {self.tokens}  cost ${self.cost:.4f}")
        return Group(head, table)


def report_view(report: Report) -> RenderableType:
    head = Table.grid(padding=(0, 2))
    head.add_row("job", report.job_id)
    head.add_row("status", styled(report.status))
    head.add_row("job branch", Text(report.job_branch, style="bold"))
    head.add_row("changes", report.diff_stat.summary())
    head.add_row("tests before", _tests(report.tests_before))
    head.add_row("tests after", _tests(report.tests_after))
    head.add_row("total", f"{report.total.input_tokens + report.total.output_tokens} tokens, "
                          f"${report.total.cost:.4f}, {report.seconds:.1f} s")
    if report.stop_reason:
        head.add_row("stopped", Text(report.stop_reason, style="red"))
    subtasks = Table("subtask", "status", "branch", "tests", "fix rounds", "review", title="subtasks", expand=True)
    for sub in report.subtasks:
        review = sub.verdict or "-"
        if sub.review_rounds:
            review += f" (after {sub.review_rounds} round{'s' if sub.review_rounds > 1 else ''} of changes)"
        subtasks.add_row(f"{sub.id} {sub.title}", styled(sub.status), sub.branch,
                         {True: "passed", False: "FAILED", None: "-"}[sub.tests_passed], str(sub.fix_rounds),
                         review + (f"\n{sub.reason}" if sub.reason else ""))
    agents = Table("agent", "role", "status", "steps", "tokens", "cost", "time", title="agents", expand=True)
    for agent in report.agents:
        agents.add_row(agent.agent, agent.role, agent.status, str(agent.steps), str(agent.tokens),
                       f"${agent.cost:.4f}", f"{agent.seconds:.1f} s")
    return Group(head, subtasks, agents)


def _tests(run: Any) -> Text:
    if run is None or run.passed is None:
        return Text("no test command", style="dim")
    return Text(f"{'passed' if run.passed else 'FAILED'}  ({run.command})", style="green" if run.passed else "red")
