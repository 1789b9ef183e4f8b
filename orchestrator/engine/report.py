"""The job report: what was done, on which branches, how it tested, and what it cost."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.usage import UsageTotals
from orchestrator.engine.state import JobState, TestRun
from orchestrator.store.events import EnvironmentReady
from orchestrator.store.job_view import JobView
from sandboxes.git.repo import GitRepo
from sandboxes.git.results import DiffStat


class SubtaskReport(BaseModel):
    id: str
    title: str
    status: str
    branch: str
    depends_on: list[str]
    tests_passed: bool | None
    tests_verdict: str | None = None  # against the baseline: passed, failed, unverified
    fix_rounds: int
    review_rounds: int
    verdict: str | None
    review_comments: list[str]
    reason: str


class AgentReport(BaseModel):
    agent: str
    role: str
    status: str
    steps: int
    tokens: int
    cached_tokens: int = 0  # of the input tokens, read from the endpoint's prompt cache
    cost: float
    seconds: float


class Report(BaseModel):
    job_id: str
    status: str
    job_branch: str
    base_sha: str
    head_sha: str
    diff_stat: DiffStat
    tests_before: TestRun | None
    tests_after: TestRun | None
    plan_summary: str
    subtasks: list[SubtaskReport]
    agents: list[AgentReport]
    total: UsageTotals
    seconds: float
    stop_reason: str | None
    test_command: str | None = None
    test_evidence: list[str] = []
    pre_existing_failures: list[str] = Field(default_factory=list, description="tests failing at base, named")
    baseline_counts: dict[str, int] = Field(default_factory=dict, description="outcomes at base")
    instructions: list[str] = Field(default_factory=list, description="the repository instructions agents got")
    environment: str | None = None  # the project environment the sandboxes started from, in a few words

    @property
    def succeeded(self) -> bool:
        """Delivered, verified or not: the job branch breaks nothing the tests can tell of."""
        return self.status in ("succeeded", "unverified")

    @property
    def verified(self) -> bool:
        return self.status == "succeeded"


def build_report(job_id: str, state: JobState, repo: GitRepo, view: JobView, seconds: float) -> Report:
    plan = state.get("plan")
    results = state.get("results", {})
    base_sha = state["base_sha"]
    head_sha = repo.resolve(state["job_branch"])
    subtasks = []
    for sub in plan.subtasks if plan else []:
        result = results.get(sub.id)
        subtasks.append(
            SubtaskReport(
                id=sub.id, title=sub.title, status=result.status if result else "not started",
                branch=result.branch if result else "", depends_on=sub.depends_on,
                tests_passed=result.tests.passed if result and result.tests else None,
                tests_verdict=result.tests.comparison.verdict if result and result.tests and result.tests.comparison
                else None,
                fix_rounds=result.fix_rounds if result else 0, review_rounds=result.review_rounds if result else 0,
                verdict=result.verdict.decision if result and result.verdict else None,
                review_comments=result.verdict.comments if result and result.verdict else [],
                reason=result.reason if result else "",
            )
        )
    agents = [
        AgentReport(agent=a.name, role=a.role, status=a.status, steps=a.steps, tokens=a.usage.input_tokens
                    + a.usage.output_tokens, cached_tokens=a.usage.cached_input_tokens, cost=a.usage.cost,
                    seconds=a.seconds or 0.0)
        for a in view.agents.values() if a.usage is not None
    ]
    total = view.usage()
    before, after = state.get("tests_before"), state.get("tests_after")
    return Report(
        job_id=job_id, status=outcome(subtasks, after, state.get("stop_reason")), job_branch=state["job_branch"],
        base_sha=base_sha, head_sha=head_sha, diff_stat=repo.diff_stat(base_sha, head_sha),
        tests_before=before.compact() if before else None, tests_after=after.compact() if after else None,
        plan_summary=plan.summary if plan else "", subtasks=subtasks, agents=agents,
        total=total, seconds=round(seconds, 1), stop_reason=state.get("stop_reason"),
        test_command=state.get("test_command"), test_evidence=view.test_evidence,
        pre_existing_failures=view.baseline_failures, baseline_counts=view.baseline_counts,
        instructions=view.instructions, environment=describe_environment(view.environment),
    )


def outcome(subtasks: list[SubtaskReport], after: TestRun | None, stop_reason: str | None) -> str:
    """succeeded (verified), unverified (succeeded, but no test could tell), partial (some subtasks failed,
    what merged breaks nothing) or failed (nothing merged, or the job branch breaks what passed at base)."""
    merged = [sub for sub in subtasks if sub.status == "merged"]
    if not merged or (after is not None and after.passed is False):
        return "failed"
    if len(merged) < len(subtasks) or stop_reason:
        return "partial"
    return "succeeded" if after is not None and after.passed else "unverified"


def describe_environment(ready: EnvironmentReady | None) -> str | None:
    """`detected (python...), set up in 12.3 s` or `devcontainer, reused`: what the sandboxes started from."""
    if ready is None:
        return None
    how = "reused" if ready.reused else f"set up in {ready.seconds:.1f} s"
    image = f", image {ready.image}" if ready.image else ""
    return f"{ready.source} on {ready.backend}, {how} (key {ready.key[:12]}{image})"
