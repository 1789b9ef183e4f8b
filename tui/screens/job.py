"""The job screen: the plan tree with live statuses, and the log, diff, tests, reviews, usage and plan of
whatever is chosen in the tree (the job, a subtask, an agent); the director's actions on the job."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import ClassVar

from textual import events, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, Static, TabbedContent, TabPane, Tree

from orchestrator.store.events import (
    DirectorAnswer,
    Event,
    JobFinished,
    JobStatusChanged,
    JobWaiting,
    PlanApproved,
    PlanRejected,
    PlanSentBack,
)
from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Job, JobStatus
from sandboxes.git.branches import branch_name
from tui.diff import parse
from tui.logbook import JOB, LOG_WINDOW, Line, LogBook
from tui.screens.base import JobDetailScreen
from tui.screens.dialogs import ConfirmDialog, PlanEditor, PromptDialog, RetryDialog
from tui.widgets.diff_view import DiffView
from tui.widgets.log_view import LogView
from tui.widgets.panels import (
    JobHeader,
    PlanPanel,
    ReviewsPanel,
    TestsPanel,
    UsageTable,
    job_status,
    scope_subtask,
)
from tui.widgets.plan_tree import PlanTree

BATCH = 500  # events read and rendered at a time: big enough to catch up fast, small enough to stay responsive
REFRESH = 0.2  # seconds between repaints of the tree, header and panels
TABS = ("log", "diff", "tests", "review", "usage", "plan")
# Events that say the job's process took up what the director launched: its status moved, or the plan was answered.
TAKEN_UP = (JobStatusChanged, JobFinished, JobWaiting, PlanApproved, PlanRejected, PlanSentBack)


class JobScreen(JobDetailScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve", tooltip="Approve the plan: the job runs on"),
        Binding("e", "edit_plan", "Edit", tooltip="Edit the plan as JSON, then approve it"),
        Binding("x", "reject", "Reject", tooltip="Reject the plan: the job ends"),
        Binding("p", "replan", "Re-plan", tooltip="Send the plan back with a note: the planner plans again, and the "
                "new plan waits for you"),
        Binding("c", "cancel_job", "Cancel", tooltip="Cancel the job: its agents stop at their next step"),
        Binding("r", "retry", "Retry", tooltip="Run the failed subtasks again (pick them, add a note), or "
                "a cancelled job on from where it stopped; what succeeded stays"),
        Binding("n", "note", "Note", tooltip="Send a note to the job's agents"),
        Binding("m", "accept", "Accept", tooltip="Accept: merge the job branch into the base branch"),
        Binding("d", "discard", "Discard", tooltip="Discard the job: delete its branches"),
        Binding("y", "copy_branch", "Copy branch", tooltip="Copy the name of the branch on view"),
        Binding("t", "duplicate", "As new task", tooltip="A new task like this one, in the form to change first"),
        Binding("right_square_bracket", "step_file(1)", "Next file", tooltip="The diff's next file"),
        Binding("left_square_bracket", "step_file(-1)", "Previous file", show=False,
                tooltip="The diff's previous file"),
        Binding("z", "zoom", "Zoom", tooltip="The pane on its own, the tree hidden (again: both)"),
        Binding("slash", "search_log", "Search", tooltip="Find text in the log"),
        # Priority: the tabs' keys work whichever pane has the focus (the tree, the log, the diff's files).
        *(Binding(str(i), f"show_tab('{tab}')", f"{tab.title()} tab", show=False, priority=True)
          for i, tab in enumerate(TABS, start=1)),
    ]

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job
        self.progress = JobView(job.id)
        self.logbook = LogBook()
        self.scope = JOB
        self.ingested = 0  # events taken in, for the benchmark
        self._changed: set[str] = {"plan", "job", "tests", "verdicts", "agents", "commits"}
        self._diff_shown: tuple[str, str] | None = None
        # Set when an approve, reject, re-plan or retry is on its way to the job's process: until the job's
        # status moves, pressing the key again would only start a second process.
        self._launched = False
        # The newest event when it was set: a move of the job logged after it says the process took it up, even
        # when the job's row went there and back (planning, then waiting again) between two reads.
        self._launched_at = 0
        # Kept, not queried: the follow loop may wake after the app has begun to take the screen apart.
        self.plan_tree = PlanTree()
        self.log_view = LogView(id="log-view", details=self.logbook.details)
        self.log_more = Static(id="log-more")
        self.log_search = Input(placeholder="find in the log: enter finds, n/N the next and previous, escape closes",
                                id="log-search", compact=True)
        self.header = JobHeader(id="job-header")
        awaiting = job.status == JobStatus.AWAITING_APPROVAL
        self.tabs = TabbedContent(id="detail", initial="plan" if awaiting else "log")
        self.diff_view = DiffView(id="diff-view")
        self.tests_panel = TestsPanel(id="tests-panel")
        self.reviews_panel = ReviewsPanel(id="reviews-panel")
        self.usage_table = UsageTable(id="usage-table")
        self.plan_panel = PlanPanel(id="plan-panel")

    def compose(self) -> ComposeResult:
        yield Header()
        yield self.header
        with Horizontal(id="job-body"):
            yield self.plan_tree
            with self.tabs:
                with TabPane("Log", id="log"), Vertical():
                    yield self.log_view
                    yield self.log_more
                    yield self.log_search
                with TabPane("Diff", id="diff"):
                    yield self.diff_view
                with TabPane("Tests", id="tests"), VerticalScroll():
                    yield self.tests_panel
                with TabPane("Review", id="review"), VerticalScroll():
                    yield self.reviews_panel
                with TabPane("Usage", id="usage"):
                    yield self.usage_table
                with TabPane("Plan", id="plan"), VerticalScroll():
                    yield self.plan_panel
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.log_more.display = False
        self.log_search.display = False
        self.plan_tree.focus()
        self.run_worker(self._follow(), group="follow", exclusive=True)
        self.set_interval(REFRESH, self._flush)

    # -- following the job -----------------------------------------------------------

    async def _follow(self) -> None:
        while True:
            read = await self.shipyard.read(f"job {self.job.id}", self._read, self.progress.cursor)
            if read is None:
                await asyncio.sleep(1)
                continue
            job, batch = read
            self._set_job(job)
            self.ingest(batch)
            # A full batch means more are waiting: read on at once, after the loop has
            # handled keys and repaints.
            await asyncio.sleep(0 if len(batch) == BATCH else self.shipyard.poll_interval)

    def _read(self, after: int) -> tuple[Job, list[Event]]:
        director = self.shipyard.director
        return director.get(self.job.id), director.events(self.job.id, after=after, limit=BATCH)

    def ingest(self, events: list[Event]) -> None:
        """Fold events in and append the log lines of the scope on view; the rest repaints on the next flush."""
        shown: list[Line] = []
        for event in events:
            self.progress.apply(event)
            shown.extend(self.logbook.add(event).get(self.scope, ()))
            if self._launched and (event.id or 0) > self._launched_at and isinstance(event, TAKEN_UP):
                self._launched = False
                self.refresh_bindings()
        if shown:
            self.log_view.append(shown[-LOG_WINDOW:])
        self.ingested += len(events)

    def _set_job(self, job: Job) -> None:
        before = self.job
        self.job = job
        if (job.status, job.error) != (before.status, before.error):
            self._changed.add("job")
            self._launched = False
            self.refresh_bindings()
            if job.status == JobStatus.AWAITING_APPROVAL:
                self.show_tab("plan")

    def _flush(self) -> None:
        changed = self._changed | self.progress.changed
        self._changed, self.progress.changed = set(), set()
        now = self.shipyard.clock()
        status = job_status(self.job, self.progress)
        if "job" in changed:
            self.refresh_bindings()  # accepting or discarding changes what can be done next
        if changed:
            self.plan_tree.sync(self.progress, status, changed)
        if changed or not self.job.status.finished:  # a running job's clock ticks
            self.header.show(self.job, self.progress, now, self.pending())
        self._show_panel(changed, now)

    def _show_panel(self, changed: set[str], now: float, force: bool = False) -> None:
        """Repaint the active tab when what it shows has changed."""
        tab = self.tabs.active
        agents_changed = force or any(c.startswith("agent") for c in changed)
        if tab == "tests" and (force or "tests" in changed or "job" in changed):
            self.tests_panel.show(self.progress, self.scope)
        elif tab == "review" and (force or "verdicts" in changed):
            self.reviews_panel.show(self.progress, self.scope)
        elif tab == "usage" and agents_changed:
            self.usage_table.show(self.progress, self.scope, now)
        elif tab == "plan" and (force or "plan" in changed or any(c.startswith("subtask:") for c in changed)):
            self.plan_panel.show(self.progress, self.scope)
        elif tab == "diff" and (force or "commits" in changed):
            self._load_diff()

    # -- the scope and the tabs -------------------------------------------------------

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        scope = event.node.data or JOB
        if scope == self.scope:
            return
        self.scope = scope
        self.log_view.set_lines(self.logbook.lines(scope))
        self._diff_shown = None
        self._show_panel(set(), self.shipyard.clock(), force=True)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()  # what the footer offers follows the tab
        self._show_panel(set(), self.shipyard.clock(), force=True)

    def action_show_tab(self, tab: str) -> None:
        self.show_tab(tab)

    def show_tab(self, tab: str) -> None:
        focused = self.focused
        if focused is not None and self.tabs in focused.ancestors and self.tabs.active != tab:
            # The focus leaves the pane that hides: else the tabs follow it back to that pane.
            self.plan_tree.focus()
        self.tabs.active = tab

    @work(group="diff", exclusive=True)
    async def _load_diff(self) -> None:
        view = self.diff_view
        sub_id = scope_subtask(self.progress, self.scope)
        if sub_id is not None:
            sub = self.progress.subtasks.get(sub_id)
            if sub is None or not sub.base or not sub.branch:
                view.message(f"{sub_id} has not started: no changes yet.")
                return
            base, branch, title = sub.base, sub.branch, f"{sub_id}'s own changes"
        else:
            if not self.progress.base_sha or not self.progress.job_branch:
                view.message("The job has not started: no changes yet.")
                return
            base, branch, title = self.progress.base_sha, self.progress.job_branch, "The whole job"
        try:
            head, text = await asyncio.to_thread(self._diff, base, branch)
        except Exception as exc:  # noqa: BLE001 - e.g. a discarded job's branches are gone
            view.message(f"No diff: {exc}")
            self._diff_shown = None
            return
        if self._diff_shown == (base, head):
            return  # the same commits: keep the reader's place in the view
        self._diff_shown = (base, head)
        view.show(title, parse(text))

    def _diff(self, base: str, branch: str) -> tuple[str, str]:
        return self.shipyard.director.changes(self.job.id, base, branch)

    # -- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        status = self.job.status
        settled = self.progress.discarded or bool(self.progress.accepted and self.progress.accepted.ok)
        # An answer on its way (recorded, a process or a worker to act on it) locks the plan's keys.
        waiting = status == JobStatus.AWAITING_APPROVAL and not self._launched and self.progress.pending_answer is None
        allowed = {
            "approve": waiting,
            "edit_plan": waiting,
            "reject": waiting,
            "replan": waiting,
            "cancel_job": not status.finished,
            "note": not status.finished,
            "retry": status in (JobStatus.FAILED, JobStatus.PARTIAL, JobStatus.CANCELLED)
            and not self.progress.discarded and not self._launched,
            "accept": status.delivered and not settled,
            "discard": status.finished and not settled,
            "search_log": self.tabs.active == "log",
            "step_file": self.tabs.active == "diff",
            # Typing in the log's search box: digits are text there.
            "show_tab": not self.log_search.has_focus,
        }
        return allowed.get(action, True)

    def pending(self) -> str | None:
        """What the header says while the director's answer waits for a process or a worker to act on it."""
        answer = self.progress.pending_answer
        if self.job.status != JobStatus.AWAITING_APPROVAL or (answer is None and not self._launched):
            return None
        what = f"{answer.action} queued" if answer else "answer on its way"
        if self.progress.worker:
            # The jobs queued before the answer: those a worker takes first (one queued later waits behind it).
            since = answer.ts if answer else self.shipyard.clock()
            ahead = sum(1 for job in self.shipyard.feed.jobs.values()
                        if job.status == JobStatus.QUEUED and job.id != self.job.id and job.updated_at <= since)
            return f"⧗ {what}: a worker takes it ({ahead} queued job{'s' * (ahead != 1)} ahead)"
        return f"⧗ {what}: the job's process is starting"

    def commands(self) -> Iterable[SystemCommand]:
        for number, tab in enumerate(TABS, start=1):
            yield SystemCommand(f"Show {tab}", f"the {tab} tab (key {number})", lambda t=tab: self.show_tab(t))

    @work(group="action")
    async def action_approve(self) -> None:
        if await self._answer(DirectorAnswer(action="approve")):
            self.notify(f"Plan approved: job {self.job.id} runs on in the background.", title="Approved")

    @work(group="action")
    async def action_edit_plan(self) -> None:
        current = self.progress.plan
        plan = await self.app.push_screen_wait(PlanEditor(current)) if current else None
        if plan is not None and await self._answer(DirectorAnswer(action="edit", plan=plan)):
            self.notify(f"Edited plan approved: job {self.job.id} runs on.", title="Approved")

    @work(group="action")
    async def action_reject(self) -> None:
        reason = await self.app.push_screen_wait(
            PromptDialog("Reject the plan: why? (for the record)", "reason", required=False))
        if reason is not None and await self._answer(DirectorAnswer(action="reject", reason=reason)):
            self.notify(f"Plan of job {self.job.id} rejected.", title="Rejected")

    @work(group="action")
    async def action_replan(self) -> None:
        note = await self.app.push_screen_wait(
            PromptDialog("Send the plan back: what is wrong with it? (the planner plans again with your note)",
                         "what is wrong with the plan"))
        if note and await self._answer(DirectorAnswer(action="replan", reason=note)):
            self.notify(f"Plan of job {self.job.id} sent back: the planner plans again, the new plan waits for you.",
                        title="Sent back")

    @work(group="action")
    async def action_cancel_job(self) -> None:
        if await self.app.push_screen_wait(ConfirmDialog(
                f"Cancel job {self.job.id}? Its agents stop at their next step; its branches stay.",
                "Cancel job", danger=True)):
            ok, _ = await self.call(self.shipyard.director.cancel, self.job.id)
            if ok:
                self.notify(f"Job {self.job.id} cancelled.", title="Cancelled")

    @work(group="action")
    async def action_retry(self) -> None:
        what = "go on from where it was cancelled" if self.job.status == JobStatus.CANCELLED else \
            "run its failed subtasks again"
        failed = [(s.id, s.title) for s in self.progress.subtasks.values() if s.status == "failed"]
        if self.job.status == JobStatus.CANCELLED:
            failed = []  # it goes on from its checkpoint: nothing to pick
        answer = await self.app.push_screen_wait(RetryDialog(f"Retry job {self.job.id}: it will {what}.", failed))
        if answer is None:
            return
        subtasks, note = answer
        if note:
            ok, _ = await self.call(self.shipyard.director.note, self.job.id, note)
            if not ok:
                return
        if self._launch("retry", subtasks or None):
            which = f" ({', '.join(subtasks)})" if subtasks else ""
            self.notify(f"Job {self.job.id}: it will {what}{which}.", title="Retrying")

    def action_duplicate(self) -> None:
        from tui.screens.new_task import NewTaskScreen

        def submitted(job: Job | None) -> None:
            if job is not None:
                self.notify(f"Job {job.id} submitted, like {self.job.id}.", title="Submitted")

        self.app.push_screen(NewTaskScreen(str(self.shipyard.repo), self.shipyard.submit_task, like=self.job.task),
                             submitted)

    def action_step_file(self, by: int) -> None:
        self.diff_view.step_file(by)

    def action_zoom(self) -> None:
        self.toggle_class("zoomed")

    def action_search_log(self) -> None:
        self.log_search.display = True
        self.log_search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is self.log_search:
            event.stop()
            if not self.log_view.find(event.value.strip()):
                self.notify(f"No line holds {event.value.strip()!r}.", severity="warning")
            self.log_view.focus()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.log_search.has_focus:
            event.stop()
            self.log_search.display = False
            self.log_view.focus()

    def on_log_view_unseen(self, event: LogView.Unseen) -> None:
        self.log_more.display = bool(event.count)
        self.log_more.update(f"↓ {event.count} new line{'s' * (event.count != 1)} below · end follows the log")

    @work(group="action")
    async def action_note(self) -> None:
        text = await self.app.push_screen_wait(
            PromptDialog("Note to the job's agents (added to the prompts of those that start next)"))
        if text:
            ok, _ = await self.call(self.shipyard.director.note, self.job.id, text)
            if ok:
                self.notify("Noted: the agents that start next will read it.", title="Note sent")

    @work(group="action")
    async def action_discard(self) -> None:
        if not await self.app.push_screen_wait(ConfirmDialog(
                f"Discard job {self.job.id}? Its branches are deleted from {self.job.task.repo}.",
                "Discard", danger=True)):
            return
        ok, _ = await self.call(self.shipyard.director.discard, self.job.id)
        if ok:
            self.notify(f"Job {self.job.id} discarded.", title="Discarded")

    def action_copy_branch(self) -> None:
        sub_id = scope_subtask(self.progress, self.scope)
        sub = self.progress.subtasks.get(sub_id) if sub_id else None
        branch = (sub.branch if sub and sub.branch else None) or self.progress.job_branch or branch_name(self.job.id)
        self.app.copy_to_clipboard(branch)
        self.notify(branch, title="Branch name copied")

    async def _answer(self, answer: DirectorAnswer) -> bool:
        """Record the director's answer to the plan, then have it acted on: by the worker that owns the job
        (queued, at once), or by a process of its own."""
        director = self.shipyard.director
        ok, recorded = await self.call(director.record_answer, self.job.id, answer)
        if not ok:
            return False
        self._launched, self._launched_at = True, recorded.id or 0
        self.refresh_bindings()
        self._changed.add("job")
        if self.progress.worker:
            ok, _ = await self.call(director.answer_later, self.job.id)
            return ok
        return self._launch("answer")

    def _launch(self, action: str, subtasks: list[str] | None = None) -> bool:
        try:
            self.shipyard.launch(self.job.id, action, subtasks)
        except Exception as exc:  # noqa: BLE001 - shown to the director; the job is unchanged
            self.notify(f"Could not start the job's process: {exc}", title="Failed", severity="error")
            self._launched = False
            self.refresh_bindings()
            return False
        self._launched, self._launched_at = True, max(self._launched_at, self.progress.cursor)
        self.refresh_bindings()
        return True
