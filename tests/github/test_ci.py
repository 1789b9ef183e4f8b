"""The App looks after the checks of its own pull requests: GitHub Actions in the fake GitHub runs on every
push and reports over webhooks; jobs run on real workers (bubblewrap sandboxes, the scripted model)."""

from __future__ import annotations

import pytest
from appkit import REPO, GitHubWorld, payload
from helpers import git
from jobs.jobkit import wait_for

pytestmark = [pytest.mark.bubblewrap, pytest.mark.usefixtures("needs_bubblewrap")]

CI_ON = "[ci]\nfix_failures = true\nmax_rounds = 2\n"


def story(world: GitHubWorld) -> list[str]:
    """The lines of the status comment's story of the pull request's checks."""
    (status,) = world.status_comments(7)
    _, _, told = status.visible.partition("Checks of pull request #1:\n")
    return [line.removeprefix("- ") for line in told.splitlines()]


def needs_fix_md(files: set[str], attempt: int) -> tuple[bool, str]:
    if "FIX.md" in files:
        return True, "tests/test_fix.py::test_fix_md PASSED\n1 passed"
    return False, "tests/test_fix.py::test_fix_md FAILED\nE   AssertionError: FIX.md is missing\n1 failed"


def test_a_failing_check_is_fixed_by_a_follow_up(ci_world: GitHubWorld) -> None:
    world = ci_world
    world.commit("main", {".shipyard.toml": CI_ON})
    world.fake.actions.workflow(REPO, needs_fix_md)
    world.deployment.start_worker()
    assert world.send("issues", payload("issues.labeled")).status_code == 202

    pull = wait_for(lambda: world.fake.pulls[0] if world.fake.pulls else None, 90, "the pull request")
    wait_for(lambda: any(line.startswith("`CI` passes on") for line in story(world)), 240, "the checks to pass")
    first, fixed = (run.sha for run in world.fake.actions.runs_on(pull.head))
    fix_job = world.records.jobs_in(REPO, 1)[0].job_id
    assert story(world) == [
        f"`CI` failed on {first[:7]}; its failed jobs run once more, to tell a flaky failure from a real one.",
        f"`CI` failed again on {first[:7]}; follow-up job {fix_job} fixes it (round 1 of 2).",
        f"Job {fix_job} pushed {fixed[:7]}; the checks run on it.",
        f"`CI` passes on {fixed[:7]}, after 1 fix round(s).",
    ]
    assert world.branch_sha(pull.head) == fixed
    assert git(world.remote, "merge-base", "--is-ancestor", first, fixed) == "", "new commits on the same branch"
    assert git(world.remote, "show", f"{fixed}:FIX.md") == "fixed\n"
    assert len(world.fake.actions.reruns) == 1 and [p.number for p in world.fake.pulls] == [1]

    task = world.runner.get(fix_job).task
    assert task.base == first and "make the failing check `CI` pass" in task.instruction
    assert "E   AssertionError: FIX.md is missing" in task.instruction, "the failing job's log is in the task"
    assert "2025-03-03T09:0" not in task.instruction, "without the log's timestamps"
    assert world.records.job(fix_job).push_to == pull.head
    wait_for(lambda: [c for c in world.fake.comments_on(REPO, 1)
                      if c.body.startswith(f"@mona Pushed the changes to `{pull.head}`.")], 30, "the follow-up's word")


def test_a_flaky_check_is_run_again_not_fixed(ci_world: GitHubWorld) -> None:
    world = ci_world
    world.commit("main", {".shipyard.toml": CI_ON})
    world.fake.actions.workflow(REPO, lambda files, attempt: (attempt > 1, "test_clock FAILED: timed out"))
    world.deployment.start_worker()
    assert world.send("issues", payload("issues.labeled")).status_code == 202

    pull = wait_for(lambda: world.fake.pulls[0] if world.fake.pulls else None, 90, "the pull request")
    wait_for(lambda: len(story(world)) == 2, 120, "the re-run's result in the status comment")
    (run,) = world.fake.actions.runs_on(pull.head)
    assert story(world) == [
        f"`CI` failed on {run.sha[:7]}; its failed jobs run once more, to tell a flaky failure from a real one.",
        f"`CI` passed when run again on {run.sha[:7]}: a flaky failure, so nothing was changed for it.",
    ]
    assert world.fake.actions.reruns == [run.id] and run.attempt == 2
    assert len(world.runner.list()) == 1, "no follow-up job"
    assert world.branch_sha(pull.head) == run.sha


def test_checks_shipyard_cannot_run_again_are_fixed_then_left_to_the_requester(ci_world: GitHubWorld) -> None:
    """Another App's check run and a commit status: no re-run, a follow-up at once; after max_rounds, over to you."""
    world = ci_world
    world.commit("main", {".shipyard.toml": "[ci]\nfix_failures = true\nmax_rounds = 1\n"})
    world.deployment.start_worker()
    assert world.send("issues", payload("issues.labeled")).status_code == 202
    pull = wait_for(lambda: world.fake.pulls[0] if world.fake.pulls else None, 90, "the pull request")
    head = world.branch_sha(pull.head)
    wait_for(lambda: world.records.watch_of(world.records.jobs_in(REPO, 7)[0].job_id).pull_number == 1, 30,
             "the pull request to be watched")

    lint = payload("check_run.completed", check_run__head_sha=head, check_run__check_suite__head_branch=pull.head)
    assert world.send("check_run", lint).status_code == 202
    fixed = wait_for(lambda: (sha := world.branch_sha(pull.head)) != head and sha, 120, "the follow-up's commits")
    fix_job = world.records.jobs_in(REPO, 1)[0].job_id
    assert "NOTE.md: line 1 is too short (lint/short-line)" in world.runner.get(fix_job).task.instruction
    wait_for(lambda: len(story(world)) == 2, 30, "the push in the story")

    status = payload("status", sha=fixed, branches=[{"name": pull.head, "commit": {"sha": fixed}, "protected": False}])
    assert world.send("status", status).status_code == 202
    wait_for(lambda: len(story(world)) == 3, 30, "the end of the story")
    assert story(world) == [
        f"`lint` failed on {head[:7]}; follow-up job {fix_job} fixes it (round 1 of 1).",
        f"Job {fix_job} pushed {fixed[:7]}; the checks run on it.",
        f"`ci/example` still fails on {fixed[:7]} after 1 fix round(s); it is yours now.",
    ]
    (told,) = wait_for(lambda: [c for c in world.fake.comments_on(REPO, 7) if "Over to you." in c.body], 30,
                       "the requester to be told")
    assert told.body.startswith("@mona the checks of pull request #1 still fail after 1 fix round(s)")
    assert world.fake.actions.reruns == [] and len(world.runner.list()) == 2
