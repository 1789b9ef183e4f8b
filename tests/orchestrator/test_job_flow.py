"""End to end: the job graph through the scripted model over HTTP, real git and real sandboxes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import ScriptedJobs, approve, call, checkout_state, coder, git, make_repo, plan_entry, subtask

from agents.models import ModelSpec
from agents.scripted_model import ScriptedModelServer
from orchestrator.apps.demo import INSTRUCTION, SCRIPT, demo_settings, make_sample_repo
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import JobStatus, Task

pytestmark = pytest.mark.bubblewrap


def test_three_subtasks_with_a_fix_round_and_a_review_round(tmp_path: Path, sandbox_backend: str) -> None:
    repo = make_sample_repo(tmp_path / "inventory")
    (repo / "notes.txt").write_text("the director's uncommitted work\n")
    before = checkout_state(repo)
    with ScriptedModelServer(SCRIPT) as server:
        runner = Director(demo_settings(tmp_path, server.base_url, sandbox_backend))
        job = runner.submit(Task(instruction=INSTRUCTION, repo=str(repo)))
        job = runner.run(job.id)
        requests = server.requests
        assert server.pending == []
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert all(r.status == 200 for r in requests)
    report = runner.report(job.id)
    assert report is not None
    by_id = {s.id: s for s in report.subtasks}
    assert [s.status for s in report.subtasks] == ["merged", "merged", "merged"]
    assert by_id["s2"].fix_rounds == 1 and by_id["s3"].review_rounds == 1
    assert report.tests_before.passed is False and report.tests_after.passed is True
    assert {a.role for a in report.agents} == {"planner", "coder", "test_fixer", "reviewer"}

    # s2 and s3 depend on s1: they start only once s1 is merged into the job branch.
    events = runner.events(job.id)
    s1_merged = next(e.id for e in events if e.kind == "merge" and e.subtask == "s1")
    first_dependent = min(e.id for e in events if e.kind == "subtask.status" and e.subtask in ("s2", "s3"))
    assert s1_merged < first_dependent

    # The job branch passes its tests when run by hand, and the user's checkout is untouched.
    check = tmp_path / "check"
    git(repo, "worktree", "add", "-q", str(check), report.job_branch)
    result = subprocess.run(["python3", "-m", "pytest", "-q"], cwd=check, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    git(repo, "worktree", "remove", "--force", str(check))
    assert checkout_state(repo) == before
    branches = git(repo, "branch", "--list", "shipyard/*").split()
    assert f"shipyard/{job.id}" in branches and f"shipyard/{job.id}--s2" in branches


def _one_file_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {
        "greeting.py": 'MESSAGE = "hello"\n',
        "tests/test_greeting.py": "from greeting import MESSAGE\n\n\ndef test_message():\n    assert MESSAGE\n",
    })


def test_rejected_plan_ends_the_job_without_agents(tmp_path: Path, scripted_jobs: ScriptedJobs) -> None:
    repo = _one_file_repo(tmp_path)
    runner = scripted_jobs.runner([plan_entry(subtask("s1", "shout"))])
    job = runner.submit(Task(instruction="shout", repo=str(repo), approve_plan=True))
    job = runner.run(job.id)
    assert job.status == JobStatus.AWAITING_APPROVAL
    job = runner.reject(job.id, "not what I meant")
    assert job.status == JobStatus.REJECTED
    assert "not what I meant" in (job.error or "")
    assert [r.role for r in scripted_jobs.server.requests] == ["planner"]
    assert git(repo, "branch", "--list", f"shipyard/{job.id}--*") == ""


def test_edited_plan_runs_as_edited(tmp_path: Path, scripted_jobs: ScriptedJobs) -> None:
    repo = _one_file_repo(tmp_path)
    runner = scripted_jobs.runner([
        plan_entry(subtask("s1", "shout"), subtask("s2", "whisper")),
        coder("s1", call("edit_file", path="greeting.py", old="hello", new="HELLO")),
        coder("s1", call("submit", summary="shouting")),
        approve("s1"),
    ])
    job = runner.run(runner.submit(Task(instruction="shout", repo=str(repo), approve_plan=True)).id)
    plan = next(e.payload["plan"] for e in runner.events(job.id) if e.kind == "plan.ready")
    plan["subtasks"] = plan["subtasks"][:1]
    job = runner.approve(job.id, plan)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert [s.id for s in runner.report(job.id).subtasks] == ["s1"]
    assert git(repo, "show", f"shipyard/{job.id}:greeting.py") == 'MESSAGE = "HELLO"\n'


def test_merge_conflict_is_resolved_by_an_agent(tmp_path: Path, scripted_jobs: ScriptedJobs) -> None:
    repo = _one_file_repo(tmp_path)
    runner = scripted_jobs.runner([
        plan_entry(subtask("s1", "add the world"), subtask("s2", "capitalise")),
        coder("s1", call("edit_file", path="greeting.py", old='"hello"', new='"hello, world"'),
              call("submit", summary="world")),
        coder("s2", call("edit_file", path="greeting.py", old='"hello"', new='"Hello"'),
              call("submit", summary="capital")),
        approve("s1"),
        approve("s2"),
        {"match": {"role": "coder", "any_message_contains": "Resolve the conflicts in: greeting.py"},
         "tool_calls": [call("create_file", path="greeting.py", content='MESSAGE = "Hello, world"\n')]},
        {"match": {"role": "coder", "any_message_contains": "Resolve the conflicts in"},
         "tool_calls": [call("submit", summary="kept both: capital and world")]},
    ])
    job = runner.run(runner.submit(Task(instruction="greet the world politely", repo=str(repo))).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    merges = [e.payload for e in runner.events(job.id) if e.kind == "merge"]
    assert any(m["ok"] is False and m["conflicts"] == ["greeting.py"] for m in merges)
    assert any(m.get("resolved") == ["greeting.py"] for m in merges)
    assert git(repo, "show", f"shipyard/{job.id}:greeting.py") == 'MESSAGE = "Hello, world"\n'


def test_budget_exceeded_stops_cleanly_and_keeps_branches(tmp_path: Path, scripted_jobs: ScriptedJobs) -> None:
    repo = _one_file_repo(tmp_path)
    usage = {"prompt_tokens": 100, "completion_tokens": 10}  # $0.11 a call at the prices below
    runner = scripted_jobs.runner([
        {**plan_entry(subtask("s1", "shout")), "usage": usage},
        {**coder("s1", call("edit_file", path="greeting.py", old="hello", new="HELLO")), "usage": usage},
        {**coder("s1", call("view_file", path="greeting.py")), "usage": usage},
        {**coder("s1", call("submit", summary="never reached")), "usage": usage},
    ])
    priced = ModelSpec(base_url=scripted_jobs.server.base_url, model="priced", input_price=1000, output_price=1000)
    runner.settings.models["default"] = priced
    job = runner.run(runner.submit(Task(instruction="shout", repo=str(repo), max_cost=0.3)).id)
    assert job.status == JobStatus.FAILED
    report = runner.report(job.id)
    assert report.stop_reason == "job budget spent ($0.3300 of $0.3000)"
    assert report.total.cost <= 0.3 + 0.11 + 1e-9  # at most the one call that crossed the line
    coder_end = next(e for e in runner.events(job.id) if e.kind == "agent.finished" and e.role == "coder")
    assert coder_end.payload["status"] == "limit" and "job budget" in coder_end.payload["reason"]
    # The work done before the budget ran out is on its branch.
    assert git(repo, "show", f"shipyard/{job.id}--s1:greeting.py") == 'MESSAGE = "HELLO"\n'
    assert scripted_jobs.server.pending == [3]


def test_malformed_and_unknown_tool_calls_are_recovered_from(tmp_path: Path, scripted_jobs: ScriptedJobs) -> None:
    repo = _one_file_repo(tmp_path)
    runner = scripted_jobs.runner([
        plan_entry(subtask("s1", "shout")),
        coder("s1", {"name": "edit_file", "arguments": '{"path": "greeting.py", "old": '}),
        coder("s1", call("delete_everything", path="/")),
        coder("s1", call("edit_file", path="greeting.py", old="hello", new="HELLO")),
        coder("s1", call("submit", summary="shouting")),
        approve("s1"),
    ])
    job = runner.run(runner.submit(Task(instruction="shout", repo=str(repo))).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    results = [e.payload for e in runner.events(job.id) if e.kind == "agent.tool_result" and e.role == "coder"]
    assert results[0]["ok"] is False and "not valid JSON" in results[0]["output"]
    assert results[1]["ok"] is False and "unknown tool 'delete_everything'" in results[1]["output"]
    assert results[2]["ok"] is True


def test_candidates_race_and_the_verified_one_wins(tmp_path: Path, scripted_jobs: ScriptedJobs) -> None:
    repo = make_repo(tmp_path / "repo", {
        "greeting.py": 'MESSAGE = "hello"\n',
        "tests/test_greeting.py": 'from greeting import MESSAGE\n\n\ndef test_loud():\n    assert MESSAGE == "HELLO"\n',
    })
    runner = scripted_jobs.runner([
        # test_loud fails at base: the subtask names it, so an attempt that leaves it failing fails.
        plan_entry({**subtask("s1", "shout"), "tests": ["tests/test_greeting.py::test_loud"]}),
        {"match": {"model": "candidate-a"},
         "tool_calls": [call("edit_file", path="greeting.py", old="hello", new="HOLA"), call("submit", summary="a")]},
        {"match": {"model": "candidate-b"},
         "tool_calls": [call("edit_file", path="greeting.py", old="hello", new="HELLO"), call("submit", summary="b")]},
        approve("s1"),
    ])
    url = scripted_jobs.server.base_url
    runner.settings.candidate_models = [ModelSpec(base_url=url, model="candidate-a"),
                                        ModelSpec(base_url=url, model="candidate-b")]
    job = runner.run(runner.submit(Task(instruction="shout", repo=str(repo), candidates=2)).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    chosen = next(e.payload for e in runner.events(job.id) if e.kind == "candidates.chosen")
    assert chosen["winner"] == "s1-c2"
    assert chosen["scores"]["s1-c1"]["tests"] is False and chosen["scores"]["s1-c2"]["tests"] is True
    assert git(repo, "show", f"shipyard/{job.id}:greeting.py") == 'MESSAGE = "HELLO"\n'
    # Both attempts stay inspectable on their own branches.
    assert git(repo, "show", f"shipyard/{job.id}--s1-c1:greeting.py") == 'MESSAGE = "HOLA"\n'


def test_a_wide_fan_out_runs_its_subtasks_side_by_side(tmp_path: Path, scripted_jobs: ScriptedJobs) -> None:
    """Eight independent subtasks: more than a small machine's default thread pool holds."""
    repo = _one_file_repo(tmp_path)
    ids = [f"s{i}" for i in range(1, 9)]
    script = [plan_entry(*(subtask(i, f"write {i}") for i in ids))]
    for i in ids:
        script.append({**coder(i, call("create_file", path=f"{i}.txt", content=i), call("submit", summary=i)),
                       "latency": 0.5})
        script.append(approve(i))
    runner = scripted_jobs.runner(script)
    job = runner.run(runner.submit(Task(instruction="write eight files", repo=str(repo))).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert sorted(git(repo, "ls-tree", "--name-only", f"shipyard/{job.id}").split()) == sorted(
        [f"{i}.txt" for i in ids] + ["greeting.py", "tests"])
    # Several coders were waiting on the model at once: their requests came in before the
    # first coder's answer (0.5 s after its request) went out.
    coders = sorted(r.time for r in scripted_jobs.server.requests if r.role == "coder")
    assert len([t for t in coders if t < coders[0] + 0.5]) >= 2


def test_a_cyclic_plan_is_refused_and_asked_again(tmp_path: Path, scripted_jobs: ScriptedJobs) -> None:
    repo = _one_file_repo(tmp_path)
    runner = scripted_jobs.runner([
        plan_entry(subtask("s1", "a", depends_on=["s2"]), subtask("s2", "b", depends_on=["s1"])),
        {**plan_entry(subtask("s1", "shout")), "match": {"role": "planner", "last_message_contains": "cycle"}},
        coder("s1", call("edit_file", path="greeting.py", old="hello", new="HELLO"), call("submit", summary="ok")),
        approve("s1"),
    ])
    job = runner.run(runner.submit(Task(instruction="shout", repo=str(repo))).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    refused = next(e.payload for e in runner.events(job.id)
                   if e.kind == "agent.tool_result" and e.role == "planner")
    assert refused["ok"] is False and "dependencies form a cycle: " in refused["output"]


def test_a_failed_subtask_is_retried_alone(tmp_path: Path, scripted_jobs: ScriptedJobs) -> None:
    repo = _one_file_repo(tmp_path)
    refuse = {"match": {"role": "reviewer", "any_message_contains": "Subtask: s2"},
              "tool_calls": [call("submit_review", decision="request_changes", summary="no", comments=["redo"])]}
    runner = scripted_jobs.runner([
        plan_entry(subtask("s1", "one"), subtask("s2", "two"), subtask("s3", "three", depends_on=["s2"])),
        coder("s1", call("create_file", path="one.txt", content="1"), call("submit", summary="1")),
        approve("s1"),
        *[coder("s2", call("create_file", path="two.txt", content="2"), call("submit", summary="2")), refuse] * 3,
    ])
    job = runner.run(runner.submit(Task(instruction="three files", repo=str(repo))).id)
    assert job.status == JobStatus.PARTIAL  # s1 merged and breaks nothing; s2 and s3 failed
    assert {s.id: s.status for s in runner.report(job.id).subtasks} == {"s1": "merged", "s2": "failed",
                                                                        "s3": "failed"}
    scripted_jobs.server.reset([
        coder("s2", call("create_file", path="two.txt", content="2"), call("submit", summary="2")), approve("s2"),
        coder("s3", call("create_file", path="three.txt", content="3"), call("submit", summary="3")), approve("s3"),
    ])
    job = runner.retry(job.id, ["s2"])  # s3, held back by s2's failure, goes along
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert git(repo, "show", f"shipyard/{job.id}--s2-try1:two.txt") == "2"  # the failed attempt is kept
    assert scripted_jobs.server.pending == []
    assert not [r for r in scripted_jobs.server.requests if r.role == "planner" or "subtask: s1" in str(r.body)]
    assert sorted(git(repo, "ls-tree", "--name-only", f"shipyard/{job.id}").split()) == [
        "greeting.py", "one.txt", "tests", "three.txt", "two.txt"]
