"""A coder that reads far more than its window holds still finishes: the agent loop, a real sandbox,
and a scripted model over HTTP that refuses any request longer than its context window."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from long_reads import BUG, BUGGY, CONDENSER, FIX, SUMMARY, TASK, WINDOW, module, thinking
from long_reads import MODULES as FILES

from agents.context import ContextWindow
from agents.loop import AgentLimits, run_agent
from agents.models import ModelClient, ModelSpec
from agents.prompts import render
from agents.tools import Toolset
from sandboxes.base import WORKSPACE_MOUNT, Sandbox, SandboxSpec
from sandboxes.local import LocalBackend


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    for n in range(FILES):
        (tmp_path / f"f{n:02}.py").write_text(module(n))
    return tmp_path


@pytest.fixture
def sandbox(workspace: Path) -> Iterator[Sandbox]:
    box = LocalBackend().start(SandboxSpec(workspace=workspace))
    try:
        yield box
    finally:
        box.stop()


def coder_script() -> dict[str, Any]:
    """A model that reads every file, thinking aloud as real models do, then fixes the wrong one and submits."""
    steps: list[dict[str, Any]] = [
        {
            "match": {"role": "coder"},
            "content": thinking(f"f{n - 1:02}.py" if n else None, f"f{n:02}.py"),
            "tool_calls": [{"name": "view_file", "arguments": {"path": f"f{n:02}.py"}}],
        }
        for n in range(FILES)
    ]
    steps += [
        {
            "match": {"role": "coder"},
            "content": f"f{BUGGY:02}.py rounds to one decimal.",
            "tool_calls": [{"name": "edit_file", "arguments": {"path": f"f{BUGGY:02}.py", "old": BUG, "new": FIX}}],
        },
        {
            "match": {"role": "coder"},
            "tool_calls": [{"name": "submit", "arguments": {"summary": "the rounding is fixed"}}],
        },
    ]
    # First, so that a summary request takes it and no other entry; the agent's requests never match it.
    summaries = {"match": {"any_message_contains": CONDENSER}, "content": SUMMARY, "repeat": True}
    return {"context_window": WINDOW, "responses": [summaries, *steps]}


class Recorder:
    """The agent's steps, as (kind, data) pairs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def message(self, step: int, reply: Any, usage: Any) -> None:
        self.events.append(("agent.message", {"step": step}))

    def tool_result(self, step: int, observation: Any, arguments: Any) -> None:
        self.events.append(("agent.tool_result", {"step": step, "output": observation.text}))

    def condensed(self, step: int, condensation: Any) -> None:
        self.events.append(("agent.condensed", {"step": step, **condensation.model_dump()}))

    def finished(self, outcome: Any) -> None:
        self.events.append(("agent.finished", {"status": outcome.status, "steps": outcome.steps}))


def run(server: Any, sandbox: Sandbox, context: ContextWindow | None) -> tuple[Any, list[tuple[str, dict]]]:
    model = ModelClient(ModelSpec(base_url=server.base_url, model="scripted", max_retries=0), role="coder")
    recorder = Recorder()
    outcome = run_agent(
        model,
        Toolset(sandbox),
        render("coder", workspace=WORKSPACE_MOUNT, network=False),
        TASK,
        AgentLimits(),
        observer=recorder,
        context=context,
    )
    return outcome, recorder.events


def assert_saw_every_file(requests: list[Any]) -> None:
    """Every request of the agent kept the task, and the latest observation is sent whole: the
    model saw each file it asked for."""
    answered = [r for r in requests if r.status == 200 and CONDENSER not in str(r.messages)]
    assert len(answered) == FILES + 2
    assert all(r.messages[1] == {"role": "user", "content": TASK} for r in answered)
    for n, request in enumerate(answered[1 : FILES + 1]):
        assert request.messages[-1]["role"] == "tool" and f'"""Ledger {n}: rates' in request.messages[-1]["content"]


def test_a_coder_reading_more_than_its_window_finishes_within_it(scripted, sandbox, workspace):
    server = scripted(coder_script())

    outcome, events = run(server, sandbox, ContextWindow(WINDOW))

    assert outcome.submitted, outcome.reason
    assert FIX in (workspace / f"f{BUGGY:02}.py").read_text()
    requests = server.requests
    assert all(r.status == 200 for r in requests), [(r.seq, r.status) for r in requests if r.status != 200]
    assert max(r.tokens for r in requests) <= WINDOW
    # More was read than the window holds: the conversation had to be cut down to fit.
    assert sum(len(e[1]["output"]) for e in events if e[0] == "agent.tool_result") > WINDOW * 4
    condensed = [payload for kind, payload in events if kind == "agent.condensed"]
    assert condensed and all(c["tokens_after"] < c["tokens_before"] for c in condensed)
    assert all(c["reason"] == "window" and c["summary"] == SUMMARY for c in condensed)
    assert sum(CONDENSER in str(r.messages) for r in requests) == len(condensed)
    assert_saw_every_file(requests)


class ListRecorder(list):
    """An observer that is a list of what it saw: empty, and so falsy, when the run starts."""

    def message(self, step: int, reply: Any, usage: Any) -> None:
        self.append("message")

    def tool_result(self, step: int, observation: Any, arguments: Any) -> None:
        self.append("tool_result")

    def condensed(self, step: int, condensation: Any) -> None:
        self.append("condensed")

    def finished(self, outcome: Any) -> None:
        self.append("finished")


def test_an_observer_empty_at_the_start_still_sees_every_step(scripted, sandbox):
    server = scripted(coder_script())
    model = ModelClient(ModelSpec(base_url=server.base_url, model="scripted", max_retries=0), role="coder")
    seen = ListRecorder()
    outcome = run_agent(model, Toolset(sandbox), render("coder", workspace=WORKSPACE_MOUNT, network=False), TASK,
                        AgentLimits(), observer=seen, context=ContextWindow(WINDOW))
    assert outcome.submitted
    assert seen.count("message") == outcome.steps and "condensed" in seen and seen[-1] == "finished"


def test_without_context_management_the_same_run_ends_on_the_window(scripted, sandbox):
    server = scripted(coder_script())

    outcome, _ = run(server, sandbox, None)

    assert outcome.status == "error" and "exceeds the model's context window" in outcome.reason
    assert server.requests[-1].status == 400 and server.requests[-1].tokens > WINDOW


def test_an_endpoint_with_a_smaller_window_than_believed_is_believed_after_one_refusal(scripted, sandbox, workspace):
    server = scripted(coder_script())

    outcome, events = run(server, sandbox, ContextWindow(WINDOW * 2))

    assert outcome.submitted, outcome.reason
    assert FIX in (workspace / f"f{BUGGY:02}.py").read_text()
    refused = [r for r in server.requests if r.status != 200]
    assert len(refused) == 1 and refused[0].status == 400  # then the stated window is used
    assert all(r.tokens <= WINDOW for r in server.requests if r.status == 200)
    condensed = [payload for kind, payload in events if kind == "agent.condensed"]
    assert condensed[0]["reason"] == "overflow" and condensed[0]["window"] == WINDOW
    assert_saw_every_file(server.requests)
    assert [e for e in events if e[0] == "agent.finished"][0][1]["steps"] == FILES + 2  # the refusal cost no step
