"""The job graph's state: what a checkpoint holds between steps."""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

from pydantic import BaseModel, Field

from agents.plan import Plan, ReviewVerdict, Subtask


class TestRun(BaseModel):
    command: str | None
    passed: bool | None = Field(description="None when there is no test command")
    exit_code: int | None = None
    output: str = ""
    seconds: float = 0.0
    timed_out: bool = False


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
    tests_before: TestRun | None
    plan: Plan | None
    decision: Literal["approved", "rejected"]
    results: Annotated[dict[str, SubtaskResult], _merge_results]
    tests_after: TestRun | None
    stop_reason: str | None


class SubtaskInput(TypedDict):
    """What one `Send` carries to the subtask node."""

    subtask: Subtask
    base_ref: str
    test_command: str | None
