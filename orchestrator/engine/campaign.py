"""A campaign's graph: a goal and a verifier, pursued in iterations of jobs on the campaign's branch.

    start ─ decide ─┬─ propose ─┬─ spawn ─ run ─ choose ─┐
                    │     ▲     │                        │
                    │     └─────┼────────── decide ◀─────┘
                    ├─ pause ◀──┘ (budget spent: waits for a top-up, then decide: spawn what was proposed)
                    └─ finish (goal met, stalled, out of iterations)

Each iteration plans from the goal, the verifier's latest output and the journal of earlier
iterations; the planner may propose alternative plans, ranked by its own estimate of cost and risk.
The best `options` run side by side as jobs of their own (each from the campaign branch's head, on
its own branch); the verifier measures each, the one that moves it furthest is fast-forwarded onto
the campaign branch, and the others stay as branches. Every step is a checkpointed node, and every
option a job with checkpoints of its own: a campaign killed anywhere resumes where it stood.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import BaseModel

from agents import roles
from agents.plan import PlanOptions
from orchestrator.config.settings import job_snapshot
from orchestrator.engine.context import JobContext
from orchestrator.engine.verifier import Measurement, better, measure, rule
from orchestrator.store.events import (
    AgentId,
    CampaignChosen,
    CampaignDigest,
    CampaignMeasured,
    CampaignOptions,
    CampaignPaused,
    DirectorNote,
)
from orchestrator.store.jobs import Campaign, Job, JobStatus, Task
from orchestrator.store.records import JobRecords

# How a job of the campaign is run to its end (orchestrator.engine.runner.advance, bound to the
# campaign's settings, records and models): passed in, since the runner is what runs this graph.
RunJob = Callable[[Job], Job]
# Where a digest goes after each iteration: the director's inbox and notification sinks.
Announce = Callable[[Job, str], None]


class JournalEntry(BaseModel):
    """What one iteration did, as later iterations' planners and the director read it."""

    iteration: int
    options: list[str]
    jobs: list[str]
    winner: str | None
    figure_before: float | None
    figure_after: float | None
    merged: list[str]
    failed: list[str]

    def line(self) -> str:
        moved = f"figure {self.figure_before} -> {self.figure_after}"
        done = f"merged {', '.join(self.merged)}" if self.merged else "nothing merged"
        failed = f"; failed: {'; '.join(self.failed)}" if self.failed else ""
        tried = " | ".join(self.options)
        return f"- iteration {self.iteration}: tried {tried}; {done}; {moved}{failed}"


class CampaignState(TypedDict, total=False):
    base_sha: str
    branch: str
    iteration: int
    measurements: Annotated[list[Measurement], operator.add]  # the campaign branch's, one per iteration
    journal: Annotated[list[JournalEntry], operator.add]
    options: PlanOptions | None
    children: list[str]  # the jobs of the iteration under way
    spent_before: float  # by the jobs of finished iterations
    budget: float | None  # the campaign's budget as topped up
    stop_reason: str | None
    goal_met: bool


def build_campaign_graph(ctx: JobContext, records: JobRecords, run_job: RunJob, announce: Announce) -> StateGraph:
    campaign = _campaign_of(ctx.task)

    def start(state: CampaignState) -> dict[str, Any]:
        ctx.check_cancelled(every=0)
        base_sha = ctx.repo.resolve(ctx.task.base)
        ctx.repo.ensure_branch(ctx.job_branch, base_sha)
        first = _measure(ctx, campaign, ctx.job_branch, 0, "campaign")
        ctx.set_status(JobStatus.RUNNING)
        return {"base_sha": base_sha, "branch": ctx.job_branch, "iteration": 1, "measurements": [first],
                "journal": [], "children": [], "spent_before": 0.0, "budget": campaign.budget,
                "goal_met": first.passed}

    def out_of_budget(state: CampaignState) -> bool:
        budget = state.get("budget")
        return budget is not None and _spent(records, ctx, state) >= budget

    def decide(state: CampaignState) -> str:
        # Never raises: a cancel is for the node it routes to (see engine.graph's dispatch).
        if state.get("goal_met"):
            return "finish"
        if state["iteration"] > campaign.max_iterations:
            return "finish"
        if _stalled(state, campaign) is not None:
            return "finish"
        if out_of_budget(state):
            return "pause"
        # Options proposed before a pause are run as they were: a top-up redoes nothing.
        return "spawn" if state.get("options") else "propose"

    def after_propose(state: CampaignState) -> str:
        return "pause" if out_of_budget(state) else "spawn"

    def finish(state: CampaignState) -> dict[str, Any]:
        ctx.check_cancelled(every=0)
        if state.get("goal_met"):
            return {"stop_reason": None}
        stalled = _stalled(state, campaign)
        if stalled is not None:
            return {"stop_reason": stalled}
        return {"stop_reason": f"the goal still does not hold after {campaign.max_iterations} iterations"}

    def pause(state: CampaignState) -> dict[str, Any]:
        ctx.check_cancelled(every=0)
        spent = _spent(records, ctx, state)
        ctx.set_status(JobStatus.AWAITING_BUDGET)
        ctx.emit(CampaignPaused(spent=spent, budget=state.get("budget") or 0.0))
        # The process may exit here and the campaign wait for days: the checkpoint holds it.
        answer = interrupt({"awaiting": "budget", "spent": spent})
        ctx.set_status(JobStatus.RUNNING)
        return {"budget": (state.get("budget") or 0.0) + float(answer.get("topup", 0.0))}

    def propose(state: CampaignState) -> dict[str, Any]:
        ctx.check_cancelled(every=0)
        latest = state["measurements"][-1]
        first = state["measurements"][0]
        agent = AgentId(role="planner", workspace=f"i{state['iteration']}")
        ws = ctx.workspace(f"i{state['iteration']}-plan", state["branch"], branch=state["branch"])
        try:
            with ctx.sandbox(ws.path, agent.name) as sandbox:
                run = ctx.role_run(roles.CAMPAIGN_PLANNER, agent, None, sandbox)
                options = roles.propose(run, ctx.task.instruction, campaign.verifier, rule(campaign),
                                        state["iteration"], latest.output, latest.figure, first.figure,
                                        "\n".join(e.line() for e in state.get("journal", [])), campaign.options,
                                        ctx.task.test_command or ctx.settings.test_command)
        finally:
            ctx.repo.remove_workspace(ws)
        return {"options": options}

    def spawn(state: CampaignState) -> dict[str, Any]:
        """The iteration's options as jobs of their own, recorded once (a resumed campaign finds them)."""
        ctx.check_cancelled(every=0)
        options: PlanOptions = state["options"]  # type: ignore[assignment]
        head = ctx.repo.resolve(state["branch"])
        share = _share(campaign, state, records, ctx, len(options.options))
        notes = [e.text for e in records.events.list(ctx.job_id, kinds=(DirectorNote,)) if isinstance(e, DirectorNote)]
        children = []
        for option in options.options:
            task = ctx.task.model_copy(update={
                "instruction": _instruction(ctx.task.instruction, option.plan.summary, notes),
                "base": head, "campaign": None, "plan": option.plan, "parent": ctx.job_id, "approve_plan": False,
                "max_cost": share})
            children.append(records.submit(task, settings=job_snapshot(ctx.settings)).id)
        ctx.emit(CampaignOptions(iteration=state["iteration"], jobs=children, options=[
            {"title": o.plan.summary, "cost": o.cost, "risk": o.risk, "rationale": o.rationale}
            for o in options.options]))
        return {"children": children}

    def run(state: CampaignState) -> dict[str, Any]:
        """Every option's job to its end, side by side; stopping the campaign stops them."""
        jobs = [records.jobs.get(job_id) for job_id in state["children"]]
        pending = [job for job in jobs if not job.status.finished]
        stopper = _Cancels(records, [job.id for job in pending])
        if ctx.watch is not None:
            ctx.watch.guard(stopper)
        threads = [threading.Thread(target=run_job, args=(job,), name=f"option-{job.id}", daemon=True)
                   for job in pending]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ctx.check_cancelled(every=0)
        return {}

    def choose(state: CampaignState) -> dict[str, Any]:
        iteration = state["iteration"]
        current = state["measurements"][-1]
        head = ctx.repo.resolve(state["branch"])
        scores: dict[str, dict[str, Any]] = {}
        best: tuple[str, Measurement] | None = None
        failed: list[str] = []
        for job_id in state["children"]:
            job = records.jobs.get(job_id)
            branch = f"shipyard/{job_id}"
            sha = _sha(ctx, branch)
            if sha is None or sha == head:
                failed.append(f"{job_id}: {job.error or 'no change'}")
                continue
            found = _measure(ctx, campaign, branch, iteration, job_id)
            scores[job_id] = {"passed": found.passed, "figure": found.figure, "status": job.status.value}
            if job.status not in (JobStatus.SUCCEEDED, JobStatus.UNVERIFIED) and job.error:
                failed.append(f"{job_id}: {job.error}")
            if better(found, current, campaign) and (best is None or better(found, best[1], campaign)):
                best = (job_id, found)
        winner = best[0] if best else None
        if best is not None:
            ctx.repo.fast_forward(state["branch"], f"shipyard/{best[0]}")
        now = best[1] if best else current
        merged = _merged_titles(records, winner)
        ctx.emit(CampaignChosen(iteration=iteration, winner=winner, scores=scores))
        entry = JournalEntry(iteration=iteration, options=[o.plan.summary for o in state["options"].options],
                             jobs=state["children"], winner=winner, figure_before=current.figure,
                             figure_after=now.figure, merged=merged, failed=failed)
        spent_before = state.get("spent_before", 0.0) + sum(records.events.spent(j) for j in state["children"])
        spent = records.events.spent(ctx.job_id) + spent_before
        digest = _digest(ctx, entry, now, spent)
        ctx.emit(CampaignDigest(iteration=iteration, text=digest, figure_before=current.figure,
                                figure_now=now.figure, spent=spent))
        announce(records.jobs.get(ctx.job_id), digest)
        after = now.model_copy(update={"sha": ctx.repo.resolve(state["branch"])})
        ctx.emit(CampaignMeasured(iteration=iteration, sha=after.sha, passed=after.passed, figure=after.figure))
        return {"measurements": [after],
                "journal": [entry], "iteration": iteration + 1, "children": [], "options": None,
                "spent_before": spent_before, "goal_met": now.passed}

    graph = StateGraph(CampaignState)
    for name, node in [("start", start), ("pause", pause), ("propose", propose), ("spawn", spawn), ("run", run),
                       ("choose", choose), ("finish", finish)]:
        graph.add_node(name, node)
    graph.add_edge(START, "start")
    for node in ("start", "pause", "choose"):
        graph.add_conditional_edges(node, decide, ["propose", "spawn", "pause", "finish"])
    graph.add_conditional_edges("propose", after_propose, ["spawn", "pause"])
    graph.add_edge("spawn", "run")
    graph.add_edge("run", "choose")
    graph.add_edge("finish", END)
    return graph


class _Cancels:
    """Stops an iteration's jobs when the campaign stops (a JobWatch guard)."""

    def __init__(self, records: JobRecords, job_ids: list[str]):
        self.records = records
        self.job_ids = job_ids

    def stop(self) -> None:
        for job_id in self.job_ids:
            if not self.records.jobs.get(job_id).status.finished:
                self.records.set_status(job_id, JobStatus.CANCELLED, error="the campaign stopped")


def _campaign_of(task: Task) -> Campaign:
    if task.campaign is None:
        raise ValueError("not a campaign")
    return task.campaign


def _measure(ctx: JobContext, campaign: Campaign, branch: str, iteration: int, of: str) -> Measurement:
    """The verifier on `branch`'s head, in a sandbox like the agents'."""
    sha = ctx.repo.resolve(branch)
    name = f"verify-{of}-{iteration}"
    ws = ctx.workspace(name, sha, branch=branch)
    try:
        with ctx.sandbox(ws.path, f"{of}.verifier") as sandbox:
            found = measure(sandbox.exec(campaign.verifier), sha, campaign)
    finally:
        ctx.repo.remove_workspace(ws)
    ctx.emit(CampaignMeasured(iteration=iteration, sha=sha, passed=found.passed, figure=found.figure, of=of))
    return found


def _stalled(state: CampaignState, campaign: Campaign) -> str | None:
    """Why the campaign stalled — no progress of the figure in `stall_after` iterations — or None."""
    journal = state.get("journal", [])
    recent = journal[-campaign.stall_after:]
    if len(recent) < campaign.stall_after or any(e.winner for e in recent):
        return None
    blocked = "; ".join(f for e in recent for f in e.failed) or "no option moved the verifier's figure"
    return (f"stalled: no progress in {campaign.stall_after} iterations (figure "
            f"{state['measurements'][-1].figure}); what blocks it: {blocked}")


def _spent(records: JobRecords, ctx: JobContext, state: CampaignState) -> float:
    return records.events.spent(ctx.job_id) + state.get("spent_before", 0.0)


def _share(campaign: Campaign, state: CampaignState, records: JobRecords, ctx: JobContext, count: int) -> float | None:
    """What each option's job may spend: its part of the iteration's budget and of what is left."""
    caps = []
    if campaign.iteration_budget is not None:
        caps.append(campaign.iteration_budget / count)
    budget = state.get("budget")
    if budget is not None:
        caps.append(max(0.0, budget - _spent(records, ctx, state)) / count)
    return min(caps) if caps else None


def _instruction(goal: str, approach: str, notes: list[str]) -> str:
    text = f"{goal}\n\nThis iteration's approach: {approach}"
    if notes:
        text += "\n\nNotes from the director:\n" + "\n".join(f"- {note}" for note in notes)
    return text


def _sha(ctx: JobContext, branch: str) -> str | None:
    try:
        return ctx.repo.resolve(branch)
    except Exception:  # noqa: BLE001 - an option's job that never made its branch
        return None


def _merged_titles(records: JobRecords, job_id: str | None) -> list[str]:
    if job_id is None:
        return []
    job = records.jobs.get(job_id)
    subtasks = (job.report or {}).get("subtasks", [])
    return [f"{s['id']} {s['title']}" for s in subtasks if s.get("status") == "merged"]


def _digest(ctx: JobContext, entry: JournalEntry, now: Measurement, spent: float) -> str:
    goal = "the goal holds" if now.passed else f"figure {entry.figure_before} -> {entry.figure_after}"
    merged = ", ".join(entry.merged) or "nothing"
    return (f"Campaign {ctx.job_id}, iteration {entry.iteration}: {goal}; merged {merged}; spent ${spent:.4f}; "
            f"next: {'done' if now.passed else 'another iteration'}")
