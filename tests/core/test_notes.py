"""The director's notes reach every agent that starts after them, in every role, while the job runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corekit import MakeDirector
from helpers import approve, call, coder, make_repo, plan_entry, subtask

from agents.fake_model import FakeModels
from orchestrator.store.jobs import Task

NOTE = "Keep the messages in lower case."
TEST_A = "def test_a():\n    assert open('a.txt').read() == 'a\\n'\n"


class NoteWhileCoding(FakeModels):
    """Sends the director's note the moment s1's coder first asks its model: its prompt was made already."""

    director: Any = None
    job_id = ""

    def take(self, role: str, agent: str | None, model: str, wire: list[dict[str, Any]]) -> Any:
        if agent == "s1.coder.1" and not any(a.agent == agent for a in self.asked):
            self.director.note(self.job_id, NOTE)
        return super().take(role, agent, model, wire)


def test_a_note_sent_while_a_coder_runs_reaches_the_agents_that_start_after_it(
        tmp_path: Path, make_director: MakeDirector) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", "tests/test_a.py": TEST_A})
    models = NoteWhileCoding([
        plan_entry(subtask("s1", "one"), subtask("s2", "two", depends_on=["s1"])),
        coder("s1", call("create_file", path="one.txt", content="one\n"), call("submit", summary="one")),
        # s2's coder breaks test_a, so a test-fixer starts after the note as well.
        coder("s2", call("edit_file", path="a.txt", old="a", new="b"), call("submit", summary="two")),
        {"match": {"role": "test_fixer"}, "tool_calls": [call("edit_file", path="a.txt", old="b", new="a"),
                                                         call("submit", summary="a is a again")]},
        approve("s1"),
        approve("s2"),
    ])
    director, _ = make_director(None, models=models)
    job = director.submit(Task(instruction="two notes", repo=str(repo), test_command="python3 -m pytest -q"))
    models.director, models.job_id = director, job.id
    assert director.run(job.id).status.value == "succeeded"

    def prompt_of(agent: str) -> str:
        first = next(a for a in models.asked if a.agent == agent)
        return "\n".join(str(m.get("content")) for m in first.messages)

    assert NOTE not in prompt_of("s1.coder.1")  # it started before the note
    for agent in ("s1.reviewer.1", "s2.coder.1", "s2.test_fixer.1", "s2.reviewer.1"):
        assert f"# Notes from the director\n- {NOTE}" in prompt_of(agent), agent
