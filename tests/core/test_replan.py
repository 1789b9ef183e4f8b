"""Reject and re-plan, in this process: the director sends the plan back with a note, the planner plans again
with the plan and the note in its prompt, the new plan waits for approval, and only it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from corekit import MakeDirector
from helpers import approve, call, coder, git, make_repo, plan_entry, subtask

from agents.scripted_model.script import message_text
from orchestrator.runtime.director import JobStateError
from orchestrator.store.events import PlanSentBack
from orchestrator.store.jobs import JobStatus, Task

NOTE = "too broad: leave the README alone, only change greeting.py"


def _repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {
        "greeting.py": 'MESSAGE = "hello"\n', "README.md": "hi\n",
        "tests/test_greeting.py": "from greeting import MESSAGE\n\n\ndef test_message():\n    assert MESSAGE\n",
    })


def _replanned(*subtasks: dict[str, Any], summary: str = "the second plan", note: str = NOTE) -> dict[str, Any]:
    """The planner's answer once a plan was sent back with `note` (only then: it must be in the prompt)."""
    return {**plan_entry(*subtasks, summary=summary), "match": {"role": "planner", "any_message_contains": note}}


def _planner_prompts(models: Any) -> list[str]:
    return ["\n".join(message_text(m) for m in asked.messages) for asked in models.asked if asked.role == "planner"]


def test_a_plan_sent_back_is_planned_again_with_the_note_and_only_the_new_plan_runs(
        tmp_path: Path, make_director: MakeDirector) -> None:
    repo = _repo(tmp_path)
    director, models = make_director([
        plan_entry(subtask("a1", "rewrite the readme"), subtask("a2", "shout", depends_on=["a1"]),
                   summary="the first plan"),
        _replanned(subtask("b1", "shout in greeting.py")),
        {**coder("b1", call("edit_file", path="greeting.py", old='"hello"', new='"HELLO"'),
                 call("submit", summary="shouted")), "repeat": True},
        {**approve("b1"), "repeat": True},
    ])
    task = Task(instruction="shout", repo=str(repo), approve_plan=True, test_command="python3 -m pytest -q")
    waiting = director.run(director.submit(task).id)
    assert waiting.status == JobStatus.AWAITING_APPROVAL, waiting.error
    assert [s.id for s in director.plan(waiting.id).subtasks] == ["a1", "a2"]

    again = director.replan(waiting.id, NOTE, by="dana")
    # Approval is still required: the new plan waits, nothing ran.
    assert again.status == JobStatus.AWAITING_APPROVAL, again.error
    assert [s.id for s in director.plan(again.id).subtasks] == ["b1"]
    first, second = _planner_prompts(models)
    assert NOTE not in first
    assert NOTE in second and "The director sent your plan back" in second
    # The rejected plan, as the planner gets it: its summary, its subtasks, their instructions.
    assert "the first plan" in second and "a1: rewrite the readme" in second and "do shout" in second
    sent = director.events(again.id, kinds=(PlanSentBack,))
    assert [(e.note, e.round) for e in sent] == [(NOTE, 1)]
    view = director.view(again.id)
    assert [(b.round, b.note, [s.id for s in b.plan.subtasks]) for b in view.sent_back] == [(1, NOTE, ["a1", "a2"])]
    assert list(view.subtasks) == ["b1"] and view.summary == "the second plan"
    assert {a.name for a in view.agents_of(None)} == {"planner", "planner.2"}

    done = director.approve(again.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert [s.id for s in director.report(done.id).subtasks] == ["b1"]
    assert not [e for e in director.events(done.id) if e.subtask in ("a1", "a2")]
    assert not [a for a in models.asked if a.role == "coder" and "Your subtask: a1" in str(a.messages)]
    assert git(repo, "show", f"shipyard/{done.id}:greeting.py") == 'MESSAGE = "HELLO"\n'
    assert git(repo, "show", f"shipyard/{done.id}:README.md") == "hi\n"


def test_re_planning_stops_at_the_limit(tmp_path: Path, make_director: MakeDirector) -> None:
    repo = _repo(tmp_path)
    director, models = make_director([
        plan_entry(subtask("a1", "first")),
        _replanned(subtask("b1", "second"), note="not that"),
        {**plan_entry(subtask("c1", "third")), "match": {"role": "planner", "any_message_contains": "nor that"}},
    ], max_replans=2)
    job = director.run(director.submit(Task(instruction="x", repo=str(repo), approve_plan=True)).id)
    with pytest.raises(JobStateError, match="say what is wrong with the plan"):
        director.replan(job.id, "  ")
    job = director.replan(job.id, "not that")
    job = director.replan(job.id, "nor that")
    assert job.status == JobStatus.AWAITING_APPROVAL and [s.id for s in director.plan(job.id).subtasks] == ["c1"]
    # Every plan sent back so far is in the third planner's prompt, each with its note.
    third = _planner_prompts(models)[-1]
    assert "a1: first" in third and "not that" in third and "b1: second" in third and "nor that" in third
    assert director.replans(job.id) == (2, 2)
    with pytest.raises(JobStateError) as refused:
        director.replan(job.id, "still wrong")
    assert str(refused.value) == (f"job {job.id}'s plan was sent back 2 times already, the limit (max_replans = 2): "
                                  "approve, edit or reject it")
    assert "\n" not in str(refused.value)
    assert director.get(job.id).status == JobStatus.AWAITING_APPROVAL and director.pending_answer(job.id) is None
    assert len(_planner_prompts(models)) == 3
    assert director.reject(job.id, "enough").status == JobStatus.REJECTED


def test_a_re_plan_cut_short_resumes_from_its_checkpoint_with_the_note(
        tmp_path: Path, make_director: MakeDirector) -> None:
    """The second planner's model fails for good: the job stops; a resume (another director, as another
    process or worker would) plans again from the checkpoint, the sent-back plan and note still in the prompt."""
    repo = _repo(tmp_path)
    director, _ = make_director([
        plan_entry(subtask("a1", "first")),
        {"match": {"role": "planner"}, "status": 401, "message": "key revoked"},
    ])
    job = director.run(director.submit(Task(instruction="x", repo=str(repo), approve_plan=True)).id)
    stopped = director.replan(job.id, NOTE)
    assert stopped.status == JobStatus.FAILED and "key revoked" in (stopped.error or "")

    other, models = make_director([_replanned(subtask("b1", "second"))])
    resumed = other.resume(job.id)
    assert resumed.status == JobStatus.AWAITING_APPROVAL, resumed.error
    assert [s.id for s in other.plan(job.id).subtasks] == ["b1"]
    (prompt,) = _planner_prompts(models)
    assert NOTE in prompt and "a1: first" in prompt
    assert len(other.events(job.id, kinds=(PlanSentBack,))) == 1  # the answer was not acted on twice
