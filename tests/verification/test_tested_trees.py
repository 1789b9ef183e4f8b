"""A job's runs kept by the files they tested: what is reused, and what is run again."""

from __future__ import annotations

from agents.test_discovery import describe_test_command
from orchestrator.engine.test_results import TestReport
from orchestrator.engine.tested_trees import TestedTrees

TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
PYTEST = describe_test_command("python3 -m pytest -q", "the job's test command")


def _report(exit_code: int | None = 0, timed_out: bool = False) -> TestReport:
    return TestReport(command=PYTEST.command, exit_code=exit_code, timed_out=timed_out, source="junit-xml",
                      output="1 passed", seconds=12.5)


def test_a_finished_run_stands_for_the_same_files_and_command_only() -> None:
    tested = TestedTrees()
    tested.add(TREE, PYTEST, "s1", _report())
    again = tested.get(TREE, PYTEST)
    assert again is not None and again.reused_from == "s1" and again.seconds == 0.0 and again.output == "1 passed"
    assert tested.get("0" * 40, PYTEST) is None
    assert tested.get(TREE, describe_test_command("python3 -m pytest -q tests/unit", "the planner")) is None


def test_a_run_stopped_by_its_timeout_or_without_an_exit_code_is_run_again() -> None:
    tested = TestedTrees()
    tested.add(TREE, PYTEST, "s1", _report(timed_out=True, exit_code=-9))
    tested.add(TREE, PYTEST, "s2", _report(exit_code=None))
    assert tested.get(TREE, PYTEST) is None
