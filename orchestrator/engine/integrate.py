"""Integration: merge approved subtask branches into the job branch, with an agent for conflicts."""

from __future__ import annotations

from agents import roles
from agents.plan import Plan
from agents.test_discovery import TestCommand
from orchestrator.engine.context import JobContext
from orchestrator.engine.state import SubtaskResult
from orchestrator.engine.test_results import TestReport
from orchestrator.store.events import AgentId, MergeDone, SubtaskStatus
from sandboxes.base import SandboxError
from sandboxes.git.command import WorkspaceError


def integrate_results(s: JobContext, the_plan: Plan, approved: list[SubtaskResult], test: TestCommand | None,
                      baseline: TestReport | None) -> dict[str, SubtaskResult]:
    """Merge each approved result in dependency order; returns the results with their new status."""
    updated: dict[str, SubtaskResult] = {}
    path = s.worktree_path("integrate")
    # Left mid-merge by a run that was killed: that merge starts over. Each merge below leaves none.
    s.repo.discard_workspace(path)
    pending = list(approved)
    while pending:
        # Clean merges need no checkout of the job branch (most of a fan-out's integration time) and are made in
        # one pass; only a conflict gets a worktree, for the agent that resolves it.
        merges = s.repo.merge_clean(s.job_branch, [(r.branch, _message(the_plan, r)) for r in pending])
        for result, merge in zip(pending, merges, strict=False):
            s.emit(MergeDone(subtask=result.id, ok=True, sha=merge.sha, branch=result.branch))
            updated[result.id] = result.model_copy(update={"status": "merged"})
        pending = pending[len(merges):]
        if not pending:
            break
        result = pending.pop(0)
        message = _message(the_plan, result)
        merge = s.repo.merge(s.job_branch, result.branch, path, keep_conflicted=True, message=message)
        if merge.ok:  # merged in a worktree after all
            if path.exists():
                s.repo.remove_workspace(s.repo.open_workspace(path))
            s.emit(MergeDone(subtask=result.id, ok=True, sha=merge.sha, branch=result.branch))
            updated[result.id] = result.model_copy(update={"status": "merged"})
            continue
        s.emit(MergeDone(subtask=result.id, ok=False, conflicts=merge.conflicts, branch=result.branch))
        updated[result.id] = _resolve(s, result, merge.conflicts, message, test, baseline)
    return updated


def _message(the_plan: Plan, result: SubtaskResult) -> str:
    return f"Merge {result.branch}: {the_plan.get(result.id).title}"


def _resolve(s: JobContext, result: SubtaskResult, conflicts: list[str], message: str, test: TestCommand | None,
             baseline: TestReport | None) -> SubtaskResult:
    """Hand a conflicted merge to a coder agent; keep the merge only if the tests still pass."""
    ws = s.repo.open_workspace(s.worktree_path("integrate"))
    agent = AgentId(role="resolver", workspace=result.id)
    try:
        with s.sandbox(ws.path, agent.name) as sandbox:
            run = s.role_run(roles.RESOLVER, agent, result.id, sandbox, workspace=ws, touched=conflicts)
            outcome = roles.resolve_conflicts(run, result.branch, s.job_branch, conflicts, result.id)
            tests = s.run_tests(sandbox, test, f"{result.id}.resolve", baseline, targets=[])
        if outcome.submitted and tests.passed is not False:
            sha = ws.commit(f"{message}\n\nConflicts resolved by an agent: {outcome.summary}\n", role="coder",
                            agent=agent.name)
            s.emit(MergeDone(subtask=result.id, ok=True, sha=sha, branch=result.branch, resolved=conflicts))
            return result.model_copy(update={"status": "merged", "tests": tests})
        reason = f"merge conflict in {', '.join(conflicts)} not resolved: " + (
            outcome.reason if not outcome.submitted else "tests fail after the resolution"
        )
    except (WorkspaceError, SandboxError) as exc:
        reason = f"merge conflict in {', '.join(conflicts)} not resolved: {exc}"
    finally:
        # Whatever happened, the job branch keeps only completed merges.
        s.repo.remove_workspace(ws)
    s.emit(SubtaskStatus(subtask=result.id, status="failed", reason=reason))
    return result.model_copy(update={"status": "failed", "reason": reason})
