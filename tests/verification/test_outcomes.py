"""A job's outcome from its subtasks and its last test run, the exit code and last line of each, and the
old rows (events, reports, checkpoints' test runs) that must still load."""

from __future__ import annotations

import pytest

from orchestrator.apps.cli.outcome import exit_code, last_line
from orchestrator.engine.report import Report, SubtaskReport, outcome
from orchestrator.engine.state import TestRun
from orchestrator.engine.test_comparison import TestComparison
from orchestrator.store.events import SCHEMA_VERSION, JobPrepared, TestResult, from_row
from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Job, JobStatus, Task


def sub(status: str) -> SubtaskReport:
    return SubtaskReport(id="s1", title="t", status=status, branch="b", depends_on=[], tests_passed=None,
                         fix_rounds=0, review_rounds=0, verdict=None, review_comments=[], reason="")


def run(passed: bool | None, verdict: str = "passed") -> TestRun:
    comparison = TestComparison(verdict=verdict, reasons=["why"], per_test=True)  # type: ignore[arg-type]
    return TestRun(command="python3 -m pytest", passed=passed, comparison=comparison)


@pytest.mark.parametrize(("subtasks", "after", "stop", "expected"), [
    (["merged", "merged"], run(True), None, "succeeded"),
    (["merged"], run(None, "unverified"), None, "unverified"),
    (["merged"], TestRun(command=None, passed=None), None, "unverified"),
    (["merged", "failed"], run(True), None, "partial"),
    (["merged"], run(True), "job budget spent ($1 of $1)", "partial"),
    (["failed"], run(True), None, "failed"),
    (["merged", "failed"], run(False, "failed"), None, "failed"),
    ([], None, None, "failed"),
])
def test_the_outcome_of_a_job(subtasks: list[str], after: TestRun | None, stop: str | None, expected: str) -> None:
    assert outcome([sub(s) for s in subtasks], after, stop) == expected
    assert JobStatus(expected).finished


@pytest.mark.parametrize(("status", "code"), [
    (JobStatus.SUCCEEDED, 0), (JobStatus.FAILED, 1), (JobStatus.REJECTED, 1), (JobStatus.CANCELLED, 1),
    (JobStatus.UNVERIFIED, 3), (JobStatus.PARTIAL, 4), (JobStatus.RUNNING, 5), (JobStatus.AWAITING_APPROVAL, 5),
])
def test_each_outcome_has_its_exit_code(status: JobStatus, code: int) -> None:
    assert exit_code(status) == code


def test_the_last_line_is_one_line_with_the_reason() -> None:
    job = Job(id="j1", status=JobStatus.FAILED, task=Task(instruction="x", repo="/r"), created_at=0, updated_at=0,
              error="not merged: s1 failed (no change made)\n  and more")
    assert last_line(job).plain == "job j1 failed: not merged: s1 failed (no change made) and more"
    quiet = job.model_copy(update={"error": None, "status": JobStatus.CANCELLED})
    assert last_line(quiet).plain == "job j1 cancelled: see `shipyard show j1`"
    done = job.model_copy(update={"error": "not verified: no tests ran", "status": JobStatus.UNVERIFIED,
                                  "report": {"job_branch": "shipyard/j1"}})
    assert last_line(done).plain == "job j1 succeeded, unverified: not verified: no tests ran — branch shipyard/j1"
    assert JobStatus.UNVERIFIED.delivered and JobStatus.PARTIAL.delivered and not JobStatus.FAILED.delivered


def test_rows_written_before_verification_still_load() -> None:
    def row(kind: str, payload: dict[str, object], version: int = SCHEMA_VERSION) -> dict[str, object]:
        return {"id": 1, "job_id": "j", "kind": kind, "payload": payload, "ts": 0.0, "v": version}

    result = from_row(row("test.result", {"command": "pytest", "passed": True, "exit_code": 0, "scope": "job"}))
    assert isinstance(result, TestResult) and result.verdict is None and result.pre_existing_failures == []
    prepared = from_row(row("job.prepared", {"base_sha": "a" * 40, "job_branch": "shipyard/j",
                                             "test_command": "pytest", "tests_before": False}, 1))
    assert isinstance(prepared, JobPrepared)
    view = JobView.of("j", [prepared, result])
    assert view.test_command == "pytest" and view.baseline_failures == [] and view.tests_after is not None
    # A report and a checkpoint's test run from before: no per-test results, no comparison.
    old_run = TestRun.model_validate({"command": "pytest", "passed": True, "exit_code": 0, "output": "ok"})
    assert old_run.report is None and old_run.comparison is None
    old_report = Report.model_validate({
        "job_id": "j", "status": "succeeded", "job_branch": "shipyard/j", "base_sha": "a", "head_sha": "b",
        "diff_stat": {"files": [], "insertions": 0, "deletions": 0}, "tests_before": None,
        "tests_after": old_run.model_dump(), "plan_summary": "", "subtasks": [], "agents": [],
        "total": {}, "seconds": 1.0, "stop_reason": None})
    assert old_report.succeeded and old_report.verified and old_report.pre_existing_failures == []
