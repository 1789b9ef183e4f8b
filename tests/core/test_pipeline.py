"""The subtask pipeline's bounds in this process: fix rounds, review rounds, a coder that does nothing."""

from __future__ import annotations

from pathlib import Path

from corekit import MakeDirector
from helpers import call, coder, make_repo, plan_entry, subtask

from orchestrator.engine.subtask import MAX_FIX_ROUNDS, MAX_REVIEW_ROUNDS
from orchestrator.store.jobs import JobStatus, Task


def _repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"tests/test_x.py": "def test_x():\n    assert open('x.txt').read() == 'x'\n"})


def test_fix_rounds_are_bounded_and_a_subtask_whose_tests_still_fail_is_not_merged(
        tmp_path: Path, make_director: MakeDirector) -> None:
    director, models = make_director([
        # test_x fails at base: only as the subtask's target is it held against the work.
        plan_entry({**subtask("s1", "make x"), "tests": ["tests/test_x.py"]}),
        {**coder("s1", call("create_file", path="x.txt", content="y"), call("submit", summary="y")), "repeat": True},
        {"match": {"role": "test_fixer"}, "tool_calls": [call("submit", summary="tried")], "repeat": True},
        {"match": {"role": "reviewer"}, "tool_calls": [call("submit_review", decision="approve", summary="ok")],
         "repeat": True},
    ])
    job = director.run(director.submit(Task(instruction="x", repo=str(_repo(tmp_path)),
                                            test_command="python3 -m pytest -q")).id)
    assert job.status == JobStatus.FAILED
    (result,) = director.report(job.id).subtasks
    assert result.status == "failed" and result.fix_rounds == MAX_FIX_ROUNDS
    assert "changes still requested" in result.reason
    fixers = {a.agent for a in models.asked if a.role == "test_fixer"}
    assert fixers == {f"s1.test_fixer.{n}" for n in range(1, MAX_FIX_ROUNDS + 1)}


def test_review_rounds_are_bounded(tmp_path: Path, make_director: MakeDirector) -> None:
    director, models = make_director([
        plan_entry(subtask("s1", "make x")),
        {**coder("s1", call("create_file", path="x.txt", content="x"), call("submit", summary="x")), "repeat": True},
        {"match": {"role": "reviewer"}, "repeat": True, "tool_calls": [
            call("submit_review", decision="request_changes", summary="not yet", comments=["again"])]},
    ])
    job = director.run(director.submit(Task(instruction="x", repo=str(_repo(tmp_path)),
                                            test_command="python3 -m pytest -q")).id)
    (result,) = director.report(job.id).subtasks
    assert job.status == JobStatus.FAILED and result.review_rounds == MAX_REVIEW_ROUNDS
    reviewers = sorted({a.agent for a in models.asked if a.role == "reviewer"})
    assert reviewers == [f"s1.reviewer.{n}" for n in range(1, MAX_REVIEW_ROUNDS + 2)]
    # Each new round's coder is told what the reviewer asked.
    second = next(a for a in models.asked if a.agent == "s1.coder.2")
    assert "- again" in second.messages[1]["content"]


def test_a_coder_that_gives_up_without_a_change_fails_its_subtask(tmp_path: Path, make_director: MakeDirector) -> None:
    director, _ = make_director([
        plan_entry(subtask("s1", "make x")),
        {**coder("s1", {"content": "I cannot."}), "content": "I cannot.", "tool_calls": [], "repeat": True},
    ])
    job = director.run(director.submit(Task(instruction="x", repo=str(_repo(tmp_path)))).id)
    (result,) = director.report(job.id).subtasks
    assert job.status == JobStatus.FAILED and result.reason.startswith("coder: the model stopped calling tools")
