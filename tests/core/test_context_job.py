"""Every agent of a job works inside its model's context window: a coder that reads far more than its
window holds still finishes, each condensation is an event, and `shipyard logs` and the TUI show it."""

from __future__ import annotations

from pathlib import Path

from corekit import MakeDirector
from helpers import make_repo
from long_reads import CONDENSER, FIX, MODULES, SUMMARY, TASK, TEST_COMMAND, WINDOW, repo_files, script

from agents.models import ModelSpec
from orchestrator.apps.cli.render import event_line
from orchestrator.config.settings import ContextSettings
from orchestrator.store.events import AgentCondensed, AgentToolResult
from orchestrator.store.jobs import JobStatus, Task
from tui.logbook import event_lines


def test_a_coder_reading_more_than_its_window_finishes_within_it(tmp_path: Path, make_director: MakeDirector) -> None:
    repo = make_repo(tmp_path / "repo", repo_files())
    director, models = make_director(script())

    job = director.run(director.submit(Task(instruction=TASK, repo=str(repo), test_command=TEST_COMMAND)).id)

    assert job.status == JobStatus.SUCCEEDED, job.error
    assert FIX in director.diff(job.id)
    assert not any(a.refused for a in models.asked)
    assert max(a.tokens for a in models.asked) <= WINDOW
    events = director.events(job.id)
    coder = [e for e in events if e.agent == "s1.coder.1"]
    read = sum(len(e.output) for e in coder if isinstance(e, AgentToolResult) and e.tool == "view_file")
    assert read > 4 * WINDOW  # characters: several windows' worth of tokens
    condensed = [e for e in coder if isinstance(e, AgentCondensed)]
    assert condensed and all(e.tokens_after < e.tokens_before and e.window == WINDOW for e in condensed)
    assert all(e.summary == SUMMARY and e.reason == "window" for e in condensed)
    assert sum(CONDENSER in str(a.messages) for a in models.asked) == len(condensed)
    # The coder saw each module it asked for, whole, and the task was never dropped.
    own = [a for a in models.asked if a.agent == "s1.coder.1" and CONDENSER not in str(a.messages)]
    assert all(a.messages[1] == own[0].messages[1] for a in own)
    for n, asked in enumerate(own[1 : MODULES + 1]):
        assert asked.messages[-1]["role"] == "tool" and f'"""Ledger {n}: rates' in asked.messages[-1]["content"]
    for event in condensed:
        assert f"condensed to fit: {event.tokens_before:,} -> {event.tokens_after:,} tokens of a {WINDOW:,} window" \
            in event_line(event).plain
        (line,) = event_lines(event)
        assert "history condensed to fit" in "".join(text for text, _ in line)


def test_a_cheaper_summarizer_writes_the_summaries(tmp_path: Path, make_director: MakeDirector) -> None:
    repo = make_repo(tmp_path / "repo", repo_files())
    steps = script()
    # Only the summarizer's model gets summaries: were the coder's own model asked, nothing would answer it.
    steps["responses"][0]["match"]["model"] = "summarizer"
    summarizer = ModelSpec(base_url="http://fake.invalid/v1", model="summarizer")
    director, models = make_director(steps, context=ContextSettings(summarizer=summarizer))

    job = director.run(director.submit(Task(instruction=TASK, repo=str(repo), test_command=TEST_COMMAND)).id)

    assert job.status == JobStatus.SUCCEEDED, job.error
    summaries = [a for a in models.asked if CONDENSER in str(a.messages)]
    assert summaries and all(a.agent == "s1.coder.1" for a in summaries)  # booked as the coder's calls
    assert len([e for e in director.events(job.id) if isinstance(e, AgentCondensed)]) == len(summaries)
