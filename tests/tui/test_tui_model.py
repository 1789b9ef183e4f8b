"""What the TUI makes of the event stream, without a screen: the fold, the bounded logs, the diff."""

from __future__ import annotations

from typing import Any

from orchestrator.store.events import SCHEMA_VERSION, Event, UnknownEvent, from_row
from orchestrator.store.job_view import JobView
from tui.diff import parse, render
from tui.logbook import LogBook

PLAN = {"summary": "s1, then s2 and s3", "subtasks": [
    {"id": "s1", "title": "one", "instructions": "do one", "depends_on": []},
    {"id": "s2", "title": "two", "instructions": "do two", "depends_on": ["s1"]},
    {"id": "s3", "title": "three", "instructions": "do three", "depends_on": ["s1", "s2"]},
]}


def event(kind: str, subtask: str | None = None, agent: str | None = None, **payload: Any) -> Event:
    """The event as a stored row of this kind reads back."""
    found = from_row({"job_id": "j", "kind": kind, "subtask": subtask, "agent": agent,
                      "role": "coder" if agent else None, "payload": payload, "ts": 1000.0, "tokens": 0, "cost": 0.0,
                      "v": SCHEMA_VERSION})
    assert not isinstance(found, UnknownEvent), (kind, payload)
    return found


def test_the_fold_tracks_statuses_waves_and_where_each_subtask_started() -> None:
    progress = JobView("j")
    for e in [
        event("job.prepared", base_sha="base", job_branch="shipyard/j", tests_before=False),
        event("plan.ready", plan=PLAN),
        event("subtask.status", "s1", status="coding", branch="shipyard/j--s1"),
        event("agent.message", "s1", "s1.coder.1", step=1, content="hi"),
        event("agent.finished", "s1", "s1.coder.1", status="submitted", steps=1, seconds=2.0),
        event("merge", "s1", ok=True, sha="after-s1"),
        event("subtask.status", "s2", status="coding", branch="shipyard/j--s2"),
        event("subtask.status", "s2", status="failed", reason="tests fail"),
    ]:
        progress.apply(e)
    s1, s2, s3 = progress.subtasks.values()
    assert (s1.status, s1.base) == ("merged", "base")
    assert (s2.status, s2.base, s2.reason) == ("failed", "after-s1", "tests fail")  # its diff starts after s1
    assert s3.status == "queued" and (progress.done, progress.total) == (1, 3)
    assert [[s.id for s in wave] for wave in progress.waves()] == [["s1"], ["s2"], ["s3"]]
    agent = progress.agents["s1.coder.1"]
    assert (agent.status, agent.steps, agent.label) == ("submitted", 1, "coder 1")

    progress.apply(event("plan.edited", plan={**PLAN, "subtasks": PLAN["subtasks"][:2]}))
    assert list(progress.subtasks) == ["s1", "s2"] and progress.subtasks["s1"].status == "merged"


def test_the_logs_keep_a_bounded_window_and_only_the_latest_agents() -> None:
    book = LogBook(window=50, agent_logs=3)
    for agent in range(10):
        for step in range(40):
            book.add(event("agent.tool_result", "s1", f"s1.coder.{agent}", step=step, tool="run_command",
                           arguments={"command": "pytest"}, ok=True, output="1 passed"))
    assert len(book.lines("job")) == 50 and len(book.lines("subtask:s1")) == 50
    assert len(book.lines("agent:s1.coder.9")) == 50  # a tool call and a line of its output, per step
    kept = [a for a in range(10) if "left memory" not in book.lines(f"agent:s1.coder.{a}")[0][0][0]]
    assert kept == [7, 8, 9]  # the others' logs left memory, and say so
    # The job's log says who did what; an agent's own log does not repeat it.
    assert any(text == "s1.coder.9 " for text, _ in book.lines("job")[-2])
    assert not any(text == "s1.coder.9 " for text, _ in book.lines("agent:s1.coder.9")[-2])


DIFF = """diff --git a/pkg/core.py b/pkg/core.py
index 1111111..2222222 100644
--- a/pkg/core.py
+++ b/pkg/core.py
@@ -1,3 +1,3 @@
 def total(items):

-    return sum(items)
+    return sum(i * 2 for i in items)
diff --git a/old.txt b/new.txt
similarity index 90%
rename from old.txt
rename to new.txt
"""


def test_a_diff_is_split_file_by_file_and_rendered_line_for_line() -> None:
    core, renamed = parse(DIFF)
    assert (core.path, core.insertions, core.deletions) == ("pkg/core.py", 1, 1)
    assert renamed.title == "old.txt → new.txt  +0 -0" and "rename from old.txt" in renamed.header
    text = render(core, dark=True)
    # Each line with its old and new numbers; changed lines are tinted bars of one width.
    bar = 10 + len("+    return sum(i * 2 for i in items)") + 1
    assert text.plain.splitlines() == [
        "@@ -1,3 +1,3 @@", "   1    1  def total(items):", "   2    2  ",
        "   3      -    return sum(items)".ljust(bar), "        3 +    return sum(i * 2 for i in items)".ljust(bar),
    ]
    assert any("on #42201f" in str(span.style) for span in text.spans)  # the removed line is tinted
    # Wide, old and new side by side: the removed line faces the line that replaced it.
    wide = render(core, dark=True, width=140).plain.splitlines()
    assert wide[0] == "@@ -1,3 +1,3 @@"
    left, right = wide[3].split(" │ ")
    assert left.rstrip() == "   3 -    return sum(items)"
    assert right.rstrip() == "   3 +    return sum(i * 2 for i in items)"
    assert [line.split(" │ ")[0].rstrip() for line in wide[1:3]] == ["   1  def total(items):", "   2"]


def test_the_fold_closes_what_a_cancel_cut_short_and_tracks_answers_and_attempts() -> None:
    progress = JobView("j")
    for e in [
        event("plan.ready", plan=PLAN),
        event("subtask.status", "s1", status="merged"),
        event("subtask.status", "s2", status="reviewing"),
        event("agent.message", "s2", "s2.reviewer.1", step=1, content="reading"),
        event("job.waiting"),
        event("director.answer", action="approve"),
    ]:
        progress.apply(e)
    assert progress.pending_answer is not None and progress.pending_answer.action == "approve"
    progress.apply(event("job.status", status="running"))
    assert progress.pending_answer is None  # the job moved on it
    progress.apply(event("job.status", status="cancelled"))
    # Nothing is left looking busy, and the reviewer's clock stops where the job did.
    assert {s.id: s.status for s in progress.subtasks.values()} == {"s1": "merged", "s2": "cancelled",
                                                                    "s3": "cancelled"}
    assert progress.agents["s2.reviewer.1"].seconds == 0.0 and progress.ended == 1000.0
    progress.apply(event("subtask.retry", subtasks=["s2", "s3"]))
    progress.apply(event("agent.message", "s2", "s2.coder.2", step=1, content="again"))
    assert progress.subtasks["s2"].attempt == 2 and progress.subtasks["s2"].status == "queued"
    assert (progress.agents["s2.reviewer.1"].attempt, progress.agents["s2.coder.2"].attempt) == (1, 2)
