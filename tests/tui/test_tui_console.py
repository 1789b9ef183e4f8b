"""The director's console on the recorded jobs and campaign (real store, real git, real queue), driven by
keys: the form under fast typing, the plan editor, a pending answer on a worker's job, a long command
output, hundreds of jobs, the campaign screen's actions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.color import Color
from rich.segment import Segment
from textual.pilot import Pilot
from textual.strip import Strip
from textual.widgets import Checkbox, DataTable, Input, Label, SelectionList, Static, TabbedContent, TextArea
from textual.widgets._toast import Toast, ToastRack
from tuikit import (
    LONG_OUTPUT,
    RECORDED_CAMPAIGN,
    RECORDED_JOB,
    RECORDED_NOW,
    select_node,
    static_text,
    type_text,
    wait_until,
)

from orchestrator.config.settings import Settings
from orchestrator.runtime.director import Director
from orchestrator.store.events import (
    CampaignPaused,
    CampaignToppedUp,
    DirectorAnswer,
    DirectorNote,
    PlanReady,
    PlanSentBack,
    SubtaskStatus,
    WorkerClaimed,
)
from orchestrator.store.jobs import JobStatus, Task
from tui.app import ShipyardApp
from tui.screens.campaign import CampaignScreen
from tui.screens.dialogs import ConfirmDialog, PlanEditor, PromptDialog, RetryDialog
from tui.screens.help import HelpScreen
from tui.screens.job import JobScreen
from tui.screens.jobs import JobsScreen
from tui.screens.new_task import NewTaskScreen
from tui.widgets.log_view import LogView
from tui.widgets.panels import JobHeader, PlanPanel
from tui.widgets.plan_tree import PlanTree

pytestmark = pytest.mark.asyncio

WAITING_JOB = "20260105-102000-91b0"  # the recorded job whose plan waits for approval
SIZE = (100, 30)


class Launches:
    """A launcher that only records what it was asked to start."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.subtasks: list[str] | None = None

    def __call__(self, settings: Settings, job_id: str, action: str = "run", repo: Path | None = None,
                 subtasks: list[str] | None = None) -> None:
        self.calls.append((job_id, action))
        self.subtasks = subtasks


def console(recorded: tuple[Settings, Path], launcher: Launches | None = None) -> ShipyardApp:
    settings, repo = recorded
    return ShipyardApp(settings, repo, launcher=launcher or Launches(), clock=lambda: RECORDED_NOW,
                       poll_interval=0.05)


def line_texts(view: LogView) -> list[str]:
    return ["".join(text for text, style in line if not style.startswith("@")) for line in view.lines]


async def listed(pilot: Any, job_id: str) -> DataTable[Any]:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, JobsScreen)
                     and job_id in pilot.app.screen.query_one(DataTable).rows, f"job {job_id} listed")
    return pilot.app.screen.query_one(DataTable)


async def open_recorded(pilot: Any, job_id: str) -> Any:
    table = await listed(pilot, job_id)
    table.move_cursor(row=table.get_row_index(job_id))
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, JobScreen | CampaignScreen), "the job's screen")
    return pilot.app.screen


async def test_keys_typed_at_once_after_n_land_in_the_form_and_the_approval_box_holds(
        recorded: tuple[Settings, Path]) -> None:
    settings, repo = recorded
    launches = Launches()
    app = console(recorded, launches)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot, RECORDED_JOB)
        # Everything in one burst, as a fast typist on a loaded machine: no pause for the form to open.
        await pilot.press("n", *"Fix it", "tab", "space", "ctrl+s")
        await wait_until(pilot, lambda: launches.calls, "the job launched")
        assert isinstance(app.screen, JobsScreen)
        job = Director(settings).get(launches.calls[0][0])
        assert job.task.instruction == "Fix it"
        assert job.task.approve_plan is True
        assert job.task.repo == str(repo)  # the repository field kept what it had

        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewTaskScreen), "the form again")
        box = app.screen.query_one("#approve-plan")
        assert "no:" in str(box.label)
        await pilot.press("tab", "space")
        assert "yes:" in str(box.label)  # on and off read differently, not only by colour
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen), "the form closed")


async def test_a_new_task_from_a_relative_repo_is_stored_absolute(recorded: tuple[Settings, Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    settings, repo = recorded
    monkeypatch.chdir(repo)
    job = Director(settings).submit(Task(instruction="Fix it", repo="."))
    assert job.task.repo == str(repo)


async def test_escape_closes_the_plan_editor_and_its_problems_read_plainly(recorded: tuple[Settings, Path]) -> None:
    settings, _ = recorded
    app = console(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_recorded(pilot, WAITING_JOB)
        await wait_until(pilot, lambda: screen.check_action("edit_plan", ()), "the plan waiting")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, PlanEditor), "the plan editor")
        editor = app.screen.query_one(TextArea)
        editor.load_text(editor.text.replace('"id": "s1"', '"id": "Bad Id"', 1))
        await pilot.press("ctrl+s")
        error = app.screen.query_one("#plan-error", Static)
        await wait_until(pilot, lambda: "subtask 1 id" in static_text(error), "the editor's complaint")
        assert "'Bad Id' is not allowed: it must match ^[a-z0-9][a-z0-9_-]{0,31}$" in static_text(error)
        await pilot.press("escape")  # the text area has the focus: Escape still closes the editor
        await wait_until(pilot, lambda: app.screen is screen, "the editor closed")
        assert not Director(settings).events(WAITING_JOB, kinds=(DirectorAnswer,))


WORKER = "build-2:4711"


def claimed_by_a_worker(settings: Settings) -> Director:
    """The waiting job, as if a worker (WORKER) had taken it: answers to it are queued for that worker."""
    director = Director(settings)
    director.records.events.append(WorkerClaimed(job_id=WAITING_JOB, worker=WORKER, action="run"))
    return director


async def open_on_its_worker(pilot: Pilot, action: str) -> tuple[JobScreen, JobHeader]:
    """The waiting job's screen once it shows its worker and `action` can answer its plan."""
    screen = await open_recorded(pilot, WAITING_JOB)
    header = screen.query_one(JobHeader)
    await wait_until(pilot, lambda: f"on {WORKER}" in static_text(header), "the worker shown")
    await wait_until(pilot, lambda: screen.check_action(action, ()), "the plan waiting")
    return screen, header


async def test_an_approval_of_a_job_a_worker_owns_shows_as_queued_and_locks_the_keys(
        recorded: tuple[Settings, Path]) -> None:
    director = claimed_by_a_worker(recorded[0])
    launches = Launches()
    app = console(recorded, launches)
    async with app.run_test(size=SIZE) as pilot:
        screen, header = await open_on_its_worker(pilot, "approve")
        await pilot.press("a")
        # The answer goes to the worker's queue (no process of our own), and it waits there for a worker.
        await wait_until(pilot, lambda: "approve queued: a worker takes it" in static_text(header),
                         "the answer shown pending", timeout=60)
        assert launches.calls == []
        assert not any(screen.check_action(a, ()) for a in ("approve", "edit_plan", "reject"))
        await pilot.press("a", "x")  # locked: nothing more is recorded
        await pilot.pause(0.3)
        answers = director.events(WAITING_JOB, kinds=(DirectorAnswer,))
        assert [a.action for a in answers if isinstance(a, DirectorAnswer)] == ["approve"]
        assert director.get(WAITING_JOB).status == JobStatus.AWAITING_APPROVAL


async def test_a_long_command_output_shows_its_tail_and_expands(recorded: tuple[Settings, Path]) -> None:
    app = console(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_recorded(pilot, RECORDED_JOB)
        view = screen.query_one(LogView)
        verdict = LONG_OUTPUT.splitlines()[-1]
        await wait_until(pilot, lambda: any(verdict in t for t in line_texts(view)), "the output's last line")
        texts = line_texts(view)
        assert any("… 235 more lines (enter shows them)" in t for t in texts)
        assert not any("test_case_100" in t for t in texts)

        view.focus()
        await pilot.press("slash")
        await type_text(pilot, "235 more")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "235 more" in line_texts(view)[view._cursor_index()], "the step found")
        await pilot.press("enter")  # expand the step
        await wait_until(pilot, lambda: any("test_case_100 PASSED" in t for t in line_texts(view)), "the step whole")
        assert sum(verdict in t for t in line_texts(view)) == 1
        assert view.unseen == 0
        await pilot.press("enter")  # and fold it again
        await wait_until(pilot, lambda: not any("test_case_100" in t for t in line_texts(view)), "the step folded")


async def test_new_lines_below_the_reader_are_counted(recorded: tuple[Settings, Path]) -> None:
    settings, _ = recorded
    app = console(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_recorded(pilot, "20260105-101500-7c2e")  # the running job
        view = screen.query_one(LogView)
        await wait_until(pilot, lambda: len(view.lines) > 10, "its log")
        view.focus()
        await pilot.press("k", "k", "k")  # the reader goes up the log
        Director(settings).note("20260105-101500-7c2e", "Keep the CSV columns in the report's order")
        marker = screen.query_one("#log-more", Static)
        await wait_until(pilot, lambda: marker.display and "1 new line below" in static_text(marker), "the marker")
        await pilot.press("G")
        await wait_until(pilot, lambda: not marker.display, "the marker gone at the tail")


async def test_250_more_jobs_are_all_listed_and_each_found_by_search(recorded: tuple[Settings, Path]) -> None:
    settings, repo = recorded
    director = Director(settings)
    made = [director.records.submit(Task(instruction=f"Tidy module-{n:03d} of many", repo=str(repo))).id
            for n in range(250)]
    app = console(recorded)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await listed(pilot, made[0])
        assert table.row_count == 255  # the recorded four, the campaign, and every chore: no cap
        for number in (0, 137, 249):
            await pilot.press("slash")
            await type_text(pilot, f"tidy MODULE-{number:03d}")
            await pilot.press("enter")
            await wait_until(pilot, lambda: table.row_count == 1, f"module {number} alone")
            assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == made[number]
            await pilot.press("escape")
            await wait_until(pilot, lambda: table.row_count == 255, "the whole list again")
        await pilot.press("slash")
        await type_text(pilot, made[42][-8:])  # by id
        await pilot.press("enter")
        await wait_until(pilot, lambda: table.row_count == 1, "the job found by its id")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobScreen) and app.screen.job.id == made[42],
                         "the job opened")


async def test_the_inbox_lists_what_needs_the_director_first(recorded: tuple[Settings, Path]) -> None:
    app = console(recorded)
    async with app.run_test(size=SIZE) as pilot:
        table = await listed(pilot, RECORDED_CAMPAIGN)
        order = [str(key.value) for key in table.rows]
        # Waiting, failed and finished-not-accepted first (newest first), then what runs.
        assert order == [WAITING_JOB, "20260105-094500-3d4a", RECORDED_JOB, "20260105-101500-7c2e",
                         RECORDED_CAMPAIGN]
        await pilot.press("3")
        await wait_until(pilot, lambda: table.row_count == 2, "the running filter")
        await pilot.press("5")
        await wait_until(pilot, lambda: [str(k.value) for k in table.rows] == [RECORDED_CAMPAIGN], "campaigns")
        await pilot.press("4", "question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        assert "Search the jobs by task, repo, id or branch" in static_text(app.screen.query_one("#help-keys", Static))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen), "back")
        empty = app.screen.query_one("#no-jobs", Static)
        assert table.row_count == 1 and not empty.display  # failed: the one that failed


async def test_the_campaign_screen_notes_stops_and_tops_up(recorded: tuple[Settings, Path]) -> None:
    settings, _ = recorded
    director = Director(settings)
    launches = Launches()
    app = console(recorded, launches)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_recorded(pilot, RECORDED_CAMPAIGN)
        assert isinstance(screen, CampaignScreen)
        summary = screen.query_one("#campaign-summary", Static)
        await wait_until(pilot, lambda: "7 → 4 → 2 → 1" in static_text(summary), "the figure over time")
        assert "█▅▂▁" in static_text(summary) and "of $1.50" in static_text(summary)
        assert "Fix the last failing test" in static_text(screen.query_one("#campaign-now", Static))
        assert screen.query_one(DataTable).row_count == 4

        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "the note prompt")
        await type_text(pilot, "Leave the fixtures alone")
        await pilot.press("enter")
        await wait_until(pilot, lambda: director.events(RECORDED_CAMPAIGN, kinds=(DirectorNote,)), "the note")

        # The budget runs out, as the campaign's graph records it: it pauses.
        director.records.events.append(CampaignPaused(job_id=RECORDED_CAMPAIGN, spent=1.5, budget=1.5))
        director.records.set_status(RECORDED_CAMPAIGN, JobStatus.AWAITING_BUDGET)
        await wait_until(pilot, lambda: screen.check_action("topup", ()), "top-up offered")
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "the amount prompt")
        await type_text(pilot, "0.5")
        await pilot.press("enter")
        await wait_until(pilot, lambda: launches.calls == [(RECORDED_CAMPAIGN, "answer")], "the campaign launched")
        assert director.pending_topup(RECORDED_CAMPAIGN) == 0.5
        topped = director.events(RECORDED_CAMPAIGN, kinds=(CampaignToppedUp,))
        assert [t.amount for t in topped if isinstance(t, CampaignToppedUp)] == [0.5]
        await wait_until(pilot, lambda: "of $2.00" in static_text(summary), "the budget with its top-up")
        assert not screen.check_action("topup", ())  # one top-up on its way is enough

        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the stop confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: director.get(RECORDED_CAMPAIGN).status == JobStatus.CANCELLED, "stopped")
        await wait_until(pilot, lambda: "cancelled" in static_text(summary), "shown stopped")


async def test_a_retry_picks_its_subtasks_and_takes_a_note(recorded: tuple[Settings, Path]) -> None:
    settings, _ = recorded
    director = Director(settings)
    failed = "20260105-094500-3d4a"
    plan = director.events(RECORDED_JOB, kinds=(PlanReady,))[0]
    director.records.events.append(plan.model_copy(update={"job_id": failed, "id": None}))
    for sub in ("s1", "s2"):
        director.records.events.append(SubtaskStatus(job_id=failed, subtask=sub, status="failed", reason="tests fail"))
    launches = Launches()
    app = console(recorded, launches)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_recorded(pilot, failed)
        await wait_until(pilot, lambda: screen.check_action("retry", ()), "retry offered")
        await wait_until(pilot, lambda: screen.progress.subtasks.get("s2") is not None
                         and screen.progress.subtasks["s2"].status == "failed", "its failed subtasks")
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, RetryDialog), "the retry dialog")
        await type_text(pilot, "Mind the rounding")
        picks = app.screen.query_one(SelectionList)
        await pilot.press("shift+tab")
        await wait_until(pilot, lambda: picks.has_focus and picks.highlighted == 0, "the subtasks' list")
        await pilot.press("space")  # s1 unpicked: only s2 runs again
        await wait_until(pilot, lambda: picks.selected == ["s2"], "s2 alone picked")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: launches.calls == [(failed, "retry")], "the retry launched")
        assert launches.subtasks == ["s2"]
        notes = director.events(failed, kinds=(DirectorNote,))
        assert [n.text for n in notes if isinstance(n, DirectorNote)] == ["Mind the rounding"]


async def test_a_launched_process_that_fails_comes_back_as_a_toast(recorded: tuple[Settings, Path]) -> None:
    settings, repo = recorded
    app = ShipyardApp(settings, repo, clock=lambda: RECORDED_NOW, poll_interval=0.05)  # the real launcher
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot, RECORDED_JOB)
        toasts: list[str] = []
        show = app.notify
        app.notify = lambda message, **kw: (toasts.append(message), show(message, **kw))[1]  # type: ignore[method-assign]
        app.launch(RECORDED_JOB, "retry")  # a succeeded job: its process refuses, and exits non-zero
        await wait_until(pilot, lambda: any("exited with" in t for t in toasts), "the failure's toast", timeout=180)
        failure = next(t for t in toasts if "exited with" in t)
        assert f"shipyard work {RECORDED_JOB} --action retry" in failure
        assert "only a failed, partial or cancelled job can be retried" in failure  # the process's own last words


def rows_shown(widget: Any) -> list[Strip]:
    """What a line-rendered widget (the log, the tree) paints, row by row, as the screen gets it."""
    return [widget.render_line(y) for y in range(widget.size.height)]


def strip_text(strip: Strip) -> str:
    return "".join(segment.text for segment in strip)


def tree_scopes(tree: PlanTree) -> list[str]:
    """The scopes of the tree's lines on screen, top to bottom (a folded node's children are not)."""
    return [str(tree.get_node_at_line(line).data) for line in range(tree.last_line + 1)
            if tree.get_node_at_line(line) is not None]


async def test_duplicate_opens_the_form_filled_from_the_job_and_submits_a_new_job(
        recorded: tuple[Settings, Path]) -> None:
    settings, repo = recorded
    director = Director(settings)
    original = director.get(RECORDED_JOB).task
    launches = Launches()
    app = console(recorded, launches)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_recorded(pilot, RECORDED_JOB)
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, NewTaskScreen), "the form")
        form = app.screen
        assert form.query_one("#instruction", TextArea).text == original.instruction
        assert form.query_one("#repo", Input).value == original.repo
        assert form.query_one("#base", Input).value == original.base
        assert form.query_one("#approve-plan", Checkbox).value == original.approve_plan
        assert form.query_one("#candidates", Input).value == str(original.candidates)
        assert "New task, like" in str(form.query_one(".dialog-title", Label).content)
        await type_text(pilot, "Again: ")  # the instruction has the focus, its cursor at the start
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: launches.calls, "the new job launched")
        await wait_until(pilot, lambda: app.screen is screen, "back on the job")
    (new_id, action), = launches.calls
    assert action == "run" and new_id != RECORDED_JOB
    task = director.get(new_id).task
    assert task.instruction == "Again: " + original.instruction
    assert (task.repo, task.base, task.approve_plan) == (original.repo, original.base, original.approve_plan)
    assert director.get(RECORDED_JOB).task == original  # the job it came from is as it was


async def test_zoom_gives_the_pane_the_whole_width_and_back(recorded: tuple[Settings, Path]) -> None:
    app = console(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_recorded(pilot, RECORDED_JOB)
        tree, tabs = screen.query_one(PlanTree), screen.query_one(TabbedContent)
        await wait_until(pilot, lambda: tree.region.width > 0 and tabs.region.x >= tree.region.width, "two panes")
        narrow = tabs.region.width
        await pilot.press("z")
        await wait_until(pilot, lambda: tabs.region.width == SIZE[0], "the pane zoomed")
        assert tabs.region.x == 0 and not tree.display and tree.region.width == 0
        await pilot.press("z")
        await wait_until(pilot, lambda: tabs.region.width == narrow, "both panes again")
        assert tree.display and tree.region.width > 0


async def test_long_log_lines_wrap_and_w_crops_them(recorded: tuple[Settings, Path]) -> None:
    app = console(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_recorded(pilot, RECORDED_JOB)
        view = screen.query_one(LogView)
        verdict = LONG_OUTPUT.splitlines()[-1]  # longer than the pane is wide
        await wait_until(pilot, lambda: any(verdict in t for t in line_texts(view)), "the verdict in the log")
        view.focus()
        await pilot.press("slash")
        await type_text(pilot, "test_discount_rounds")
        await pilot.press("enter")
        await wait_until(pilot, lambda: verdict in line_texts(view)[view._cursor_index()], "the verdict found")
        assert len(verdict) > view.size.width

        def shown() -> list[str]:
            return [strip_text(strip) for strip in rows_shown(view)]

        # Wrapped: the line's head and its tail are both on screen, the tail on a row of its own.
        await wait_until(pilot, lambda: any("FAILED tests/test_pricing.py" in t for t in shown()), "its head")
        head = next(i for i, t in enumerate(shown()) if "FAILED tests/test_pricing.py" in t)
        assert "== 10.0" not in shown()[head] and "== 10.0" in shown()[head + 1]
        assert view.virtual_size.height > len(view.lines)

        await pilot.press("w")
        await wait_until(pilot, lambda: view.virtual_size.height == len(view.lines), "one row a line")
        await wait_until(pilot, lambda: any("FAILED tests/test_pricing.py" in t for t in shown()), "the line cropped")
        assert not any("== 10.0" in t for t in shown())  # its tail is cut off at the pane's edge
        assert all(len(t) <= view.size.width for t in shown())

        await pilot.press("w")  # the reader's line stays on screen, wrapped whole again
        await wait_until(pilot, lambda: any("== 10.0" in t for t in shown()), "wrapped again")
        assert verdict in line_texts(view)[view._cursor_index()]


def _failed_job_with_a_plan(director: Director, statuses: dict[str, str]) -> str:
    """The recorded failed job, given the recorded plan and these subtask statuses."""
    failed = "20260105-094500-3d4a"
    plan = director.events(RECORDED_JOB, kinds=(PlanReady,))[0]
    director.records.events.append(plan.model_copy(update={"job_id": failed, "id": None}))
    for sub, status in statuses.items():
        director.records.events.append(SubtaskStatus(job_id=failed, subtask=sub, status=status))
    return failed


async def test_reviewing_is_not_painted_the_red_of_failed(recorded: tuple[Settings, Path]) -> None:
    settings, _ = recorded
    job_id = _failed_job_with_a_plan(Director(settings), {"s1": "reviewing", "s2": "failed"})
    app = console(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_recorded(pilot, job_id)
        tree = screen.query_one(PlanTree)

        def painted(word: str) -> list[Segment]:
            return [segment for strip in rows_shown(tree) for segment in strip if word in segment.text]

        await wait_until(pilot, lambda: painted("reviewing") and painted("failed"), "both states in the tree")
        reviewing = {segment.style.color for segment in painted("reviewing")}
        failed = {segment.style.color for segment in painted("failed")}
        assert None not in reviewing | failed
        assert not reviewing & failed, (reviewing, failed)
        red = Color.parse("red")
        assert red in failed and red not in reviewing


async def test_a_subtask_folds_its_agents_away_and_back(recorded: tuple[Settings, Path]) -> None:
    app = console(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_recorded(pilot, RECORDED_JOB)
        tree = screen.query_one(PlanTree)
        await wait_until(pilot, lambda: "agent:s2.test_fixer.1" in tree_scopes(tree), "s2's agents in the tree")
        agents = [s for s in tree_scopes(tree) if s.startswith("agent:s2.")]
        assert any("test_fixer 1" in strip_text(row) for row in rows_shown(tree))
        others = [s for s in tree_scopes(tree) if not s.startswith("agent:s2.")]
        await select_node(pilot, "subtask:s2")
        await pilot.press("space")
        await wait_until(pilot, lambda: not any(s.startswith("agent:s2.") for s in tree_scopes(tree)), "s2 folded")
        assert tree_scopes(tree) == others  # only s2's agents went: s1's and s3's stay
        assert not any("test_fixer 1" in strip_text(row) for row in rows_shown(tree))
        await pilot.press("space")
        await wait_until(pilot, lambda: [s for s in tree_scopes(tree) if s.startswith("agent:s2.")] == agents,
                         "s2 unfolded")


async def test_the_header_sums_up_the_tests_in_one_line(recorded: tuple[Settings, Path]) -> None:
    settings, _ = recorded
    app = console(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_recorded(pilot, RECORDED_JOB)
        header = screen.query_one(JobHeader)
        await wait_until(pilot, lambda: "merged" in static_text(header), "the header")
        first = static_text(header).splitlines()[0]
        progress = screen.progress
        mark = {True: "✓", False: "✗"}
        assert progress.tests_after is not None and progress.tests_before is not None
        assert f"tests {mark[progress.tests_before]}→{mark[progress.tests_after.passed]}" in first
        # A job that has not started yet says so, in the same place.
        await pilot.press("escape")
        job = Director(settings).records.submit(Task(instruction="Not started", repo=str(recorded[1])))
        screen = await open_recorded(pilot, job.id)
        await wait_until(pilot, lambda: "no plan yet" in static_text(screen.query_one(JobHeader)), "its header")
        assert "tests -" in static_text(screen.query_one(JobHeader)).splitlines()[0]


async def test_a_queued_approval_counts_the_jobs_queued_ahead_of_it(recorded: tuple[Settings, Path]) -> None:
    settings, repo = recorded
    director = claimed_by_a_worker(settings)
    before = [director.records.submit(Task(instruction=f"Chore {n}", repo=str(repo))).id for n in range(2)]
    app = console(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen, header = await open_on_its_worker(pilot, "approve")
        await pilot.press("a")
        await wait_until(pilot, lambda: "approve queued: a worker takes it (2 queued jobs ahead)"
                         in static_text(header), "the answer and the two jobs ahead of it", timeout=60)
        # A job queued after the answer waits behind it: not counted.
        later = director.records.submit(Task(instruction="Chore after", repo=str(repo))).id
        await wait_until(pilot, lambda: later in app.feed.jobs, "the later job seen")
        await pilot.pause(0.3)
        assert "(2 queued jobs ahead)" in static_text(header)
        # A worker takes one of those ahead: one is left.
        director.records.set_status(before[0], JobStatus.RUNNING)
        await wait_until(pilot, lambda: "(1 queued job ahead)" in static_text(header), "one job ahead")


async def test_a_relative_repo_typed_in_the_form_is_stored_absolute(recorded: tuple[Settings, Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    settings, repo = recorded
    monkeypatch.chdir(repo / "inventory")  # the app runs in a folder of the repo
    launches = Launches()
    app = console(recorded, launches)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot, RECORDED_JOB)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewTaskScreen), "the form")
        await type_text(pilot, "Fix it")
        await pilot.press("shift+tab", "shift+tab")  # back up to the repository
        field = app.screen.query_one("#repo", Input)
        await wait_until(pilot, lambda: field.has_focus, "the repository field")
        await pilot.press("end", "ctrl+u", *"..")
        assert field.value == ".."
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: launches.calls, "the job launched")
    job = Director(settings).get(launches.calls[0][0])
    assert job.task.repo == str(repo)
    assert Path(job.task.repo).is_absolute()


def toasts_on_screen(app: ShipyardApp) -> list[str]:
    """The messages of the toasts the current screen shows."""
    return [toast._notification.message for rack in app.screen.query(ToastRack) if rack.display
            for toast in rack.query(Toast) if toast.display and toast.visible]


async def test_toasts_wait_for_a_dialog_to_close_then_come_bundled(recorded: tuple[Settings, Path]) -> None:
    settings, repo = recorded
    director = Director(settings)
    chores = [director.records.submit(Task(instruction=f"Chore {n}", repo=str(repo))).id for n in range(4)]
    app = console(recorded)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await listed(pilot, chores[-1])
        director.records.finish(chores[0], JobStatus.FAILED, error="tests fail")
        await wait_until(pilot, lambda: any(chores[0] in t for t in toasts_on_screen(app)), "the first job's toast")

        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewTaskScreen), "the form")
        assert toasts_on_screen(app) == []  # the toast already up is not drawn over the form
        for job_id in chores[1:]:
            director.records.finish(job_id, JobStatus.FAILED, error="tests fail")
        await wait_until(pilot, lambda: all(app.feed.jobs[j].status == JobStatus.FAILED for j in chores),
                         "the feed to see them finish")
        await pilot.pause(0.3)  # a few more polls: still nothing over the form
        assert toasts_on_screen(app) == []

        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, JobsScreen), "the form closed")
        # The three that finished meanwhile: one toast naming them all.
        await wait_until(pilot, lambda: any("3 jobs finished" in t for t in toasts_on_screen(app)), "the bundle")
        bundle = next(t for t in toasts_on_screen(app) if "3 jobs finished" in t)
        assert all(job_id[-4:] in bundle for job_id in chores[1:])
        assert not any(chores[1] in t for t in toasts_on_screen(app))  # not one toast each as well


async def test_s_sorts_the_jobs_newest_first_then_costliest_first_then_inbox_again(
        recorded: tuple[Settings, Path]) -> None:
    app = console(recorded)
    async with app.run_test(size=SIZE) as pilot:
        table = await listed(pilot, RECORDED_CAMPAIGN)
        inbox = [str(key.value) for key in table.rows]
        feed = app.feed
        cost = {job_id: float(str(table.get_cell(job_id, "cost")).lstrip("$").replace(",", "")) for job_id in inbox}

        await pilot.press("s")
        await wait_until(pilot, lambda: "by newest" in str(table.border_title), "sorted by age")
        assert [str(key.value) for key in table.rows] == sorted(inbox, key=lambda j: -feed.jobs[j].created_at)
        assert [str(key.value) for key in table.rows] != inbox

        await pilot.press("s")
        await wait_until(pilot, lambda: "by cost" in str(table.border_title), "sorted by cost")
        shown = [str(key.value) for key in table.rows]
        assert [cost[j] for j in shown] == sorted(cost.values(), reverse=True)  # as the cost column reads
        assert shown[0] == RECORDED_CAMPAIGN  # its iterations' jobs add up

        await pilot.press("s")
        await wait_until(pilot, lambda: [str(key.value) for key in table.rows] == inbox, "the inbox order again")
        assert "by" not in str(table.border_title)


async def test_p_sends_the_plan_of_a_job_a_worker_owns_back_with_a_note_queued_for_the_worker(
        recorded: tuple[Settings, Path]) -> None:
    director = claimed_by_a_worker(recorded[0])
    launches = Launches()
    app = console(recorded, launches)
    async with app.run_test(size=SIZE) as pilot:
        screen, header = await open_on_its_worker(pilot, "replan")
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "the note prompt")
        await pilot.press("enter")  # no note, nothing sent: the planner needs to know what is wrong
        await pilot.pause(0.2)
        assert isinstance(app.screen, PromptDialog)
        await type_text(pilot, "split the pricing work in two")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "replan queued: a worker takes it" in static_text(header),
                         "the answer shown pending", timeout=60)
        assert launches.calls == []  # the worker's to act on: queued, no process of our own
        assert not any(screen.check_action(a, ()) for a in ("approve", "edit_plan", "reject", "replan"))
        answers = [a for a in director.events(WAITING_JOB, kinds=(DirectorAnswer,)) if isinstance(a, DirectorAnswer)]
        assert [(a.action, a.reason) for a in answers] == [("replan", "split the pricing work in two")]
        queued = [e.payload["action"] for e in director.events(WAITING_JOB) if e.kind == "job.queued"]
        assert queued[-1] == "answer" and director.queue.holds(WAITING_JOB)


async def test_the_plans_sent_back_show_and_one_past_the_limit_is_refused_in_a_toast(
        recorded: tuple[Settings, Path]) -> None:
    settings, _ = recorded
    director = Director(settings)
    plan = director.plan(WAITING_JOB)
    _, limit = director.replans(WAITING_JOB)
    for n in range(1, limit + 1):  # sent back as often as it may be; the planner's plan each time the same
        director.records.events.append(PlanSentBack(job_id=WAITING_JOB, note=f"not right {n}", round=n))
        director.records.events.append(PlanReady(job_id=WAITING_JOB, role="planner", plan=plan))
    launches = Launches()
    app = console(recorded, launches)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_recorded(pilot, WAITING_JOB)
        panel = screen.query_one(PlanPanel)
        await wait_until(pilot, lambda: f"Plan {limit} sent back: not right {limit}" in static_text(panel),
                         "the plans sent back on the plan tab")
        assert "Plan 1 sent back: not right 1" in static_text(panel) and plan.summary in static_text(panel)
        await wait_until(pilot, lambda: screen.check_action("replan", ()), "the plan waiting")
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "the note prompt")
        await type_text(pilot, "once more")
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("the limit" in t for t in toasts_on_screen(app)), "the refusal's toast")
        refusal = next(t for t in toasts_on_screen(app) if "the limit" in t)
        assert refusal == (f"job {WAITING_JOB}'s plan was sent back {limit} times already, the limit (max_replans = "
                           f"{limit}): approve, edit or reject it")
        assert launches.calls == [] and director.pending_answer(WAITING_JOB) is None
        assert screen.check_action("approve", ())  # the plan still waits, its keys open
