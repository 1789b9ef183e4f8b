"""How a job verifies work: which test command, judged against the baseline, and what the agents are told.

One rule for a subtask and for the job: work passes when no test that passed at base fails
and the targeted tests pass (`test_comparison.compare_runs`); failures already there at base
are named, never held against the work. A change that deletes or skips tests fails unless
its subtask asks for that, and a submission that changes nothing fails unless the coder says
nothing needs to change and the reviewer agrees.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from agents.plan import Subtask
from agents.test_discovery import TestCommand, describe_test_command, discover_test_command
from orchestrator.engine.state import TestRun
from orchestrator.engine.test_comparison import compare_runs, render_comparison
from orchestrator.engine.test_results import FAILING, TestReport
from orchestrator.engine.test_tampering import TestTamperFinding, find_test_tampering
from sandboxes.base import WorkspaceReader

Origin = Literal["task", "settings", "discovered", "planner", "none"]
# A subtask that says, in so many words, that tests are to go or be skipped may remove or skip them.
ASKS_TO_REMOVE_TESTS = re.compile(
    r"\b(?:remove|delete|drop|skip|disable|xfail|retire)\w*\b[^.\n]{0,60}\btests?\b"
    r"|\btests?\b[^.\n]{0,40}\b(?:removed|deleted|dropped|skipped|disabled|obsolete)\b",
    re.IGNORECASE,
)
# How many names of failing tests an event or a report lists.
MOST_NAMED = 200


class TestChoice(BaseModel):
    """The command the job's tests run with, where it came from, and why (or why there is none)."""

    __test__ = False  # not a pytest test class

    test: TestCommand | None
    origin: Origin
    reason: str = ""  # why there is no command
    evidence: list[str] = []


def choose_test(task_command: str | None, settings_command: str | None, files: WorkspaceReader) -> TestChoice:
    """The task's command, else the configured one, else what discovery finds in the repository."""
    if task_command:
        test = describe_test_command(task_command, "given with the task")
        return TestChoice(test=test, origin="task", evidence=test.evidence)
    if settings_command:
        test = describe_test_command(settings_command, "test_command in the settings")
        return TestChoice(test=test, origin="settings", evidence=test.evidence)
    found = discover_test_command(files)
    if isinstance(found, TestCommand):
        return TestChoice(test=found, origin="discovered", evidence=found.evidence)
    return TestChoice(test=None, origin="none", reason=found.reason, evidence=found.evidence)


def planner_choice(command: str) -> TestChoice:
    test = describe_test_command(command, "the planner's refinement")
    return TestChoice(test=test, origin="planner", evidence=test.evidence)


def judge(report: TestReport, baseline: TestReport | None, targets: list[str], is_baseline: bool) -> TestRun:
    """A run as the graph keeps it: for the baseline the suite's own verdict, else the verdict against it."""
    comparison = None if is_baseline else compare_runs(baseline, report, targets)
    if comparison is not None:
        passed = {"passed": True, "failed": False, "unverified": None}[comparison.verdict]
    else:
        passed = None if report.source == "not-run" else report.ok
    return TestRun(command=report.command, passed=passed, exit_code=report.exit_code, output=report.output,
                   seconds=report.seconds, timed_out=report.timed_out, report=report, comparison=comparison)


def pre_existing(baseline: TestReport | None) -> list[str]:
    """The tests that failed at base: never the work's to fix."""
    return baseline.with_outcome(*FAILING) if baseline is not None else []


def what_ran(run: TestRun) -> str:
    """Exactly what ran, in a few lines, for the test-fixer's and the reviewer's prompts."""
    if run.report is not None and run.report.source == "not-run":
        return f"No tests ran: {run.report.note or 'there is no test command'}."
    if run.comparison is not None:
        return render_comparison(run.comparison)
    if run.command is None:
        return "No tests ran: there is no test command."
    return f"Tests: {'passed' if run.passed else 'FAILED'} (exit code {run.exit_code})."


def tampering(diff: str, subtask: Subtask) -> tuple[list[TestTamperFinding], bool]:
    """The diff's signs of tests deleted or skipped, and whether the subtask asks for that."""
    try:
        findings = find_test_tampering(diff)
    except ValueError:
        return [], False
    text = " ".join([subtask.title, subtask.instructions, *subtask.acceptance])
    return findings, bool(ASKS_TO_REMOVE_TESTS.search(text))


def tampering_reason(findings: list[TestTamperFinding]) -> str:
    first = findings[0]
    where = f"{first.path}:{first.line}" if first.line else first.path
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return f"tests removed or skipped without the subtask asking for it: {where} {first.detail}{more}"

