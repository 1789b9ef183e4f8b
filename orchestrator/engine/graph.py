"""The job graph: environment -> prepare -> plan -> approve -> fan out subtasks -> integrate -> ... -> verify.

    environment ─ prepare ─ plan ─ approve ─┬─ Send(subtask) x ready ─ integrate ─┐
                             ▲       │      │            ▲                       │
                             └───────┘      │            └──── more ready ───────┤
                       sent back: re-plan   └──────────────────────────── verify ┴─ END

Subtasks whose dependencies are merged run in parallel (one `Send` each); after each
wave, approved branches are merged into the job branch in dependency order, and the
subtasks that depended on them become ready. A plan the director sends back goes to the
planner again with their note (and every plan sent back before it); the new one waits for approval.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send, interrupt

from agents import roles
from agents.plan import Plan, SentBack
from agents.repo_instructions import read_repo_instructions
from agents.test_discovery import TestCommand, describe_test_command
from orchestrator.engine.context import JobContext, test_result_event
from orchestrator.engine.integrate import integrate_results
from orchestrator.engine.state import JobState, SubtaskInput, SubtaskResult, TestRun
from orchestrator.engine.subtask import SubtaskPipeline
from orchestrator.engine.verification import MOST_NAMED, TestChoice, choose_test, planner_choice, pre_existing
from orchestrator.store.events import (
    AgentId,
    JobPrepared,
    PlanApproved,
    PlanEdited,
    PlanReady,
    PlanRejected,
    PlanSentBack,
    RepoInstructionsRead,
    SubtaskStatus,
    TestBaseline,
    TestCommandChosen,
)
from orchestrator.store.jobs import JobStatus
from sandboxes.base import Sandbox


def build_graph(ctx: JobContext) -> StateGraph:
    s = ctx
    pipeline = SubtaskPipeline(s)

    def environment(state: JobState) -> dict[str, Any]:
        # Set up (or found in the cache) before anything else runs: a failed setup stops the job here.
        s.check_cancelled(every=0)
        s.environment()
        return {}

    def prepare(state: JobState) -> dict[str, Any]:
        s.check_cancelled(every=0)
        base_sha = s.repo.resolve(s.task.base)
        s.repo.ensure_branch(s.job_branch, base_sha)
        ws = s.workspace("plan", base_sha, branch=s.job_branch)
        ws.start_at(base_sha)
        try:
            with s.sandbox(ws.path, "baseline.tests") as sandbox:
                read = read_repo_instructions(sandbox)
                s.emit(RepoInstructionsRead(sources=read.sources, text=read.text, cut=read.cut,
                                            elsewhere=read.elsewhere))
                choice = choose_test(s.task.test_command, s.settings.test_command, sandbox)
                before = _baseline(s, sandbox, base_sha, choice)
        except BaseException:
            s.repo.remove_workspace(ws)
            raise
        # The worktree stays for the planner, next (reset there): the plan node removes it however it ends.
        test_command = choice.test.command if choice.test else None
        s.emit(JobPrepared(base_sha=base_sha, job_branch=s.job_branch, test_command=test_command,
                           tests_before=before.passed))
        return {"base_sha": base_sha, "job_branch": s.job_branch, "test_command": test_command,
                "test": choice.test, "tests_before": before, "results": {}}

    def plan(state: JobState) -> dict[str, Any]:
        try:
            return planned(state)
        finally:
            # The job branch is checked out there: integration moves it, and a discard deletes it.
            s.drop_workspace("plan")

    def planned(state: JobState) -> dict[str, Any]:
        s.set_status(JobStatus.PLANNING)
        if s.task.plan is not None:  # chosen already: a campaign's option
            s.emit(PlanReady(role="planner", plan=s.task.plan))
            return {"plan": s.task.plan}
        ws = s.workspace("plan", state["base_sha"], branch=s.job_branch)
        ws.start_at(state["base_sha"])
        sent_back: list[SentBack] = state.get("sent_back") or []
        # Planning again after the director sent plans back: the next planner, `planner.2`, and so on.
        agent = AgentId(role="planner", round=len(sent_back) + 1 if sent_back else None)
        before = state.get("tests_before")
        test = state.get("test")
        update: dict[str, Any] = {}
        given_command = s.task.test_command or s.settings.test_command  # the director's word wins
        with s.sandbox(ws.path, agent.name) as sandbox:
            run = s.role_run(roles.PLANNER, agent, None, sandbox)
            the_plan, _ = roles.plan(run, s.task.instruction, state.get("test_command"),
                                     test.evidence if test else (),
                                     pre_existing(before.report if before else None), sent_back)
            refined = the_plan.test_command
            if refined and refined.strip() != state.get("test_command") and not given_command:
                # The planner read the repo: its command is the job's, with a baseline of its own.
                choice = planner_choice(refined.strip())
                update = {"test": choice.test, "test_command": refined.strip(),
                          "tests_before": _baseline(s, sandbox, state["base_sha"], choice)}
        s.emit(PlanReady(role="planner", plan=the_plan))
        return {"plan": the_plan, **update}

    def approve(state: JobState) -> dict[str, Any]:
        if not s.task.approve_plan:
            s.set_status(JobStatus.RUNNING)
            return {"decision": "approved"}
        s.set_status(JobStatus.AWAITING_APPROVAL)
        # The process may exit here and the job wait for days: the checkpoint holds it.
        answer = interrupt({"plan": state["plan"].model_dump()})
        action = answer.get("action")
        if action == "reject":
            s.emit(PlanRejected(reason=answer.get("reason", "")))
            reason = answer.get("reason") or "no reason given"
            return {"decision": "rejected", "stop_reason": f"plan rejected: {reason}"}
        if action == "replan":
            # Back to the planner with the plan and the director's note; the checkpoint keeps both.
            note = answer.get("reason") or ""
            sent_back = [*(state.get("sent_back") or []), SentBack(plan=state["plan"], note=note)]
            s.emit(PlanSentBack(note=note, round=len(sent_back)))
            return {"decision": "replan", "sent_back": sent_back}
        update: dict[str, Any] = {"decision": "approved"}
        if action == "edit":
            update["plan"] = Plan.model_validate(answer["plan"])
            s.emit(PlanEdited(plan=update["plan"]))
        s.emit(PlanApproved())
        s.set_status(JobStatus.RUNNING)
        return update

    def dispatch(state: JobState) -> list[Send] | str:
        if state.get("decision") == "rejected":
            return END
        if state.get("decision") == "replan":
            return "plan"
        # A routing function never raises (a cancel is for the next node to notice): LangGraph would keep
        # the node's writes without the route, and a resumed job would end there, its next subtasks unstarted.
        the_plan: Plan = state["plan"]
        results = state.get("results", {})
        merged = {i for i, r in results.items() if r.status == "merged"}
        ready = the_plan.ready(finished=merged, started=set(results))
        if not ready or s.spent_out() is not None:
            return "verify"
        head = s.repo.resolve(s.job_branch)
        before = state.get("tests_before")
        return [Send("subtask", SubtaskInput(subtask=sub, base_ref=head, test_command=state.get("test_command"),
                                             test=state.get("test"), baseline=before.report if before else None))
                for sub in ready]

    def subtask(payload: SubtaskInput) -> dict[str, Any]:
        s.check_cancelled(every=0)
        result = pipeline.run(payload["subtask"], payload["base_ref"], _test_of(payload), payload.get("baseline"))
        return {"results": {result.id: result}}

    def integrate(state: JobState) -> dict[str, Any]:
        the_plan: Plan = state["plan"]
        results = state.get("results", {})
        pending = [results[i] for i in the_plan.order() if i in results and results[i].status == "approved"]
        before = state.get("tests_before")
        merged = integrate_results(s, the_plan, pending, _test_of(state), before.report if before else None)
        skipped = _blocked_by_failures(the_plan, {**results, **merged}, s)
        return {"results": {**merged, **skipped}}

    def verify(state: JobState) -> dict[str, Any]:
        s.check_cancelled(every=0)
        test = _test_of(state)
        before = state.get("tests_before")
        baseline = before.report if before else None
        after = s.test_at(s.job_branch, test, "verify", baseline, lambda: _job_branch_sandbox(s), targets=[])
        s.emit(test_result_event(after, scope="job"))
        stop = state.get("stop_reason") or s.spent_out()
        return {"tests_after": after, "stop_reason": stop}
    graph = StateGraph(JobState)
    graph.add_node("environment", environment)
    graph.add_node("prepare", prepare)
    graph.add_node("plan", plan)
    graph.add_node("approve", approve)
    graph.add_node("subtask", subtask)
    graph.add_node("integrate", integrate)
    graph.add_node("verify", verify)
    graph.add_edge(START, "environment")
    graph.add_edge("environment", "prepare")
    graph.add_edge("prepare", "plan")
    graph.add_edge("plan", "approve")
    graph.add_conditional_edges("approve", dispatch, ["plan", "subtask", "verify", END])
    graph.add_edge("subtask", "integrate")
    graph.add_conditional_edges("integrate", dispatch, ["subtask", "verify", END])
    graph.add_edge("verify", END)
    return graph


def _test_of(state: JobState | SubtaskInput) -> TestCommand | None:
    """The job's test command; a checkpoint from before commands were described has only its text."""
    test = state.get("test")
    command = state.get("test_command")
    if test is None and command:
        return describe_test_command(command, "the job's test command")
    return test


@contextmanager
def _job_branch_sandbox(s: JobContext) -> Iterator[Sandbox]:
    """A sandbox on a checkout of the job branch, removed after."""
    ws = s.workspace("verify", s.job_branch, branch=s.job_branch)
    try:
        with s.sandbox(ws.path, "verify.tests") as sandbox:
            yield sandbox
    finally:
        s.repo.remove_workspace(ws)


def _baseline(s: JobContext, sandbox: Sandbox, base_sha: str, choice: TestChoice) -> TestRun:
    """Run the suite at base (checked out in `sandbox`) with per-test results, and say so: the command, its
    evidence, what failed."""
    s.emit(TestCommandChosen(command=choice.test.command if choice.test else None, origin=choice.origin,
                             evidence=choice.evidence, reason=choice.reason))
    before = s.test_at(base_sha, choice.test, "baseline", None, lambda: nullcontext(sandbox),
                       no_command=choice.reason or "no test command")
    report = before.report
    if report is not None:
        failing = pre_existing(report)
        s.emit(TestBaseline(command=report.command, exit_code=report.exit_code, source=report.source,
                            counts=report.counts, failing=failing[:MOST_NAMED],
                            messages={t: report.messages[t] for t in failing[:MOST_NAMED] if t in report.messages},
                            note=report.note))
    return before


def _blocked_by_failures(the_plan: Plan, results: dict[str, SubtaskResult], s: JobContext) -> dict[str, SubtaskResult]:
    """Subtasks that can never start because something they depend on failed."""
    failed = {i for i, r in results.items() if r.status == "failed"}
    blocked: dict[str, SubtaskResult] = {}
    changed = True
    while changed:
        changed = False
        for sub in the_plan.subtasks:
            if sub.id in results or sub.id in blocked:
                continue
            bad = [d for d in sub.depends_on if d in failed or d in blocked]
            if bad:
                blocked[sub.id] = SubtaskResult(
                    id=sub.id, status="failed", branch=s.branch(sub.id), tests=TestRun(command=None, passed=None),
                    reason=f"not started: depends on failed {', '.join(bad)}",
                )
                s.emit(SubtaskStatus(subtask=sub.id, status="failed", reason=blocked[sub.id].reason))
                changed = True
    return blocked
