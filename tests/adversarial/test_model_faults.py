"""Model faults, served by the scripted model over real HTTP: retried, or reported to the agent; the
job never crashes, budgets hold, and a job that cannot go on stops with its reason and its work saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import call, git, make_repo
from kit import branches, one_subtask_script, require_backend, scripted_job, work_lost

from orchestrator.store.jobs import JobStatus

pytestmark = pytest.mark.bubblewrap

CODER = {"role": "coder"}


def _repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"README.md": "# project\n"})


def test_a_coder_weathering_every_transient_fault_finishes_the_job(tmp_path: Path) -> None:
    backend = require_backend("bubblewrap")
    step = {"match": CODER, "tool_calls": [call("run_command", command="echo step")]}
    faults: list[dict[str, Any]] = [
        # Retried by the client, each followed by the answer that gets through.
        {"match": CODER, "status": 429, "retry_after": 0.1, "message": "Rate limit reached"},
        {"match": CODER, "status": 429, "retry_after": 0.1, "message": "Rate limit reached"},
        step,
        {"match": CODER, "status": 500, "message": "internal error"},
        step,
        {"match": CODER, "content": "far too late", "latency": 2.5},  # past the client's 1 s timeout
        step,
        {"match": CODER, "body": '{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "mess'},
        step,
        # Reported to the agent, which goes on.
        {"match": CODER, "tool_calls": [{"name": "create_file", "arguments": '{"path": "a.txt", "content": '}]},
        {"match": CODER, "tool_calls": [call("rm_rf_everything", path="/")]},
        {"match": CODER, "content": ""},
    ]
    script = one_subtask_script(call("create_file", path="NOTE.md", content="done\n"), coder_extra=faults)
    with scripted_job(tmp_path, _repo(tmp_path), script, backend, model_timeout=1.0, max_retries=2,
                      test_command="test -f NOTE.md") as job:
        done = job.runner.run(job.submit().id)
        assert done.status == JobStatus.SUCCEEDED, done.error
        statuses = [r.status for r in job.server.requests if r.role == "coder"]
        assert statuses[:4] == [429, 429, 200, 500], statuses
        assert job.server.pending == []
        results = [e.payload for e in job.events(done.id, "agent.tool_result") if e.role == "coder"]
    # The malformed calls were told to the agent, which went on.
    assert [r["ok"] for r in results] == [True] * 4 + [False, False, True, True], results
    assert "not valid JSON" in results[4]["output"]
    assert "unknown tool 'rm_rf_everything'" in results[5]["output"]
    nudged = [e for e in job.events(done.id, "agent.message") if e.role == "coder" and not e.payload["tool_calls"]]
    assert len(nudged) == 1  # the empty answer, after which the agent was reminded to call a tool


def test_a_context_overflow_stops_its_subtask_with_the_reason_and_keeps_the_rest(tmp_path: Path) -> None:
    backend = require_backend("bubblewrap")
    repo = _repo(tmp_path)
    script = [
        {"match": {"role": "planner"}, "tool_calls": [call("submit_plan", summary="Two.", subtasks=[
            {"id": "s1", "title": "first", "instructions": "Write ONE.md"},
            {"id": "s2", "title": "second", "instructions": "Write TWO.md"}])]},
        {"match": {"role": "coder", "any_message_contains": "Your subtask: s1"},
         "tool_calls": [call("create_file", path="ONE.md", content="1\n"), call("submit", summary="one")]},
        {"match": {"role": "coder", "any_message_contains": "Your subtask: s2"}, "status": 400,
         "code": "context_length_exceeded",
         "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000."},
        {"match": {"role": "reviewer"}, "repeat": True,
         "tool_calls": [call("submit_review", decision="approve", summary="ok")]},
    ]
    with scripted_job(tmp_path, repo, script, backend, test_command="true") as job:
        done = job.runner.run(job.submit().id)
        assert done.status == JobStatus.PARTIAL  # s1 merged, s2 stopped
        assert "s2 failed" in done.error and "context window" in done.error, done.error
        assert work_lost(job.runner, repo, done.id) == []
        finished = [e for e in job.events(done.id, "agent.finished") if e.agent == "s2.coder.1"]
    assert finished and finished[0].payload["status"] == "error"
    # What could be done was done and kept: s1 is merged into the job branch.
    assert git(repo, "show", f"shipyard/{done.id}:ONE.md") == "1\n"
    assert f"shipyard/{done.id}--s2" in branches(repo)


@pytest.mark.parametrize("role", ["planner", "coder"])
def test_a_model_that_stays_down_fails_the_job_cleanly(tmp_path: Path, role: str) -> None:
    backend = require_backend("bubblewrap")
    repo = _repo(tmp_path)
    down = {"match": {"role": role}, "status": 503, "retry_after": 0.05, "message": "overloaded", "repeat": True}
    script = [down, *one_subtask_script(call("create_file", path="NOTE.md", content="x\n"))]
    with scripted_job(tmp_path, repo, script, backend, max_retries=2) as job:
        done = job.runner.run(job.submit().id)  # returns: a dead model is not a crash
        assert done.status == JobStatus.FAILED
        assert f"the {role} model 'scripted'" in done.error and "unavailable: 503 overloaded" in done.error, done.error
        assert len([r for r in job.server.requests if r.role == role]) == 3  # one try and two retries
        kinds = [e.kind for e in job.events(done.id)]
        assert kinds[0] == "job.submitted" and kinds[-1] == "job.finished"
        assert job.events(done.id, "job.finished")[-1].payload["status"] == "failed"
        assert f"shipyard/{done.id}" in branches(repo)
        assert work_lost(job.runner, repo, done.id) == []


def test_budgets_hold_through_rate_limits_and_retries(tmp_path: Path) -> None:
    backend = require_backend("bubblewrap")
    usage = {"prompt_tokens": 1000, "completion_tokens": 0}  # $0.10 a call at $100 per million
    script = [
        {"match": {"role": "planner"}, "usage": usage, "tool_calls": [call(
            "submit_plan", summary="One.", subtasks=[{"id": "s1", "title": "loop", "instructions": "Loop."}])]},
        {"match": CODER, "status": 429, "retry_after": 0.05, "repeat": False},
        {"match": CODER, "usage": usage, "tool_calls": [call("run_command", command="echo again")]},
        {"match": CODER, "status": 429, "retry_after": 0.05},
        {"match": CODER, "usage": usage, "repeat": True, "tool_calls": [call("run_command", command="echo again")]},
    ]
    with scripted_job(tmp_path, _repo(tmp_path), script, backend,
                      model_fields={"input_price": 100.0, "output_price": 100.0}) as job:
        done = job.runner.run(job.submit(max_cost=0.35).id)
        assert done.status == JobStatus.FAILED
        assert "budget" in (done.error or ""), done.error
        report = job.runner.report(done.id)
        assert report is not None and report.stop_reason.startswith("job budget spent (")
        # Spent: the planner's call and the coder's until the cap was reached, never a call past it.
        assert report.total.cost == pytest.approx(0.4)
        billed = [r for r in job.server.requests if r.status == 200]
        assert len(billed) == 4, [(r.role, r.status) for r in job.server.requests]
