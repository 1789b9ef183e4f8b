"""Long runs on real endpoints, over HTTP: every request of a job fits the model's window, whether the
server states it or a default applies; requests keep a stable prefix for prompt caches; cached tokens
are booked, priced and shown in the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import ScriptedJobs, approve, call, coder, make_repo, plan_entry, subtask
from long_reads import FIX, SUMMARY, TASK, TEST_COMMAND, WINDOW, repo_files, script
from rich.console import Console

from agents.models import ModelSpec
from agents.scripted_model import ScriptedModelServer
from orchestrator.apps.cli.render import report_view
from orchestrator.apps.demo import demo_settings
from orchestrator.config.settings import ContextSettings
from orchestrator.runtime.director import Director
from orchestrator.store.events import AgentCondensed
from orchestrator.store.jobs import JobStatus, Task

pytestmark = pytest.mark.bubblewrap


@pytest.mark.parametrize("window", ["reported by the server", "the configured default"])
def test_a_job_whose_coder_reads_more_than_the_window_stays_within_it(
        tmp_path: Path, scripted_jobs: ScriptedJobs, window: str) -> None:
    repo = make_repo(tmp_path / "repo", repo_files())
    if window == "reported by the server":  # as vLLM does, with the model in /v1/models
        served = {"kind": "vllm", "context_window": WINDOW, "models": ["scripted-demo"]}  # demo_settings' model
        runner = scripted_jobs.runner(script(server=served))
    else:  # an OpenAI-like server says nothing
        runner = scripted_jobs.runner(script(), context=ContextSettings(default_window=WINDOW))

    job = runner.run(runner.submit(Task(instruction=TASK, repo=str(repo), test_command=TEST_COMMAND)).id)

    assert job.status == JobStatus.SUCCEEDED, job.error
    assert FIX in runner.diff(job.id)
    requests = scripted_jobs.server.requests
    assert all(r.status == 200 for r in requests), [(r.seq, r.status) for r in requests if r.status != 200]
    assert max(r.tokens or 0 for r in requests) <= WINDOW
    condensed = [e for e in runner.events(job.id) if isinstance(e, AgentCondensed)]
    assert condensed and {e.agent for e in condensed} == {"s1.coder.1"}
    assert all(e.window == WINDOW and e.tokens_after < e.tokens_before and e.summary == SUMMARY for e in condensed)


USAGE = {"prompt_tokens": 3000, "completion_tokens": 100, "cached_tokens": 2500}


def _with_usage(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "usage": USAGE}


def test_requests_keep_a_stable_prefix_and_cached_tokens_are_priced_and_reported(
        tmp_path: Path, sandbox_backend: str) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    entries = [
        plan_entry(subtask("s1", "one"), subtask("s2", "two")),
        coder("s1", call("view_file", path="a.txt")),
        coder("s1", call("create_file", path="one.txt", content="1\n"), call("submit", summary="one")),
        coder("s2", call("view_file", path="a.txt")),
        coder("s2", call("create_file", path="two.txt", content="2\n"), call("submit", summary="two")),
        approve("s1"),
        approve("s2"),
    ]
    with ScriptedModelServer([_with_usage(e) for e in entries]) as server:
        priced = ModelSpec(base_url=server.base_url, model="priced", input_price=2.0, output_price=8.0,
                           cached_input_price=0.5)
        settings = demo_settings(tmp_path, server.base_url, sandbox_backend)
        runner = Director(settings.model_copy(update={"models": {"default": priced}}))
        job = runner.run(runner.submit(Task(instruction="one and two", repo=str(repo))).id)
        requests = server.requests

    assert job.status == JobStatus.UNVERIFIED, job.error  # the repo has no tests
    coders = [r for r in requests if r.role == "coder"]
    first, second = ([r for r in coders if f"Your subtask: {s}" in r.messages[1]["content"]] for s in ("s1", "s2"))
    # What prefix caches key on: the system prompt and the tools come first and are the same for every coder,
    # whatever its task; each request of an agent starts with the whole of its previous one.
    assert first[0].messages[0] == second[0].messages[0] and first[0].body["tools"] == second[0].body["tools"]
    for one, two in (first, second):
        assert two.messages[: len(one.messages)] == one.messages and two.body["tools"] == one.body["tools"]

    report = runner.report(job.id)
    calls = len(requests)
    assert report.total.cached_input_tokens == calls * USAGE["cached_tokens"]
    uncached = USAGE["prompt_tokens"] - USAGE["cached_tokens"]
    per_call = (uncached * 2.0 + USAGE["cached_tokens"] * 0.5 + USAGE["completion_tokens"] * 8.0) / 1_000_000
    assert report.total.cost == pytest.approx(calls * per_call)
    coder_s1 = next(a for a in report.agents if a.agent == "s1.coder.1")
    assert coder_s1.cached_tokens == 2 * USAGE["cached_tokens"]
    console = Console(record=True, width=160)
    console.print(report_view(report))
    shown = console.export_text()
    assert f"({calls * USAGE['cached_tokens']} of them cached)" in shown
    assert any("s1.coder.1" in line and " 5000 " in line for line in shown.splitlines())
