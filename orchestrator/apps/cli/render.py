"""How jobs, plans, events and reports look in a terminal (rich)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from agents.plan import Plan
from orchestrator.engine.report import Report
from orchestrator.store.events import (
    AgentCondensed,
    AgentFinished,
    AgentMessage,
    AgentToolResult,
    EnvironmentReady,
    EnvironmentSetup,
    Event,
    JobFinished,
    JobStatusChanged,
    Notice,
    ReviewGiven,
    SubtaskStatus,
    TestBaseline,
    TestCommandChosen,
    TestResult,
)
from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Job
from tui.format import STYLE, age, short, sparkline

if TYPE_CHECKING:
    from orchestrator.engine.campaign_report import CampaignReport  # LangGraph's: imported where a campaign runs


def say_error(message: str) -> None:
    """One line on stderr. The message is plain text: brackets in a path or a model's words are not markup."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(Text.assemble(("error:", "bold red"), " ", message))


def styled(status: str) -> Text:
    return Text(status, style=STYLE.get(status, ""))


def jobs_table(jobs: list[Job]) -> Table:
    table = Table("job", "status", "age", "subtasks", "cost", "task", expand=True)
    now = time.time()
    for job in jobs:
        report = Report.model_validate(job.report) if job.report else None
        done = sum(1 for s in report.subtasks if s.status == "merged") if report else 0
        table.add_row(
            job.id, styled(job.status.value), age(job.created_at, now),
            f"{done}/{len(report.subtasks)}" if report and report.subtasks else "-",
            f"${report.total.cost:.4f}" if report else "-",
            Text(job.task.instruction, overflow="ellipsis", no_wrap=True),
        )
    return table


def plan_table(plan: Plan) -> Table:
    table = Table("id", "title", "depends on", "files", title=plan.summary, expand=True)
    for sub in plan.subtasks:
        table.add_row(sub.id, sub.title, ", ".join(sub.depends_on) or "-", ", ".join(sub.files) or "-")
    return table


def sent_back_lines(view: JobView) -> list[Text]:
    """One line per plan the director sent back for re-planning, with their note."""
    lines = []
    for back in view.sent_back:
        what = f" ({back.plan.summary}; {len(back.plan.subtasks)} subtasks)" if back.plan else ""
        lines.append(Text.assemble((f"plan {back.round} sent back", "yellow bold"), what, ": ", back.note))
    return lines


def event_line(event: Event) -> Text:
    """One line of `shipyard logs`."""
    when = time.strftime("%H:%M:%S", time.localtime(event.ts))
    who = event.agent or event.role or event.subtask or "job"
    match event:
        case AgentToolResult():
            detail = f"{event.tool}({short(event.arguments, 60)}) -> {short(event.output, 100)}"
        case AgentMessage():
            detail = short(event.content or event.tool_calls, 120)
        case SubtaskStatus() | JobStatusChanged() | JobFinished():
            reason = getattr(event, "reason", "") or getattr(event, "error", "") or ""
            detail = event.status + (f" ({reason})" if reason else "")
        case TestResult():
            detail = {True: "passed", False: "FAILED", None: "no result"}[event.passed] + f" `{event.command}`"
        case ReviewGiven():
            detail = f"{event.decision}: {event.summary}"
        case AgentFinished():
            detail = f"{event.status} after {event.steps} steps: {short(event.reason, 100)}"
        case AgentCondensed():
            detail = (f"history condensed {event.why}: {event.tokens_before:,} -> {event.tokens_after:,} tokens "
                      f"of a {event.window:,} window ({event.messages_condensed} messages summarized, "
                      f"{event.observations_elided} observations elided)")
        case Notice():
            detail = short(event.text, 200)
        case EnvironmentSetup():
            outcome = "ok" if event.exit_code == 0 else ("timed out" if event.timed_out else f"exit {event.exit_code}")
            detail = f"{outcome} in {event.seconds:.1f} s: `{short(event.command, 100)}` ({event.origin})"
        case EnvironmentReady():
            detail = ("reused" if event.reused else f"set up in {event.seconds:.1f} s") + \
                f" ({event.source} on {event.backend}, key {event.key[:12]})"
        case _:
            detail = short(event.payload, 140)
    return Text.assemble((when, "dim"), " ", (f"{who:<18}", "bold"), " ", (f"{event.kind:<18}", "cyan"), " ", detail)


def verification_line(event: TestCommandChosen | TestBaseline) -> Text:
    """What the job verifies with: the test command and the evidence it was chosen on; then the baseline."""
    if isinstance(event, TestBaseline):
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(event.counts.items())) or (
            f"exit code {event.exit_code}" if event.command else "no tests ran")
        line = Text.assemble(("baseline: ", "bold"), counts)
        if event.failing:
            shown = ", ".join(event.failing[:5]) + (f" and {len(event.failing) - 5} more" if len(event.failing) > 5
                                                   else "")
            line.append(f"; failing before any change (not held against the work): {shown}", style="yellow")
        return line
    if event.command is None:
        return Text.assemble(("tests: none", "bold yellow"), f" — {event.reason}; the job will be unverified")
    origin = {"task": "given with the task", "settings": "from the settings", "planner": "refined by the planner",
              "discovered": "discovered"}.get(event.origin, event.origin)
    return Text.assemble(("tests: ", "bold"), (event.command, "bold"), f" ({origin}: {'; '.join(event.evidence)})")


def progress_view(view: JobView) -> RenderableType:
    """The live view of `shipyard run`: one row per subtask."""
    table = Table("subtask", "status", "agent", "last step", expand=True)
    for sub in view.subtasks.values():
        agent = view.agents[sub.agents[-1]] if sub.agents else None
        last = agent.last_step if agent and agent.last_step else sub.title
        table.add_row(sub.id, styled(sub.status), agent.label if agent else "", short(last, 60))
    head = Text.assemble(("job ", "bold"), view.job_id, "  ", styled(view.status or "queued"),
                         f"  tokens {view.tokens}  cost ${view.cost:.4f}")
    return Group(head, *sent_back_lines(view), table)


def campaign_progress(view: JobView) -> RenderableType:
    """The live view of a campaign: its figure over time, the iteration under way, the digests so far."""
    figures = " → ".join("-" if f is None else f"{f:g}" for f in view.figures)
    head = Text.assemble(("campaign ", "bold"), view.job_id, "  ", styled(view.status or "queued"),
                         f"  iteration {view.iteration or 1}  figure {sparkline(view.figures)} {figures}",
                         f"  cost ${view.cost:.4f}")
    lines = [head, *(Text(f"  {digest}") for digest in view.digests[-5:])]
    if view.option_jobs:
        lines.append(Text(f"  running: {', '.join(view.option_jobs)}", style="cyan"))
    if view.paused is not None:
        lines.append(Text(f"  waiting for budget: ${view.paused.spent:.4f} spent of ${view.paused.budget:.4f}",
                          style="yellow"))
    return Group(*lines)


def campaign_report_view(report: CampaignReport) -> RenderableType:
    head = Table.grid(padding=(0, 2))
    head.add_row("campaign", report.job_id)
    head.add_row("status", styled(report.status))
    head.add_row("branch", Text(report.branch, style="bold"))
    head.add_row("figure", f"{sparkline(report.figures)}  "
                           + " → ".join("-" if f is None else f"{f:g}" for f in report.figures))
    head.add_row("total", f"${report.cost:.4f}, {report.seconds:.1f} s")
    if report.stop_reason:
        head.add_row("stopped", Text(report.stop_reason, style="red"))
    iterations = Table("iteration", "tried", "merged", "figure", title="iterations", expand=True)
    for entry in report.iterations:
        iterations.add_row(str(entry.iteration), " | ".join(entry.options), ", ".join(entry.merged) or "-",
                           f"{entry.figure_before} → {entry.figure_after}")
    return Group(head, iterations)


def report_view(report: Report) -> RenderableType:
    head = Table.grid(padding=(0, 2))
    head.add_row("job", report.job_id)
    head.add_row("status", styled(report.status))
    head.add_row("job branch", Text(report.job_branch, style="bold"))
    head.add_row("changes", report.diff_stat.summary())
    evidence = (f"  ({'; '.join(report.test_evidence)})", "dim") if report.test_evidence else ""
    head.add_row("test command", Text.assemble((report.test_command or "none", "bold" if report.test_command
                                                else "dim"), evidence))
    if report.environment:
        head.add_row("environment", report.environment)
    head.add_row("tests before", _tests(report.tests_before, report.baseline_counts))
    head.add_row("tests after", _tests(report.tests_after))
    if report.pre_existing_failures:
        fixed = set(report.tests_after.comparison.fixed) if report.tests_after and report.tests_after.comparison \
            else set()
        still = [t for t in report.pre_existing_failures if t not in fixed]
        text = Text(style="yellow")
        if still:
            text.append(f"{_named(still)} (pre-existing, not held against the work)")
        if fixed:
            text.append(("; " if still else "") + f"fixed by the job: {_named(sorted(fixed))}", style="green")
        head.add_row("failing at base", text)
    if report.instructions:
        head.add_row("instructions", ", ".join(report.instructions))
    head.add_row("total", f"{report.total.input_tokens + report.total.output_tokens} tokens "
                          f"({report.total.cached_input_tokens} of them cached), "
                          f"${report.total.cost:.4f}, {report.seconds:.1f} s")
    if report.stop_reason:
        head.add_row("stopped", Text(report.stop_reason, style="red"))
    subtasks = Table("subtask", "status", "branch", "tests", "fix rounds", "review", title="subtasks", expand=True)
    for sub in report.subtasks:
        review = sub.verdict or "-"
        if sub.review_rounds:
            review += f" (after {sub.review_rounds} round{'s' if sub.review_rounds > 1 else ''} of changes)"
        subtasks.add_row(f"{sub.id} {sub.title}", styled(sub.status), sub.branch,
                         {True: "passed", False: "FAILED", None: sub.tests_verdict or "-"}[sub.tests_passed],
                         str(sub.fix_rounds),
                         review + (f"\n{sub.reason}" if sub.reason else ""))
    agents = Table("agent", "role", "status", "steps", "tokens", "cached", "cost", "time", title="agents",
                   expand=True)
    for agent in report.agents:
        agents.add_row(agent.agent, agent.role, agent.status, str(agent.steps), str(agent.tokens),
                       str(agent.cached_tokens), f"${agent.cost:.4f}", f"{agent.seconds:.1f} s")
    return Group(head, subtasks, agents)


def _tests(run: Any, counts: dict[str, int] | None = None) -> Text:
    if run is None or run.command is None:
        return Text("no tests ran", style="yellow")
    counts = counts or {}
    comparison = getattr(run, "comparison", None)
    if comparison is not None:
        counts = comparison.counts
    shown = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    timed_out = " — timed out" if getattr(run, "timed_out", False) else ""
    word = {True: "passed", False: "FAILED", None: "unverified"}[run.passed]
    why = f" — {'; '.join(comparison.reasons)}" if comparison is not None and comparison.reasons else ""
    return Text(f"{word}  ({run.command}){f' {shown}' if shown else ''}{timed_out}{why}",
                style={True: "green", False: "red", None: "yellow"}[run.passed])


def _named(tests: list[str], most: int = 5) -> str:
    return ", ".join(tests[:most]) + (f" and {len(tests) - most} more" if len(tests) > most else "")
