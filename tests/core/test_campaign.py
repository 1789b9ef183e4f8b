"""Campaigns in this process: iterations that move the verifier's figure, a stall, a budget pause and its
top-up, alternative plans side by side."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from corekit import MakeDirector, by_hand
from helpers import call, git

from orchestrator.apps.demo import CAMPAIGN_REPO
from orchestrator.store.jobs import Campaign, JobStatus, Task

FIXES = {
    "km": ("fix km_to_miles", "units.py", "return km * 1.609344", "return km / 1.609344"),
    "temp": ("fix celsius_to_fahrenheit", "units.py", "return celsius * 9 / 5", "return celsius * 9 / 5 + 32"),
    "kg": ("fix kg_to_pounds", "units.py", "return kg / 2.20462", "return kg * 2.20462"),
}


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "units"
    shutil.copytree(CAMPAIGN_REPO, repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "units")
    return repo


def _option(key: str, cost: int = 1, risk: int = 1) -> dict[str, Any]:
    title = FIXES[key][0]
    subtasks = [{"id": "s1", "title": title, "instructions": f"{title} in units.py"}]
    return {"plan": {"summary": title, "subtasks": subtasks},
            "cost": cost, "risk": risk, "rationale": "one wrong formula"}


def _iteration(n: int, *options: dict[str, Any]) -> dict[str, Any]:
    return {"match": {"role": "planner", "any_message_contains": f"(iteration {n})"},
            "tool_calls": [call("submit_options", options=list(options))]}


def _coders() -> list[dict[str, Any]]:
    return [{"match": {"role": "coder", "any_message_contains": f"Your subtask: s1 — {title}"}, "repeat": True,
             "tool_calls": [call("edit_file", path=path, old=old, new=new), call("submit", summary=title)]}
            for title, path, old, new in FIXES.values()]


REVIEW = {"match": {"role": "reviewer"}, "repeat": True,
          "tool_calls": [call("submit_review", decision="approve", summary="right formula")]}


def _campaign(repo: Path, **options: Any) -> Task:
    return Task(instruction="make every unit conversion right", repo=str(repo), base="main", test_command="true",
                campaign=Campaign(verifier="python3 verify.py", **options))


def _figures(director: Any, job_id: str) -> list[float | None]:
    return [e.figure for e in director.events(job_id) if e.kind == "campaign.measured" and e.of == "campaign"]


def test_three_iterations_each_improving_meet_the_goal(tmp_path: Path, make_director: MakeDirector) -> None:
    repo = _repo(tmp_path)
    director, models = make_director([_iteration(1, _option("km")), _iteration(2, _option("temp")),
                                      _iteration(3, _option("kg")), *_coders(), REVIEW])
    job = director.run(director.submit(_campaign(repo)).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    report = director.campaign_report(job.id)
    assert report.figures == [3.0, 2.0, 1.0, 0.0] and len(report.iterations) == 3
    assert [e.kind for e in director.events(job.id)].count("campaign.digest") == 3
    # The campaign branch passes the verifier when run by hand.
    check = tmp_path / "check"
    git(repo, "worktree", "add", "-q", str(check), report.branch)
    assert by_hand(["python3", "verify.py"], cwd=check).returncode == 0
    assert models.pending == []


def test_a_campaign_that_stops_moving_stops_by_itself_and_says_why(tmp_path: Path,
                                                                   make_director: MakeDirector) -> None:
    repo = _repo(tmp_path)
    useless = {"plan": {"summary": "reword the docstring", "subtasks": [
        {"id": "s1", "title": "reword the docstring", "instructions": "better words"}]}, "cost": 1, "risk": 1,
        "rationale": "clarity first"}
    reword = {"match": {"role": "coder", "any_message_contains": "reword the docstring"}, "repeat": True,
              "tool_calls": [call("edit_file", path="units.py", old='"""Unit conversions."""',
                                  new='"""Conversions between units."""'), call("submit", summary="reworded")]}
    director, _ = make_director([{**_iteration(1, useless), "match": {"role": "planner"}, "repeat": True}, reword,
                                 REVIEW])
    job = director.run(director.submit(_campaign(repo, stall_after=2)).id)
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("stalled: no progress in 2 iterations") and "what blocks it" in job.error
    assert len(director.campaign_report(job.id).iterations) == 2


def test_a_spent_budget_pauses_the_campaign_and_a_top_up_goes_on_without_redoing(
        tmp_path: Path, make_director: MakeDirector) -> None:
    repo = _repo(tmp_path)
    director, models = make_director([_iteration(1, _option("km")), _iteration(2, _option("temp")),
                                      _iteration(3, _option("kg")), *_coders(), REVIEW], priced=True)
    # Enough for the first iteration, not for the second's option once its plan is made.
    job = director.run(director.submit(_campaign(repo, budget=0.004)).id)
    assert job.status == JobStatus.AWAITING_BUDGET
    paused = [e for e in director.events(job.id) if e.kind == "campaign.paused"]
    assert len(paused) == 1 and _figures(director, job.id) == [3.0, 2.0]
    asked = len(models.asked)
    done = director.topup(job.id, 100.0)
    assert done.status == JobStatus.SUCCEEDED, done.error
    planners = [str(a.messages) for a in models.asked[asked:] if a.role == "planner"]
    assert len(planners) == 1 and "(iteration 3)" in planners[0], "the plans made before the pause are not redone"
    assert director.campaign_report(job.id).figures == [3.0, 2.0, 1.0, 0.0]


def test_two_alternative_plans_run_side_by_side_and_the_better_one_is_kept(
        tmp_path: Path, make_director: MakeDirector) -> None:
    repo = _repo(tmp_path)
    worse = {"plan": {"summary": "reword the docstring", "subtasks": [
        {"id": "s1", "title": "reword the docstring", "instructions": "better words"}]}, "cost": 1, "risk": 1,
        "rationale": "cheap"}
    reword = {"match": {"role": "coder", "any_message_contains": "reword the docstring"}, "repeat": True,
              "tool_calls": [call("edit_file", path="units.py", old='"""Unit conversions."""',
                                  new='"""Conversions between units."""'), call("submit", summary="reworded")]}
    director, _ = make_director([_iteration(1, worse, _option("km", cost=2)), _iteration(2, _option("temp")),
                                 _iteration(3, _option("kg")), reword, *_coders(), REVIEW])
    job = director.run(director.submit(_campaign(repo, options=2)).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    chosen = next(e for e in director.events(job.id) if e.kind == "campaign.chosen" and e.iteration == 1)
    options = next(e for e in director.events(job.id) if e.kind == "campaign.options" and e.iteration == 1)
    assert len(options.jobs) == 2 and [o["title"] for o in options.options] == ["reword the docstring",
                                                                                 "fix km_to_miles"]
    assert chosen.winner == options.jobs[1] and chosen.scores[options.jobs[0]]["figure"] == 3.0
    # The other option stays as a branch.
    assert git(repo, "rev-parse", "--verify", f"shipyard/{options.jobs[0]}").strip()
