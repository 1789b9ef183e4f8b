"""Verification in whole jobs: a baseline with per-test results, pre-existing failures named and never
chased, tampering that fails a subtask, a submission without a change, a repo without tests, the
repository's instructions for every role. Real git and real pytest runs, in local sandboxes."""

from __future__ import annotations

import io
from pathlib import Path

import realrepos
from corekit import MakeDirector
from helpers import approve, call, coder, plan_entry, subtask
from rich.console import Console, RenderableType

from agents.fake_model import FakeModels
from agents.test_discovery import TestCommand, describe_test_command
from orchestrator.apps.cli.render import report_view
from orchestrator.apps.github.report_markdown import report_markdown
from orchestrator.engine.test_comparison import compare_runs
from orchestrator.engine.test_results import run_suite
from orchestrator.runtime.director import Director
from orchestrator.store.events import RepoInstructionsRead, TestBaseline, TestCommandChosen
from orchestrator.store.jobs import JobStatus, Task
from sandboxes.base import SandboxSpec
from sandboxes.local import LocalBackend

REMOTE = "tests/test_remote.py::test_auth_header"
CHARTS = "tests/test_charts.py"
SMOKE = "PYTHONPATH=. python3 checks/smoke.py"


def prompt_of(models: FakeModels, agent: str) -> str:
    first = next(a for a in models.asked if a.agent == agent)
    return "\n".join(str(m.get("content")) for m in first.messages)


def rendered(renderable: RenderableType) -> str:
    console = Console(width=240, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_a_suite_failing_at_base_gets_its_fix_and_its_failures_are_named_not_chased(
        tmp_path: Path, make_director: MakeDirector) -> None:
    repo = realrepos.failing_baseline_repo(tmp_path / "weather")
    director, models = make_director(realrepos.add_kelvin_script(repo))
    job = director.run(director.submit(Task(instruction="add kelvin", repo=str(repo), base="main")).id)

    assert job.status == JobStatus.SUCCEEDED, job.error
    report = director.report(job.id)
    assert REMOTE in report.pre_existing_failures and CHARTS in report.pre_existing_failures
    assert report.tests_after is not None and report.tests_after.comparison is not None
    assert report.tests_after.comparison.verdict == "passed"
    assert realrepos.KELVIN_TARGET in report.tests_after.comparison.new_passing
    # The failures that were there are named to the test-fixer and the reviewer, and were not chased.
    fixer = prompt_of(models, "s1.test_fixer.1")
    assert "already failed before this work" in fixer and REMOTE in fixer
    assert "1 targeted test does not pass" in fixer
    reviewer = prompt_of(models, "s1.reviewer.1")
    assert "already there at base and are not yours to fix" in reviewer and REMOTE in reviewer
    assert [a.agent for a in models.asked if a.role == "test_fixer"] == ["s1.test_fixer.1"]
    # ... in the report, `shipyard show` and the pull request's body.
    assert REMOTE in rendered(report_view(report)) and "failing at base" in rendered(report_view(report))
    body = report_markdown(report)
    assert "Failing before this change" in body and REMOTE in body
    # No test that passed at base fails on the job branch: checked here with a run of our own.
    backend = LocalBackend()
    with backend.start(SandboxSpec(workspace=_checkout(repo, "main", tmp_path / "base"))) as sandbox:
        base = run_suite(sandbox, _command(director, job.id), "check")
    with backend.start(SandboxSpec(workspace=_checkout(repo, f"shipyard/{job.id}", tmp_path / "after"))) as sandbox:
        after = run_suite(sandbox, _command(director, job.id), "check")
    assert base.per_test and after.per_test and base.with_outcome("failed", "error")
    assert compare_runs(base, after).newly_failing == []
    assert after.outcomes[realrepos.KELVIN_TARGET] == "passed"


def _checkout(repo: Path, ref: str, where: Path) -> Path:
    realrepos.git(repo, "worktree", "add", "-q", "--detach", str(where), ref)
    return where


def _command(director: Director, job_id: str) -> TestCommand:
    chosen = [e for e in director.events(job_id) if isinstance(e, TestCommandChosen)][-1]
    assert chosen.command is not None
    return describe_test_command(chosen.command, "the job's")


def test_a_change_that_deletes_or_skips_tests_is_flagged_and_fails(
        tmp_path: Path, make_director: MakeDirector) -> None:
    repo = realrepos.failing_baseline_repo(tmp_path / "weather")
    skipped = (repo / "tests/test_units.py").read_text().replace(
        "def test_f_to_c():", "@pytest.mark.skip(reason='flaky')\ndef test_f_to_c():")
    director, models = make_director([
        plan_entry(subtask("s1", "tidy the units")),
        {**coder("s1", call("create_file", path="tests/test_units.py", content=skipped),
                 call("run_command", command="rm tests/test_remote.py"), call("submit", summary="tidied")),
         "repeat": True},
        {"match": {"role": "reviewer"}, "repeat": True,
         "tool_calls": [call("submit_review", decision="approve", summary="fine")]},
    ])
    job = director.run(director.submit(Task(instruction="tidy", repo=str(repo), base="main")).id)

    assert job.status == JobStatus.FAILED
    (sub,) = director.report(job.id).subtasks
    assert sub.status == "failed" and sub.reason.startswith("tests removed or skipped without the subtask asking")
    reviewer = prompt_of(models, "s1.reviewer.1")
    assert "Possible test tampering" in reviewer and "tests/test_remote.py" in reviewer and "skip added" in reviewer
    # The coder is sent back with the findings, however the reviewer judged.
    assert "Restore those tests" in prompt_of(models, "s1.coder.2")
    assert "tests removed or skipped" in (job.error or "")


def test_a_subtask_that_asks_for_a_test_to_go_may_remove_it(tmp_path: Path, make_director: MakeDirector) -> None:
    repo = realrepos.failing_baseline_repo(tmp_path / "weather")
    director, models = make_director([
        plan_entry({"id": "s1", "title": "retire the remote API", "depends_on": [],
                    "instructions": "Remove weather/remote.py and delete its test, tests/test_remote.py."}),
        coder("s1", call("run_command", command="rm weather/remote.py tests/test_remote.py"),
              call("submit", summary="removed")),
        approve("s1"),
    ])
    job = director.run(director.submit(Task(instruction="retire remote", repo=str(repo), base="main")).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert "Possible test tampering" in prompt_of(models, "s1.reviewer.1")  # still flagged to the reviewer


def test_a_submission_without_a_change_fails_unless_none_is_needed_and_the_reviewer_agrees(
        tmp_path: Path, make_director: MakeDirector) -> None:
    repo = realrepos.package_tests_repo(tmp_path / "shop")
    director, models = make_director([
        plan_entry(subtask("s1", "add a discount")),
        coder("s1", call("submit", summary="done")),
    ])
    job = director.run(director.submit(Task(instruction="discount", repo=str(repo), base="main")).id)
    assert job.status == JobStatus.FAILED
    assert director.report(job.id).subtasks[0].reason == "no change made (the coder said: done)"
    assert "s1.reviewer.1" not in {a.agent for a in models.asked}

    director, models = make_director([
        plan_entry(subtask("s1", "make total sum the prices")),
        coder("s1", call("submit", summary="Cart.total already sums price times quantity", no_change_needed=True)),
        approve("s1"),
    ])
    job = director.run(director.submit(Task(instruction="totals", repo=str(repo), base="main")).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    reviewer = prompt_of(models, "s1.reviewer.1")
    assert "# The coder changed nothing" in reviewer and "already sums" in reviewer


def test_tests_in_a_package_subfolder_are_found_and_verify_the_job(
        tmp_path: Path, make_director: MakeDirector) -> None:
    repo = realrepos.package_tests_repo(tmp_path / "shop")
    director, _ = make_director(realrepos.add_cart_clear())
    job = director.run(director.submit(Task(instruction="clear", repo=str(repo), base="main")).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    events = director.events(job.id)
    (chosen,) = [e for e in events if isinstance(e, TestCommandChosen)]
    assert chosen.command == "python3 -m pytest" and chosen.origin == "discovered"
    assert any("shop/tests/test_cart.py" in line for line in chosen.evidence)
    (baseline,) = [e for e in events if isinstance(e, TestBaseline)]
    assert baseline.counts == {"passed": 2} and baseline.failing == []


def test_a_repo_without_tests_succeeds_unverified_and_the_reviewer_is_told_no_tests_ran(
        tmp_path: Path, make_director: MakeDirector) -> None:
    repo = realrepos.no_tests_repo(tmp_path / "tool")
    director, models = make_director([
        plan_entry(subtask("s1", "greet by name")),
        coder("s1", call("edit_file", path="tool/cli.py", old="print('hello')", new="print('hello, world')"),
              call("submit", summary="greets")),
        approve("s1"),
    ])
    job = director.run(director.submit(Task(instruction="greet", repo=str(repo), base="main")).id)
    assert job.status == JobStatus.UNVERIFIED and job.status.label == "succeeded, unverified"
    assert job.error is not None and "no tests" in job.error
    reviewer = prompt_of(models, "s1.reviewer.1")
    assert "no tests ran" in reviewer.lower() and "Tests: passed" not in reviewer
    assert director.report(job.id).status == "unverified"


def test_the_repository_instructions_reach_every_role_nested_ones_their_subtree(
        tmp_path: Path, make_director: MakeDirector) -> None:
    repo = realrepos.package_tests_repo(tmp_path / "shop")
    realrepos.write(repo, {"AGENTS.md": "# Agents\n\nRun the tests with `python3 -m pytest`.\n",
                           "shop/AGENTS.md": "Prices are integers of cents.\n",
                           "CONTRIBUTING.md": "# Contributing\n\n## Testing\n\nEvery change gets a test.\n\n"
                                              "## Style\n\nBlack.\n"})
    realrepos.commit_all(repo, "instructions")
    director, models = make_director(realrepos.add_cart_clear(files=["shop/cart.py"]))
    job = director.run(director.submit(Task(instruction="clear", repo=str(repo), base="main")).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    (read,) = [e for e in director.events(job.id) if isinstance(e, RepoInstructionsRead)]
    assert read.sources == ["CONTRIBUTING.md (Testing)", "AGENTS.md"] and read.elsewhere == ["shop/AGENTS.md"]
    planner = prompt_of(models, "planner")
    assert "Run the tests with" in planner and "Every change gets a test" in planner and "Black" not in planner
    assert "integers of cents" not in planner  # the nested one is for work under shop/
    for agent in ("s1.coder.1", "s1.reviewer.1"):
        prompt = prompt_of(models, agent)
        assert "Run the tests with" in prompt and "integers of cents" in prompt, agent
    assert director.report(job.id).instructions == ["CONTRIBUTING.md (Testing)", "AGENTS.md"]


def test_the_planner_may_refine_the_test_command_and_the_baseline_is_run_with_it(
        tmp_path: Path, make_director: MakeDirector) -> None:
    repo = realrepos.no_tests_repo(tmp_path / "tool")
    realrepos.write(repo, {"checks/smoke.py": "from tool.cli import main\n\nmain()\n"})
    realrepos.commit_all(repo, "a smoke check discovery cannot know of")
    plan = plan_entry(subtask("s1", "greet the world"))
    plan["tool_calls"][0]["arguments"]["test_command"] = SMOKE
    director, models = make_director(realrepos.greet_the_world(plan))
    job = director.run(director.submit(Task(instruction="greet", repo=str(repo), base="main")).id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    chosen = [e for e in director.events(job.id) if isinstance(e, TestCommandChosen)]
    assert [(e.origin, e.command) for e in chosen] == [("none", None), ("planner", SMOKE)]
    baselines = [e for e in director.events(job.id) if isinstance(e, TestBaseline)]
    assert [b.exit_code for b in baselines] == [None, 0]
    assert f"Test command: {SMOKE}" in prompt_of(models, "s1.coder.1")
    assert director.report(job.id).test_command == SMOKE
