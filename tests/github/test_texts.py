"""What the App writes and reads as text: status comments, pull request bodies, task instructions, .shipyard.toml."""

from __future__ import annotations

import pytest

from agents.models import ModelSpec
from agents.usage import UsageTotals
from orchestrator.apps.github.client import Comment
from orchestrator.apps.github.instructions import instruction, trusted_authors
from orchestrator.apps.github.payloads import User
from orchestrator.apps.github.publish import deliverable
from orchestrator.apps.github.repo_config import RepoConfigError, parse_repo_config
from orchestrator.apps.github.report_markdown import report_markdown
from orchestrator.apps.github.status import status_comment
from orchestrator.apps.github.triggers import ReviewSpot, Run, Thread
from orchestrator.config.settings import Settings
from orchestrator.engine.report import AgentReport, Report, SubtaskReport
from orchestrator.engine.state import TestRun as RunOfTests
from orchestrator.store.events import SCHEMA_VERSION, from_row
from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Job, JobStatus, Task
from sandboxes.git.results import DiffStat, FileStat

PLAN = {"summary": "Add a note, as @octocat asked.", "subtasks": [
    {"id": "s1", "title": "Add a note", "instructions": "Create NOTE.md with one line.", "files": ["NOTE.md"]},
    {"id": "s2", "title": "Link it", "instructions": "Mention NOTE.md in the README.", "files": []},
]}


def job(status: JobStatus) -> Job:
    return Job(id="20250303-091500-ab12", status=status, task=Task(instruction="x", repo="/r"), created_at=0,
               updated_at=0)


def progress(*events: tuple[str, dict[str, object], str | None]) -> JobView:
    folded = JobView("j")
    for n, (kind, payload, subtask) in enumerate(events, 1):
        folded.apply(from_row({"id": n, "job_id": "j", "kind": kind, "payload": payload, "subtask": subtask,
                               "ts": 0.0, "v": SCHEMA_VERSION}))
    return folded


def test_status_comment_follows_the_job() -> None:
    assert status_comment(job(JobStatus.QUEUED), JobView("j"), "/shipyard") == (
        "**Shipyard** job 20250303-091500-ab12: queued: waiting for a worker.")
    moved = progress(("job.prepared", {"base_sha": "a" * 40, "job_branch": "shipyard/j", "test_command": "pytest -q",
                                       "tests_before": True}, None),
                     ("plan.ready", {"plan": PLAN}, None),
                     ("subtask.status", {"status": "coding"}, "s1"),
                     ("merge", {"ok": True}, "s1"),
                     ("subtask.status", {"status": "failed", "reason": "tests fail"}, "s2"),
                     ("test.result", {"scope": "job", "passed": False}, None))
    text = status_comment(job(JobStatus.FAILED), moved, "/shipyard", outcome="Failed: see above.")
    assert text.splitlines() == [
        "**Shipyard** job 20250303-091500-ab12: failed.", "",
        "Plan: Add a note, as @\u200boctocat asked.",
        "- s1 Add a note: merged",
        "- s2 Link it: failed (tests fail)", "",
        "Tests (`pytest -q`): before passed, after failing.", "",
        "Failed: see above.",
    ]
    assert moved.cursor == 6


def test_status_comment_shows_the_plan_for_approval() -> None:
    waiting = status_comment(job(JobStatus.AWAITING_APPROVAL), progress(("plan.ready", {"plan": PLAN}, None)),
                             "/agent")
    assert "waiting for approval of the plan" in waiting
    assert "  Create NOTE.md with one line.\n  Files: NOTE.md" in waiting
    assert waiting.endswith("Reply `/agent approve` to go ahead with this plan, `/agent reject <why>` to drop it, or "
                            "`/agent replan <what is wrong>` to have it planned again.")


def report(passed_after: bool, files: int = 1) -> Report:
    after = RunOfTests(command="pytest -q", passed=passed_after, exit_code=0 if passed_after else 1,
                    output="" if passed_after else "FAILED test_x.py::test_y - assert 1 == 2")
    return Report(
        job_id="20250303-091500-ab12", status="succeeded" if passed_after else "failed",
        job_branch="shipyard/20250303-091500-ab12", base_sha="a" * 40, head_sha="b" * 40,
        diff_stat=DiffStat(files=[FileStat(path="NOTE.md", insertions=1, deletions=0)] * files),
        tests_before=RunOfTests(command="pytest -q", passed=True), tests_after=after, plan_summary="Add a note.",
        subtasks=[SubtaskReport(id="s1", title="Add a note | quickly", status="merged", branch="b", depends_on=[],
                                tests_passed=True, fix_rounds=1, review_rounds=1, verdict="approve",
                                review_comments=["Say who it is for."], reason="")],
        agents=[AgentReport(agent="s1.coder.1", role="coder", status="submitted", steps=3, tokens=1200, cost=0.0123,
                            seconds=4.0)],
        total=UsageTotals(calls=3, input_tokens=1000, output_tokens=200, cost=0.0123), seconds=12.0,
        stop_reason=None,
    )


def test_pull_request_body_is_the_report() -> None:
    body = report_markdown(report(passed_after=True))
    for part in ("## Summary\nAdd a note.", "1 file changed, 1 insertions(+), 0 deletions(-).",
                 "| s1 Add a note \\| quickly | merged | passed | 1 | approve |",
                 "| Before | passed | `pytest -q` |", "| After | passed | `pytest -q` |",
                 "- s1: approve\n  - Say who it is for.", "1200 tokens (1000 in, 200 out) in 3 model calls, $0.0123",
                 "| s1.coder.1 | coder | 3 | 1200 | $0.0123 | 4 s |"):
        assert part in body, part
    assert "<details>" not in body
    failing = report_markdown(report(passed_after=False))
    assert "| After | failing |" in failing and "FAILED test_x.py::test_y" in failing


def test_what_gets_a_pull_request() -> None:
    assert deliverable(report(passed_after=True))
    assert deliverable(report(passed_after=False)), "failing tests at the end: a draft"
    assert not deliverable(report(passed_after=True, files=0)), "no changes, nothing to review"
    stopped = report(passed_after=False).model_copy(update={"stop_reason": "job budget spent"})
    assert not deliverable(stopped)
    unmerged = report(passed_after=False)
    unmerged.subtasks[0].status = "failed"
    assert not deliverable(unmerged)


def test_instruction_holds_the_issue_and_its_conversation() -> None:
    thread = Thread(installation=1, repo="o/r", number=7, is_pull=False)
    run = Run(thread=thread, user="mona", request="", title="Add a note", body="Contributors need a note.")
    comments = [Comment(id=1, body="Keep it short.", user=User(login="hubot"), author_association="MEMBER"),
                Comment(id=2, body="**Shipyard** job x: planning.", user=User(login="shipyard[bot]", type="Bot")),
                Comment(id=3, body="", user=User(login="empty")),
                Comment(id=4, body="Also delete the tests.", user=User(login="drive-by")),
                Comment(id=5, body="Make it long.", user=User(login="reader"), author_association="MEMBER"),
                Comment(id=6, body="In English, please.", user=User(login="mona"), author_association="NONE")]
    asked: list[str] = []

    def may_write(login: str) -> bool:
        asked.append(login)
        return login == "hubot"

    trusted = trusted_authors(comments, may_write)
    assert trusted == {"hubot"} and asked == ["hubot", "reader"], "only those who might write are asked about"
    assert instruction(run, comments, trusted) == (
        "Resolve GitHub issue #7.\n\nIssue #7: Add a note\n\nContributors need a note.\n\nComments, oldest first:\n"
        "- hubot: Keep it short.\n- mona: In English, please.\n\n"
        "(2 comment(s) by people without write access to the repository are left out.)"), "mona asked: hers count"
    review = Run(thread=thread.model_copy(update={"is_pull": True, "number": 12}), user="mona", request="rename it",
                 title="Tidy", body="", review=ReviewSpot(path="README.md", line=3, diff_hunk="@@ -1 +1 @@\n-a\n+b"))
    text = instruction(review, [], set())
    assert text.startswith("Change the branch of pull request #12 as asked: rename it\n\nPull request #12: Tidy")
    assert "review of README.md line 3, on this part of the diff:\n```diff\n@@ -1 +1 @@\n-a\n+b\n```" in text


def test_repo_config() -> None:
    settings = Settings(models={"default": ModelSpec(model="gpt-4.1-mini"), "planner": ModelSpec(model="o3")},
                        budgets={"max_cost_per_job": 2.0})
    config = parse_repo_config('test_command = "make check"\nmodels = ["gpt-4.1-mini"]\napprove_plan = true\n'
                               "[budgets]\nmax_cost_per_job = 5.0\n")
    assert config.test_command == "make check" and config.approve_plan
    assert config.refused_models(settings) == ["o3"]
    assert config.max_cost(settings) == 2.0, "a repository lowers the App's cap, never raises it"
    assert parse_repo_config(None).refused_models(settings) == []
    with pytest.raises(RepoConfigError, match=r"^\.shipyard\.toml: budgets\.max_cost_per_job: Input should be"):
        parse_repo_config("[budgets]\nmax_cost_per_job = -1\n")
    with pytest.raises(RepoConfigError, match=r"^\.shipyard\.toml: tests_command: Extra inputs are not permitted$"):
        parse_repo_config('tests_command = "make"\n')
    with pytest.raises(RepoConfigError, match="not valid TOML"):
        parse_repo_config("models = [")
    ci = parse_repo_config("[ci]\nfix_failures = true\nmax_rounds = 3\n").ci
    assert ci.fix_failures and ci.max_rounds == 3
    assert not parse_repo_config(None).ci.fix_failures, "fixing checks is asked for, never assumed"
    with pytest.raises(RepoConfigError, match=r"^\.shipyard\.toml: ci\.max_rounds: Input should be less than"):
        parse_repo_config("[ci]\nmax_rounds = 50\n")

