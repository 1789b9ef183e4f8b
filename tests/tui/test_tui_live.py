"""The TUI driven by key presses (Textual's Pilot) over real jobs: the scripted model over HTTP, real
git repos and bubblewrap sandboxes. Jobs run in threads (a launcher seam), except in the test
that proves a job launched from the TUI outlives it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, cast

import pytest
from textual.widgets import DataTable, Input, Static, TabbedContent, TextArea
from tuikit import Demo, MakeDemo, git, node_label, select_node, slowed, static_text, type_text, wait_until

from agents.scripted_model import Script
from orchestrator.apps.demo import SCRIPT
from orchestrator.runtime.background import launch
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import Job, JobStatus
from tui.screens.dialogs import ConfirmDialog, PlanEditor, PromptDialog, RetryDialog
from tui.screens.job import JobScreen
from tui.screens.jobs import JobsScreen
from tui.screens.new_task import NewTaskScreen
from tui.widgets.diff_view import DiffView
from tui.widgets.panels import JobHeader, PlanPanel
from tui.widgets.plan_tree import PlanTree

pytestmark = [pytest.mark.asyncio, pytest.mark.bubblewrap]

SIZE = (120, 36)
LIFECYCLE = ["queued", "coding", "testing", "fixing", "reviewing", "approved", "merged"]


def cell(app: Any, job_id: str, column: str) -> str:
    table = app.screen.query_one(DataTable)
    return str(table.get_cell(job_id, column)) if job_id in table.rows else ""


def notifications(app: Any) -> list[str]:
    """Every toast the app shows, from now on."""
    seen: list[str] = []
    show = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        seen.append(message)
        show(message, **kwargs)

    app.notify = notify
    return seen


async def open_job(pilot: Any, job_id: str) -> JobScreen:
    app = pilot.app
    await wait_until(pilot, lambda: cell(app, job_id, "job"), f"job {job_id} in the list")
    table = app.screen.query_one(DataTable)
    await pilot.press(*["up"] * table.row_count)
    await pilot.press(*["down"] * table.get_row_index(job_id))
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, JobScreen), "the job screen")
    return app.screen


async def test_submit_from_the_form_launches_the_job_and_the_list_follows_it(make_demo: MakeDemo) -> None:
    demo = make_demo()
    app = demo.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewTaskScreen), "the new-task form")
        assert app.screen.query_one("#repo", Input).value == str(demo.repo)
        await pilot.press("ctrl+s")  # an empty instruction is refused, and the form stays
        await wait_until(pilot, lambda: "instruction" in static_text(app.screen.query_one("#form-error", Static)),
                         "the form's complaint")
        await type_text(pilot, "Fix total_value, then add discount and stock_report")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.jobs, "the new job")
        job_id = cast(JobsScreen, app.screen).jobs[0].id
        assert demo.launcher.calls == [(job_id, "run")]
        assert demo.runner.get(job_id).task.repo == str(demo.repo)
        assert demo.runner.get(job_id).task.base == "main"
        await wait_until(pilot, lambda: cell(app, job_id, "status") == "✓ succeeded", "the job to succeed")
        await wait_until(pilot, lambda: cell(app, job_id, "done") == "3/3", "its progress")

        await pilot.press("f")  # the filter goes to "needs me": the job succeeded, not accepted yet
        await wait_until(pilot, lambda: "needs me" in str(app.screen.query_one(DataTable).border_title), "filtered")
        assert cell(app, job_id, "status") == "✓ succeeded"
        await pilot.press("f")  # "running": no job is
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 0, "the filtered list")
        assert "No job matches (running)" in static_text(app.screen.query_one("#no-jobs", Static))
    assert demo.launcher.errors == []


async def test_a_plan_waits_for_approval_then_runs_live_and_is_accepted(make_demo: MakeDemo) -> None:
    demo = make_demo(slowed(SCRIPT, 0.15))
    app = demo.app()
    async with app.run_test(size=SIZE) as pilot:
        toasts = notifications(app)
        await pilot.pause(0.2)
        job = demo.start(approve_plan=True)  # as from the CLI: the list must pick it up
        await wait_until(pilot, lambda: any("waits for your approval" in t for t in toasts), "the plan-ready toast")
        await wait_until(pilot, lambda: cell(app, job.id, "status") == "◆ awaiting approval", "the job waiting")

        screen = await open_job(pilot, job.id)
        tree = screen.query_one(PlanTree)
        await wait_until(pilot, lambda: screen.query_one(TabbedContent).active == "plan"
                         and "wave 2" in static_text(screen.query_one(PlanPanel)), "the plan and its waves")
        enabled = {key for key, b in screen.active_bindings.items() if b.enabled and b.node is screen}
        assert {"a", "e", "x", "c", "n", "y"} <= enabled and not {"m", "d", "r"} & enabled
        palette = [command.title for command in app.get_system_commands(screen)]
        assert {"Approve the plan: the job runs on", "Reject the plan: the job ends",
                "Send a note to the job's agents"} <= set(palette)

        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "the note prompt")
        await type_text(pilot, "Keep the public API as it is")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "director.note" in demo.kinds(job.id), "the note in the event log")

        await pilot.press("a")
        assert demo.launcher.calls[-1] == (job.id, "answer")
        seen: list[str] = []
        while demo.status(job.id) != JobStatus.SUCCEEDED or "merged" not in seen:
            words = node_label(tree, "subtask:s2").split()
            if len(words) > 2 and (not seen or seen[-1] != words[2]):
                seen.append(words[2])
            assert len(seen) < 20 and not demo.launcher.errors, (seen, demo.launcher.errors)
            await pilot.pause(0.02)
        # The tree showed s2 go through its life as it happened: from queued to merged, by way of
        # states in between (how many the screen catches depends on the machine's speed), in order.
        assert seen[0] == "queued" and seen[-1] == "merged", seen
        assert len(set(seen[1:-1]) & {"coding", "fixing", "reviewing", "approved"}) >= 2, seen
        order = [LIFECYCLE.index(s) for s in seen if s != "testing"]  # testing comes back after a fix
        assert order == sorted(order), seen
        await wait_until(pilot, lambda: any(f"Job {job.id} succeeded" in t for t in toasts), "the finished toast")

        await wait_until(pilot, lambda: screen.check_action("accept", ()), "accept offered")
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the merge confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: "job.accepted" in demo.kinds(job.id), "the accept")
        merges = git(demo.repo, "log", "--merges", "--format=%s", "main")
        assert f"Merge shipyard/{job.id}" in merges
        assert "def discount" in git(demo.repo, "show", "main:inventory/pricing.py")
        await wait_until(pilot, lambda: "accepted" in static_text(screen.query_one(JobHeader)), "accepted shown")
        assert screen.check_action("accept", ()) is False


async def test_the_diff_of_a_subtask_and_of_the_job_copy_branch_and_discard(make_demo: MakeDemo) -> None:
    demo = make_demo()
    job = demo.submit()
    assert demo.runner.run(job.id).status == JobStatus.SUCCEEDED
    app = demo.app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_job(pilot, job.id)
        view = screen.query_one(DiffView)
        await select_node(pilot, "subtask:s2")
        await pilot.press("2")
        # s2 started after s1 was merged: its diff holds its own files only, not s1's fix.
        await wait_until(pilot, lambda: [f.path for f in view.files] == ["inventory/pricing.py",
                                                                         "tests/test_pricing.py"], "s2's diff")
        body = "\n".join(line.text for line in view.body.lines)
        assert "+def discount(total, percent):" in body and "(100 - percent)" in body
        await pilot.press("right_square_bracket")  # the next file, from the tree
        await wait_until(pilot, lambda: "def test_discount" in "\n".join(
            line.text for line in view.body.lines), "the second file's diff")
        while not view.file_list.has_focus:  # in the file list, the tabs' keys still work
            await pilot.press("tab")
        await pilot.press("3")
        await wait_until(pilot, lambda: screen.query_one(TabbedContent).active == "tests", "the tests tab")
        await pilot.press("2")
        await wait_until(pilot, lambda: screen.query_one(TabbedContent).active == "diff", "the diff tab again")

        await pilot.press("y")
        assert app.clipboard == f"shipyard/{job.id}--s2"

        screen.query_one(PlanTree).focus()
        await select_node(pilot, "job")
        await wait_until(pilot, lambda: len(view.files) == 5, "the whole job's diff")
        await pilot.press("y")
        assert app.clipboard == f"shipyard/{job.id}"

        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the discard confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: "job.discarded" in demo.kinds(job.id), "the discard")
        assert git(demo.repo, "branch", "--list", f"shipyard/{job.id}*").strip() == ""
        await wait_until(pilot, lambda: "discarded" in static_text(screen.query_one(JobHeader)), "discarded shown")
        assert screen.check_action("accept", ()) is False and screen.check_action("discard", ()) is False


async def _cancel_once_at_work(pilot: Any, demo: Demo) -> tuple[Job, JobScreen, PlanTree]:
    """Start the demo job, open it, and cancel it with c, y once its first coder is at work."""
    job = demo.start()
    screen = await open_job(pilot, job.id)
    tree = screen.query_one(PlanTree)
    await wait_until(pilot, lambda: "coding" in node_label(tree, "subtask:s1"), "s1 at work")
    await pilot.press("c")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), "the cancel confirmation")
    await pilot.press("y")
    return job, screen, tree


async def test_cancel_a_running_job(make_demo: MakeDemo) -> None:
    demo = make_demo(slowed(SCRIPT, 0.3))
    async with demo.app().run_test(size=SIZE) as pilot:
        job, _, tree = await _cancel_once_at_work(pilot, demo)
        await wait_until(pilot, lambda: "cancelled" in node_label(tree, "job"), "the job shown cancelled")
        demo.launcher.join()
        # The job's process noticed and stopped where it was.
        assert demo.status(job.id) == JobStatus.CANCELLED
        finished = [e.payload for e in demo.runner.events(job.id) if e.kind == "job.finished"]
        assert [f["status"] for f in finished] == ["cancelled"]
        assert "merged" not in node_label(tree, "subtask:s3")


async def test_a_cancelled_job_is_retried_with_a_note_and_goes_on_to_succeed(make_demo: MakeDemo) -> None:
    demo = make_demo(slowed(SCRIPT, 0.3))
    app = demo.app()
    async with app.run_test(size=SIZE) as pilot:
        job, screen, tree = await _cancel_once_at_work(pilot, demo)
        await wait_until(pilot, lambda: demo.status(job.id) == JobStatus.CANCELLED, "the job cancelled")
        demo.launcher.join()
        # Nothing under way is left looking busy: the cancel closed every subtask (one approved just before it
        # stays approved, and is merged by the retry).
        await wait_until(pilot, lambda: all(s.status in ("merged", "approved", "cancelled") for s in
                                            screen.progress.subtasks.values()), "the subtasks closed")
        await wait_until(pilot, lambda: "cancelled" in node_label(tree, "subtask:s3"), "the tree to show it")

        await wait_until(pilot, lambda: screen.check_action("retry", ()), "retry offered for the cancelled job")
        demo.server.reset(slowed(SCRIPT, 0.05))  # the cut-off agents start again: the script from its start
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, RetryDialog), "the retry dialog")
        await type_text(pilot, "Go on where you stopped")
        await pilot.press("enter")
        await wait_until(pilot, lambda: demo.status(job.id) == JobStatus.SUCCEEDED, "the job to succeed", timeout=90)
        assert demo.launcher.calls == [(job.id, "run"), (job.id, "retry")]
        assert "director.note" in demo.kinds(job.id)
        assert demo.kinds(job.id).count("job.prepared") == 1  # it went on from its checkpoint
        await wait_until(pilot, lambda: "merged" in node_label(tree, "subtask:s3"), "s3 merged at last")
    assert demo.launcher.errors == []


async def test_reject_a_plan(make_demo: MakeDemo) -> None:
    demo = make_demo()
    app = demo.app()
    async with app.run_test(size=SIZE) as pilot:
        job = demo.start(approve_plan=True)
        screen = await open_job(pilot, job.id)
        await wait_until(pilot, lambda: screen.check_action("reject", ()), "the plan waiting")
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "the reason prompt")
        await type_text(pilot, "Too broad")
        await pilot.press("enter")
        await wait_until(pilot, lambda: demo.status(job.id) == JobStatus.REJECTED, "the job rejected")
        assert demo.launcher.calls[-1] == (job.id, "answer")
        rejected = [e.payload for e in demo.runner.events(job.id) if e.kind == "plan.rejected"]
        assert rejected == [{"reason": "Too broad"}]
        await wait_until(pilot, lambda: "rejected" in node_label(screen.query_one(PlanTree), "job"), "it shown")


async def test_edit_a_plan_then_run_it(make_demo: MakeDemo) -> None:
    demo = make_demo()
    app = demo.app()
    async with app.run_test(size=SIZE) as pilot:
        job = demo.start(approve_plan=True)
        screen = await open_job(pilot, job.id)
        await wait_until(pilot, lambda: screen.check_action("edit_plan", ()), "the plan waiting")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanEditor), "the plan editor")
        editor = app.screen.query_one(TextArea)
        plan = json.loads(editor.text)
        assert [s["id"] for s in plan["subtasks"]] == ["s1", "s2", "s3"]

        editor.load_text(json.dumps({**plan, "subtasks": [{**plan["subtasks"][1], "depends_on": ["s9"]}]}))
        await pilot.press("ctrl+s")  # a plan the orchestrator would refuse never leaves the editor
        await wait_until(pilot, lambda: "unknown subtask" in static_text(app.screen.query_one("#plan-error", Static)),
                         "the editor's complaint")
        editor.load_text(json.dumps({**plan, "subtasks": plan["subtasks"][:1]}))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: demo.status(job.id) == JobStatus.SUCCEEDED, "the edited job to succeed",
                         timeout=60)
        assert demo.launcher.calls[-1] == (job.id, "answer")
        await wait_until(pilot, lambda: node_label(screen.query_one(PlanTree), "subtask:s2") == ""
                         and "1/1 merged" in static_text(screen.query_one(JobHeader)), "the one-subtask plan")


async def test_retry_runs_a_failed_job_again_from_its_checkpoint(make_demo: MakeDemo) -> None:
    # The planner's first answer is refused: the job fails after preparing, and its checkpoint stays.
    demo = make_demo(Script.load([{"match": {"role": "planner"}, "status": 400, "message": "overloaded"}]))
    job = demo.submit()
    failed = Director(demo.settings).run(job.id)  # a model that refuses fails the job; it does not raise
    assert "overloaded" in (failed.error or "")
    assert demo.status(job.id) == JobStatus.FAILED
    demo.server.reset(SCRIPT)  # the endpoint is back
    app = demo.app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_job(pilot, job.id)
        await wait_until(pilot, lambda: screen.check_action("retry", ()), "retry offered")
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, RetryDialog), "the retry dialog")
        await pilot.press("enter")  # no note
        await wait_until(pilot, lambda: demo.status(job.id) == JobStatus.SUCCEEDED, "the job to succeed", timeout=60)
        assert demo.launcher.calls == [(job.id, "retry")]
        # It went on from the checkpoint: the repo was prepared once.
        assert demo.kinds(job.id).count("job.prepared") == 1


async def test_a_job_launched_from_the_tui_outlives_it(make_demo: MakeDemo, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = make_demo()
    # What the job's own process reads: the same scripted model and sandbox backend.
    monkeypatch.setenv("SHIPYARD_MODELS__DEFAULT__BASE_URL", demo.server.base_url)
    monkeypatch.setenv("SHIPYARD_MODELS__DEFAULT__MODEL", "scripted-demo")
    monkeypatch.setenv("SHIPYARD_SANDBOX__BACKEND", "bubblewrap")
    app = demo.app(launcher=launch)  # the real one: a process of its own
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewTaskScreen), "the new-task form")
        await type_text(pilot, "Fix the total")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.jobs, "the new job")
        job_id = cast(JobsScreen, app.screen).jobs[0].id
    # The app is gone; the job goes on in its own process.
    deadline = time.monotonic() + 60
    while not demo.status(job_id).finished:
        assert time.monotonic() < deadline, "the job never finished"
        await asyncio.sleep(0.2)
    assert demo.status(job_id) == JobStatus.SUCCEEDED, demo.runner.get(job_id).error
    assert git(demo.repo, "branch", "--list", f"shipyard/{job_id}").strip()


REPLAN_NOTE = "one subtask: only fix total_value"
REPLAN_SCRIPT = [
    {"match": {"role": "planner"}, "tool_calls": [{"name": "submit_plan", "arguments": {
        "summary": "everything at once", "subtasks": [
            {"id": "s1", "title": "rewrite the whole package", "instructions": "rewrite inventory from scratch"}]}}]},
    {"match": {"role": "planner", "any_message_contains": REPLAN_NOTE}, "tool_calls": [{"name": "submit_plan",
     "arguments": {"summary": "just the fix", "subtasks": [
         {"id": "f1", "title": "count quantities", "instructions": "multiply by quantity in total_value"}]}}]},
    {"match": {"role": "coder"}, "repeat": True, "tool_calls": [
        {"name": "create_file", "arguments": {"path": "FIXED.md", "content": "fixed\n"}},
        {"name": "submit", "arguments": {"summary": "noted"}}]},
    {"match": {"role": "reviewer"}, "repeat": True, "tool_calls": [
        {"name": "submit_review", "arguments": {"decision": "approve", "summary": "fine"}}]},
]


async def test_p_sends_the_plan_back_with_a_note_and_the_new_plan_waits_then_runs(make_demo: MakeDemo) -> None:
    demo = make_demo(Script.load(REPLAN_SCRIPT))
    app = demo.app()
    async with app.run_test(size=SIZE) as pilot:
        job = demo.start(approve_plan=True)
        screen = await open_job(pilot, job.id)
        await wait_until(pilot, lambda: screen.check_action("replan", ()), "the plan waiting", timeout=60)
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "the note prompt")
        await type_text(pilot, REPLAN_NOTE)
        await pilot.press("enter")
        # Planned again: the new plan waits for approval, the first shows as sent back with the note.
        await wait_until(pilot, lambda: demo.status(job.id) == JobStatus.AWAITING_APPROVAL
                         and [s.id for s in demo.runner.plan(job.id).subtasks] == ["f1"], "the new plan", timeout=60)
        assert demo.launcher.calls[-1] == (job.id, "answer")
        planners = [json.dumps(r.body.get("messages")) for r in demo.server.requests if r.role == "planner"]
        assert len(planners) == 2 and REPLAN_NOTE in planners[1] and "s1: rewrite the whole package" in planners[1]
        panel = screen.query_one(PlanPanel)
        await wait_until(pilot, lambda: f"Plan 1 sent back: {REPLAN_NOTE}" in static_text(panel)
                         and "just the fix" in static_text(panel), "the plan tab")
        tree = screen.query_one(PlanTree)
        await wait_until(pilot, lambda: node_label(tree, "subtask:f1") and not node_label(tree, "subtask:s1")
                         and node_label(tree, "agent:planner.2"), "the tree of the new plan, both planners")
        await wait_until(pilot, lambda: screen.check_action("approve", ()), "its keys open again")
        await pilot.press("a")
        await wait_until(pilot, lambda: demo.status(job.id).finished, "the job to end", timeout=90)
        assert [s.id for s in demo.runner.report(job.id).subtasks] == ["f1"]
        assert not [e for e in demo.runner.events(job.id) if e.subtask == "s1"]
