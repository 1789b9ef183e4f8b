"""The agent loop and the roles in this process, on a fake model and a local sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from corekit import local_sandbox
from helpers import call

from agents import roles
from agents.fake_model import FakeModels
from agents.loop import MAX_NUDGES, AgentLimits, run_agent
from agents.models import ModelSpec
from agents.plan import Subtask
from agents.tools import Toolset
from agents.usage import UsageLedger


def _model(script: list[Any], role: str = "coder") -> Any:
    return FakeModels(script)(ModelSpec(model="fake"), role, UsageLedger(), f"s1.{role}.1")


class Spent:
    def __init__(self) -> None:
        self.reason: str | None = None

    def exhausted(self) -> str | None:
        return self.reason


def test_bad_tool_calls_are_answered_and_the_run_goes_on(tmp_path: Path) -> None:
    sandbox = local_sandbox(tmp_path)
    model = _model([
        {"tool_calls": [{"name": "edit_file", "arguments": '{"path": "a.txt", "old": '}]},
        {"tool_calls": [call("no_such_tool")]},
        {"content": "I think I am done."},
        {"tool_calls": [call("create_file", path="a.txt", content="done\n"), call("submit", summary="wrote a")]},
    ])
    outcome = run_agent(model, Toolset(sandbox), "system", "task", AgentLimits())
    assert outcome.submitted and outcome.summary == "wrote a" and outcome.steps == 4
    assert (tmp_path / "a.txt").read_text() == "done\n"
    assert outcome.usage.calls == 4 and outcome.usage.estimated_calls == 4


def test_a_model_that_stops_calling_tools_ends_the_run(tmp_path: Path) -> None:
    model = _model([{"content": "Hmm.", "repeat": True}])
    outcome = run_agent(model, Toolset(local_sandbox(tmp_path)), "system", "task", AgentLimits())
    assert outcome.status == "error" and f"({MAX_NUDGES} reminders)" in outcome.reason


def test_limits_and_the_shared_budget_stop_the_run_before_the_next_call(tmp_path: Path) -> None:
    model = _model([{"tool_calls": [call("list_files")], "repeat": True}])
    capped = run_agent(model, Toolset(local_sandbox(tmp_path)), "s", "t", AgentLimits(max_steps=3))
    assert capped.status == "limit" and capped.steps == 3 and "step limit" in capped.reason
    budget = Spent()
    budget.reason = "job budget spent ($1.00 of $1.00)"
    stopped = run_agent(model, Toolset(local_sandbox(tmp_path)), "s", "t", AgentLimits(), budget=budget)
    assert stopped.status == "limit" and stopped.steps == 0 and stopped.reason == budget.reason


def test_the_planner_answers_with_a_plan_and_a_planner_that_cannot_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def main():\n    return 1\n")
    models = FakeModels([{"match": {"any_message_contains": "def main()"}, "tool_calls": [call(
        "submit_plan", summary="one step", subtasks=[{"id": "s1", "title": "t", "instructions": "do it"}])]}])
    run = roles.RoleRun(model=models(ModelSpec(model="f"), "planner", UsageLedger(), "planner"),
                        sandbox=local_sandbox(tmp_path), limits=AgentLimits(), notes=["mind the tests"])
    plan, outcome = roles.plan(run, "improve main", "python3 -m pytest")
    assert plan.subtasks[0].id == "s1" and outcome.submitted
    prompt = models.asked[0].messages[1]["content"]
    assert "app.py" in prompt and "def main():" in prompt and "- mind the tests" in prompt  # tree, map, notes

    silent = roles.RoleRun(model=_model([{"content": "no", "repeat": True}], "planner"),
                           sandbox=local_sandbox(tmp_path), limits=AgentLimits())
    with pytest.raises(roles.RoleError, match="the planner stopped without an answer"):
        roles.plan(silent, "improve main", None)


def test_the_reviewer_is_told_when_no_test_ran(tmp_path: Path) -> None:
    models = FakeModels([{"tool_calls": [call("submit_review", decision="request_changes", summary="untested",
                                              comments=["add a test"])]}])
    run = roles.RoleRun(model=models(ModelSpec(model="f"), "reviewer", UsageLedger(), "s1.reviewer.1"),
                        sandbox=local_sandbox(tmp_path), limits=AgentLimits())
    subtask = Subtask(id="s1", title="t", instructions="do it")
    verdict, _ = roles.review(run, subtask, "diff --git a/x b/x\n", None, None, "")
    assert not verdict.approved and verdict.comments == ["add a test"]
    prompt = models.asked[0].messages[1]["content"]
    assert "# Tests: not verified (no tests ran)" in prompt and "Tests: passed" not in prompt
