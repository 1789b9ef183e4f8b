"""The job graph's state: what a checkpoint holds between steps."""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

from pydantic import BaseModel, Field

from agents.plan import Plan, ReviewVerdict, SentBack, Subtask
from agents.test_discovery import TestCommand
from orchestrator.engine.test_comparison import TestComparison
from orchestrator.engine.test_results import TestReport


class TestRun(BaseModel):
    """One run of the suite: the runner's own word, its per-test results and, after the baseline, the verdict
    against the baseline (which `passed` follows)."""

    __test__ = False  # not a pytest test class, whatever its name

    command: str | None
    passed: bool | None = Field(description="None when nothing could tell: no tests, or no way to tell new "
                                "failures from old ones")
    exit_code: int | None = None
    output: str = ""
    seconds: float = 0.0
    timed_out: bool = False
    report: TestReport | None = Field(None, description="per-test results (None in a checkpoint from before them)")
    comparison: TestComparison | None = Field(None, description="judged against the baseline; None for the baseline")

    def compact(self) -> TestRun:
        """Without the per-test outcomes of every test, for reports: the comparison names what matters."""
        return self.model_copy(update={"report": None})


class SubtaskResult(BaseModel):
    id: str
    status: Literal["approved", "failed", "merged"]
    branch: str
    head: str | None = None
    tests: TestRun | None = None
    verdict: ReviewVerdict | None = None
    fix_rounds: int = 0
    review_rounds: int = 0
    reason: str = ""


def _merge_results(old: dict[str, SubtaskResult], new: dict[str, SubtaskResult | None]) -> dict[str, SubtaskResult]:
    """New results win; a None forgets a subtask's result, so that it runs again (retry)."""
    merged = {**old, **new}
    return {key: value for key, value in merged.items() if value is not None}


class JobState(TypedDict, total=False):
    base_sha: str
    job_branch: str
    test_command: str | None
    test: TestCommand | None  # the command with how its results are read and why it was chosen
    tests_before: TestRun | None
    plan: Plan | None
    decision: Literal["approved", "rejected", "replan"]
    sent_back: list[SentBack]  # every plan sent back for re-planning, oldest first
    results: Annotated[dict[str, SubtaskResult], _merge_results]
    tests_after: TestRun | None
    stop_reason: str | None


class SubtaskInput(TypedDict):
    """What one `Send` carries to the subtask node."""

    subtask: Subtask
    base_ref: str
    test_command: str | None
    test: TestCommand | None
    baseline: TestReport | None
