"""The job graph in this process: waves of subtasks, fix and review rounds, candidates, conflicts, approval."""

from __future__ import annotations

from pathlib import Path

from corekit import MakeDirector, by_hand
from helpers import approve, call, coder, git, make_repo, plan_entry, subtask

from agents.plan import Plan
from orchestrator.apps.demo import INSTRUCTION, SCRIPT, make_sample_repo
from orchestrator.store.jobs import JobStatus, Task


def _greeting_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {
        "greeting.py": 'MESSAGE = "hello"\n',
        "tests/test_greeting.py": "from greeting import MESSAGE\n\n\ndef test_message():\n    assert MESSAGE\n",
    })


def test_the_demo_job_runs_in_process(tmp_path: Path, make_director: MakeDirector) -> None:
    """Three subtasks, two waves; s2 goes through a fix round, s3 through a review round."""
    repo = make_sample_repo(tmp_path / "inventory")
    director, models = make_director(SCRIPT)
    job = director.run(director.submit(Task(instruction=INSTRUCTION, repo=str(repo), base="main")).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert models.pending == []
    report = director.report(job.id)
    by_id = {s.id: s for s in report.subtasks}
    assert [s.status for s in report.subtasks] == ["merged"] * 3
    assert by_id["s2"].fix_rounds == 1 and by_id["s3"].review_rounds == 1
    assert report.tests_before.passed is False and report.tests_after.passed is True
    view = director.view(job.id)
    assert {a.label for a in view.agents_of("s3")} >= {"coder 1", "reviewer 1", "coder 2", "reviewer 2"}
    # s2 and s3 start only once s1 is merged into the job branch.
    kinds = [(e.kind, e.subtask) for e in director.events(job.id)]
    assert kinds.index(("merge", "s1")) < min(i for i, k in enumerate(kinds) if k[1] in ("s2", "s3"))
    check = by_hand(["python3", "-m", "pytest", "-q"], cwd=_checkout(repo, report.job_branch, tmp_path))
    assert check.returncode == 0, check.stdout


def _checkout(repo: Path, branch: str, tmp_path: Path) -> Path:
    path = tmp_path / "check"
    git(repo, "worktree", "add", "-q", str(path), branch)
    return path


def test_the_better_of_two_candidates_wins(tmp_path: Path, make_director: MakeDirector) -> None:
    repo = _greeting_repo(tmp_path)
    director, _ = make_director([
        plan_entry(subtask("s1", "shout")),
        {"match": {"role": "coder", "any_message_contains": "Your subtask: s1"}, "tool_calls": [
            call("create_file", path="greeting.py", content="MESSAGE = ''\n"), call("submit", summary="empty")]},
        {"match": {"role": "coder", "any_message_contains": "Your subtask: s1"}, "tool_calls": [
            call("create_file", path="greeting.py", content='MESSAGE = "HELLO"\n'), call("submit", summary="loud")]},
        {**approve("s1"), "repeat": True},
    ])
    task = Task(instruction="shout", repo=str(repo), candidates=2, test_command="python3 -m pytest -q")
    job = director.run(director.submit(task).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    chosen = [e for e in director.events(job.id) if e.kind == "candidates.chosen"]
    assert len(chosen) == 1 and chosen[0].scores[chosen[0].winner]["tests"] is True
    assert git(repo, "show", f"shipyard/{job.id}:greeting.py") == 'MESSAGE = "HELLO"\n'


def test_a_merge_conflict_goes_to_the_resolver(tmp_path: Path, make_director: MakeDirector) -> None:
    repo = _greeting_repo(tmp_path)
    director, models = make_director([
        plan_entry(subtask("s1", "add the world"), subtask("s2", "capitalise")),
        coder("s1", call("edit_file", path="greeting.py", old='"hello"', new='"hello, world"'),
              call("submit", summary="world")),
        coder("s2", call("edit_file", path="greeting.py", old='"hello"', new='"Hello"'),
              call("submit", summary="capital")),
        approve("s1"),
        approve("s2"),
        {"match": {"role": "coder", "any_message_contains": "Resolve the conflicts in: greeting.py"},
         "tool_calls": [call("create_file", path="greeting.py", content='MESSAGE = "Hello, world"\n'),
                        call("submit", summary="kept both")]},
    ])
    job = director.run(director.submit(Task(instruction="greet", repo=str(repo),
                                            test_command="python3 -m pytest -q")).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert git(repo, "show", f"shipyard/{job.id}:greeting.py") == 'MESSAGE = "Hello, world"\n'
    merges = [e for e in director.events(job.id) if e.kind == "merge"]
    assert [m.ok for m in merges] == [True, False, True] and merges[-1].resolved == ["greeting.py"]
    assert models.pending == []
    # The resolved files were never tested as a commit: the job's run is a run of its own.
    job_run = [e for e in director.events(job.id) if e.kind == "test.result" and e.scope == "job"]
    assert [e.reused_from for e in job_run] == [None] and job_run[0].passed is True


def test_files_tested_already_in_the_job_are_not_tested_again(tmp_path: Path, make_director: MakeDirector) -> None:
    """One subtask merged alone leaves the job branch with the files its tests ran on: the job's run is that run."""
    repo = _greeting_repo(tmp_path)
    director, _ = make_director([
        plan_entry(subtask("s1", "shout")),
        coder("s1", call("create_file", path="greeting.py", content='MESSAGE = "HELLO"\n'),
              call("submit", summary="loud")),
        approve("s1"),
    ])
    job = director.run(director.submit(Task(instruction="shout", repo=str(repo),
                                            test_command="python3 -m pytest -q")).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    runs = {e.scope: e for e in director.events(job.id) if e.kind == "test.result"}
    assert runs["subtask"].reused_from is None and runs["job"].reused_from == "s1"
    assert runs["job"].passed is True and runs["job"].output == runs["subtask"].output
    assert director.report(job.id).tests_after.passed is True


def test_an_edited_plan_is_run_and_a_rejected_one_ends_the_job(tmp_path: Path, make_director: MakeDirector) -> None:
    repo = _greeting_repo(tmp_path)
    director, _ = make_director([
        {**plan_entry(subtask("s1", "one"), subtask("s2", "two")), "repeat": True},
        {**coder("s2", call("create_file", path="TWO.md", content="2\n"), call("submit", summary="two")),
         "repeat": True},
        {**approve("s2"), "repeat": True},
    ])
    waiting = director.run(director.submit(Task(instruction="x", repo=str(repo), approve_plan=True)).id)
    assert waiting.status == JobStatus.AWAITING_APPROVAL
    plan = director.plan(waiting.id)
    edited = Plan(summary="only two", subtasks=[plan.subtasks[1]])
    done = director.approve(waiting.id, edited)
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert [s.id for s in director.report(done.id).subtasks] == ["s2"]

    other = director.run(director.submit(Task(instruction="y", repo=str(repo), approve_plan=True)).id)
    rejected = director.reject(other.id, "too broad")
    assert rejected.status == JobStatus.REJECTED and "too broad" in rejected.error


def test_the_sandbox_settings_env_reaches_every_agent_command_and_test_run(
    tmp_path: Path, make_director: MakeDirector
) -> None:
    repo = make_repo(tmp_path / "repo", {
        "tests/test_env.py": "import os\n\n\ndef test_env():\n    assert os.environ['CI'] == '1'\n",
    })
    script = [plan_entry(subtask("s1", "note the CI flag")),
              coder("s1", call("run_command", command='echo "CI=$CI" > seen.txt'), call("submit", summary="noted")),
              approve("s1")]
    director, _ = make_director(script, sandbox_env={"CI": "1"})
    job = director.run(director.submit(Task(instruction="note it", repo=str(repo), base="main",
                                            test_command="python3 -m pytest -q")).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    report = director.report(job.id)
    assert report.tests_before.passed is True and report.tests_after.passed is True  # the runs saw CI=1
    assert git(repo, "show", f"{report.job_branch}:seen.txt").strip() == "CI=1"  # and so did the agent's command
