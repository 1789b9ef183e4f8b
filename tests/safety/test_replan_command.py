"""`shipyard replan JOB NOTE` as a user types it: the plan goes back to the planner (over HTTP, to the scripted
server, which records what it was asked) with the note, the new plan waits, `show` tells both, the limit holds."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from helpers import call, plan_entry, subtask
from safekit import World, one_error_line

from orchestrator.store.jobs import JobStatus

pytestmark = pytest.mark.bubblewrap

NOTE = "one subtask is enough: just add NOTE.md"
SCRIPT = [
    plan_entry(subtask("a1", "write a long essay"), subtask("a2", "add a note", depends_on=["a1"]),
               summary="essay first"),
    {**plan_entry(subtask("b1", "add a note"), summary="just the note"),
     "match": {"role": "planner", "any_message_contains": NOTE}},
    {"match": {"role": "coder"}, "tool_calls": [call("create_file", path="NOTE.md", content="noted\n"),
                                                call("submit", summary="added NOTE.md")], "repeat": True},
    {"match": {"role": "reviewer"}, "tool_calls": [call("submit_review", decision="approve", summary="fine")],
     "repeat": True},
]


def _planner_prompts(w: World) -> list[str]:
    return [json.dumps(r.body.get("messages")) for r in w.server.requests if r.role == "planner"]


def test_replan_sends_the_plan_back_and_the_new_one_waits_for_approval(world: Callable[..., World]) -> None:
    w = world(SCRIPT, toml_extra="max_replans = 1")
    assert w.shipyard("run", "add a note", "--repo", ".", "--approve-plan").returncode == 0
    job = w.only_job()
    assert job.status == JobStatus.AWAITING_APPROVAL

    sent = w.shipyard("replan", job.id[:-2], NOTE)  # a unique prefix is enough, as for every job command
    assert sent.returncode == 0, sent.stderr
    assert "The plan waits for you" in sent.stdout and f"shipyard replan {job.id}" in " ".join(sent.stdout.split())
    assert "just the note" in sent.stdout  # the new plan, shown
    director = w.director()
    assert director.get(job.id).status == JobStatus.AWAITING_APPROVAL
    assert [s.id for s in director.plan(job.id).subtasks] == ["b1"]
    first, second = _planner_prompts(w)
    assert NOTE not in first and NOTE in second and "a1: write a long essay" in second

    shown = w.shipyard("show", job.id, env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert f"plan 1 sent back (essay first; 2 subtasks): {NOTE}" in shown.stdout
    assert "just the note" in shown.stdout and "b1" in shown.stdout and "write a long essay" not in shown.stdout

    # The limit (max_replans = 1 in this repo's shipyard.toml): one line, and the plan still waits.
    refused = w.shipyard("replan", job.id, "and shorter")
    assert refused.returncode == 2
    assert one_error_line(refused.stderr) == (f"error: job {job.id}'s plan was sent back 1 time already, the limit "
                                              "(max_replans = 1): approve, edit or reject it")
    assert len(_planner_prompts(w)) == 2 and w.director().get(job.id).status == JobStatus.AWAITING_APPROVAL

    approved = w.shipyard("approve", job.id)
    assert approved.returncode == 0, approved.stderr
    report = w.director().report(job.id)
    assert [s.id for s in report.subtasks] == ["b1"] and w.director().get(job.id).status == JobStatus.SUCCEEDED
