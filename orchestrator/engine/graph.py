"""The job graph: prepare -> plan -> approve -> fan out subtasks -> integrate -> ... -> verify -> report.

    prepare ─ plan ─ approve ─┬─ Send(subtask) x ready ─ integrate ─┐
                              │            ▲                       │
                              │            └──── more ready ───────┤
                              └──────────────────────────── verify ┴─ END

Subtasks whose dependencies are merged run in parallel (one `Send` each); after each
wave, approved branches are merged into the job branch in dependency order, and the
subtasks that depended on them become ready.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send, interrupt

from agents import roles
from agents.plan import Plan
from agents.repo_info import detect_test_command
from orchestrator.engine.integrate import integrate_results
from orchestrator.engine.services import JobServices
from orchestrator.engine.state import JobState, SubtaskInput, SubtaskResult, TestRun
from orchestrator.engine.subtask import SubtaskPipeline
from orchestrator.store.jobs import JobStatus


def build_graph(services: JobServices) -> StateGraph:
    s = services
    pipeline = SubtaskPipeline(s)

    def prepare(state: JobState) -> dict[str, Any]:
        base_sha = s.repo.resolve(s.task.base)
        s.repo.ensure_branch(s.job_branch, base_sha)
        ws = s.workspace("plan", base_sha, branch=s.job_branch)
        try:
            s.test_command = s.task.test_command or s.settings.test_command or detect_test_command(ws.path)
            with s.sandbox(ws.path, "baseline.tests") as sandbox:
                before = s.run_tests(sandbox, s.test_command)
        finally:
            s.repo.remove_workspace(ws)
        s.emit("job.prepared", base_sha=base_sha, job_branch=s.job_branch, test_command=s.test_command,
               tests_before=before.passed)
        return {"base_sha": base_sha, "job_branch": s.job_branch, "test_command": s.test_command,
                "tests_before": before, "results": {}}

    def plan(state: JobState) -> dict[str, Any]:
        s.set_status(JobStatus.PLANNING)
        ws = s.workspace("plan", state["base_sha"], branch=s.job_branch)
        try:
            with s.sandbox(ws.path, "planner") as sandbox:
                the_plan, _ = roles.plan(
                    s.model("planner", "planner"), sandbox, s.task.instruction, s.test_command, s.limits(),
                    s.agent_emitter("planner", "planner", None),
                )
        finally:
            s.repo.remove_workspace(ws)
        s.emit("plan.ready", role="planner", plan=the_plan.model_dump())
        return {"plan": the_plan}

    def approve(state: JobState) -> dict[str, Any]:
        if not s.task.approve_plan:
            s.set_status(JobStatus.RUNNING)
            return {"decision": "approved"}
        s.set_status(JobStatus.AWAITING_APPROVAL)
        # The process may exit here and the job wait for days: the checkpoint holds it.
        answer = interrupt({"plan": state["plan"].model_dump()})
        action = answer.get("action")
        if action == "reject":
            s.emit("plan.rejected", reason=answer.get("reason", ""))
            return {"decision": "rejected", "stop_reason": f"plan rejected: {answer.get('reason') or 'no reason given'}"}
        update: dict[str, Any] = {"decision": "approved"}
        if action == "edit":
            update["plan"] = Plan.model_validate(answer["plan"])
            s.emit("plan.edited", plan=update["plan"].model_dump())
        s.emit("plan.approved")
        s.set_status(JobStatus.RUNNING)
        return update

    def dispatch(state: JobState) -> list[Send] | str:
        if state.get("decision") == "rejected":
            return END
        the_plan: Plan = state["plan"]
        results = state.get("results", {})
        merged = {i for i, r in results.items() if r.status == "merged"}
        ready = the_plan.ready(finished=merged, started=set(results))
        if not ready or not s.budget_left():
            return "verify"
        head = s.repo.resolve(s.job_branch)
        return [Send("subtask", SubtaskInput(subtask=sub, base_ref=head)) for sub in ready]

    def subtask(payload: SubtaskInput) -> dict[str, Any]:
        result = pipeline.run(payload["subtask"], payload["base_ref"])
        return {"results": {result.id: result}, "dispatched": [result.id]}

    def integrate(state: JobState) -> dict[str, Any]:
        the_plan: Plan = state["plan"]
        results = state.get("results", {})
        pending = [results[i] for i in the_plan.order() if i in results and results[i].status == "approved"]
        merged = integrate_results(s, the_plan, pending)
        skipped = _blocked_by_failures(the_plan, {**results, **merged}, s)
        return {"results": {**merged, **skipped}}

    def verify(state: JobState) -> dict[str, Any]:
        ws = s.workspace("verify", s.job_branch, branch=s.job_branch)
        try:
            with s.sandbox(ws.path, "verify.tests") as sandbox:
                after = s.run_tests(sandbox, state.get("test_command"))
        finally:
            s.repo.remove_workspace(ws)
        s.emit("test.result", role=None, scope="job", passed=after.passed, exit_code=after.exit_code,
               output=after.output[-8000:], command=after.command)
        stop = state.get("stop_reason") or (None if s.budget_left() else "job budget spent")
        return {"tests_after": after, "stop_reason": stop}

    graph = StateGraph(JobState)
    graph.add_node("prepare", prepare)
    graph.add_node("plan", plan)
    graph.add_node("approve", approve)
    graph.add_node("subtask", subtask)
    graph.add_node("integrate", integrate)
    graph.add_node("verify", verify)
    graph.add_edge(START, "prepare")
    graph.add_edge("prepare", "plan")
    graph.add_edge("plan", "approve")
    graph.add_conditional_edges("approve", dispatch, ["subtask", "verify", END])
    graph.add_edge("subtask", "integrate")
    graph.add_conditional_edges("integrate", dispatch, ["subtask", "verify", END])
    graph.add_edge("verify", END)
    return graph


def _blocked_by_failures(the_plan: Plan, results: dict[str, SubtaskResult], s: JobServices) -> dict[str, SubtaskResult]:
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
                s.emit("subtask.status", subtask=sub.id, status="failed", reason=blocked[sub.id].reason)
                changed = True
    return blocked
