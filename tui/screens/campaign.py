"""The campaign screen: a goal and its verifier pursued in iterations of jobs. Its figure over time, each
iteration's options and the one kept, the job under way, the budget left; stop, top up, note, accept."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Static

from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Job, JobStatus
from sandboxes.git.branches import branch_name
from tui.feed import Change
from tui.format import money, short, sparkline, status_text
from tui.inbox import short_id
from tui.screens.base import CURSOR_KEYS, JobDetailScreen, TableScreen
from tui.screens.dialogs import ConfirmDialog, PromptDialog
from tui.widgets.panels import job_status

COLUMNS = ("it", "options", "kept", "figure", "spent")


def figure(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


class CampaignScreen(JobDetailScreen, TableScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_job", "Open job", tooltip="Open the iteration's job (the one kept, else the first)"),
        Binding("c", "stop", "Stop", tooltip="Stop the campaign: what it merged stays on its branch"),
        Binding("u", "topup", "Top up", tooltip="Give the campaign more budget: it goes on where it stood"),
        Binding("n", "note", "Note", tooltip="A note to the campaign's planner and agents"),
        Binding("m", "accept", "Accept", tooltip="Merge the campaign's branch into the base branch"),
        *CURSOR_KEYS,
    ]

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job
        self._launched = False  # a top-up on its way: until the status moves, one is enough
        self.summary = Static(id="campaign-summary")
        self.table: DataTable[Text | str] = DataTable(id="campaign-iterations", cursor_type="row")
        self.now = Static(id="campaign-now")
        self._shown: list[tuple[str, ...]] = []
        self._ready = False  # the table has its columns: rows may go in

    def compose(self) -> ComposeResult:
        yield Header()
        yield self.summary
        yield self.table
        yield self.now
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.table.add_column(column, key=column)
        self.table.border_title = "Iterations"
        self.table.focus()
        self._ready = True
        self._show()

    def feed_updated(self, change: Change) -> None:
        if self.job.id in change.jobs or any(self.shipyard.feed.jobs.get(i, self.job).task.parent == self.job.id
                                             for i in change.jobs):
            self._show()

    def on_screen_resume(self) -> None:
        self._show()

    def on_resize(self) -> None:
        self._shown = []
        self._show()

    # -- what it shows ---------------------------------------------------------------------

    @property
    def view(self) -> JobView:
        return self.shipyard.feed.view(self.job.id)

    def iteration_jobs(self) -> list[Job]:
        return [job for job in self.shipyard.feed.jobs.values() if job.task.parent == self.job.id]

    def spent(self) -> float:
        feed = self.shipyard.feed
        return self.view.cost + sum(feed.view(child.id).cost for child in self.iteration_jobs())

    def budget(self) -> float | None:
        campaign = self.job.task.campaign
        if campaign is None or campaign.budget is None:
            return None
        return campaign.budget + self.view.topped_up

    def _show(self) -> None:
        if not self._ready:
            return
        self.job = self.shipyard.feed.jobs.get(self.job.id, self.job)
        self.refresh_bindings()
        self.summary.update(self._summary())
        rows = [self._row(number) for number in sorted(self.view.iterations)]
        if rows != self._shown:
            keep = self.table.cursor_row
            self.table.clear()
            for row in rows:
                self.table.add_row(*row, key=row[0])
            if rows:
                self.table.move_cursor(row=min(keep, len(rows) - 1), animate=False)
            self._shown = rows
        self.now.update(self._now())

    def _summary(self) -> Group:
        view, job = self.view, self.job
        campaign = job.task.campaign
        assert campaign is not None  # the jobs list opens only campaigns here
        better = "lower" if campaign.figure == "lower" else "higher"
        figures = " → ".join(figure(f) for f in view.figures) or "not measured yet"
        spent, budget = self.spent(), self.budget()
        money_line = f"spent {money(spent)}" + (
            f" of {money(budget)} · {money(max(0.0, budget - spent))} left" if budget is not None else " · no budget")
        head = Text.assemble(status_text(job_status(job, view)), "  ", (job.id, "bold"),
                             f"  iteration {view.iteration or '-'} of at most {campaign.max_iterations}",
                             (f" · on {view.worker}" if view.worker else "", "dim"))
        goal = Text.assemble(("goal ", "dim"), short(job.task.instruction, 400))
        verifier = Text.assemble(("until ", "dim"), (f"`{campaign.verifier}`", "cyan"), (" passes", "dim"))
        line = Text.assemble(("figure ", "dim"), (sparkline(view.figures), "green bold"), "  ", figures,
                             (f"  ({better} is better)", "dim"))
        cost = Text(money_line, style="yellow" if view.paused else "")
        lines = [head, goal, verifier, line, cost]
        for each in lines:
            each.no_wrap, each.overflow = True, "ellipsis"
        if job.error and job.status.finished:
            lines.append(Text(short(job.error, 300), style="red"))
        return Group(*lines)

    def _row(self, number: int) -> tuple[str, ...]:
        it = self.view.iterations[number]
        options = " | ".join(title or short_id(job_id) for title, job_id in zip(
            it.titles or [""] * len(it.jobs), it.jobs, strict=False)) or "-"
        if it.winner:
            kept = short_id(it.winner)
        elif it.digest:
            kept = "none"
        else:
            kept = "…"
        moved = f"{figure(it.figure_before)} → {figure(it.figure_now)}" if it.digest else "running"
        # What the other columns leave (theirs at most: "12", "c4a9", "12.5 → 10", "$0.0000"), borders, padding.
        room = max(12, self.size.width - 3 - 5 - 12 - 8 - 2 * len(COLUMNS) - 4)
        options = options if len(options) <= room else options[: room - 1] + "…"
        return (str(number), options, kept, moved, money(it.spent) if it.spent is not None else "-")

    def _now(self) -> Group:
        view, feed = self.view, self.shipyard.feed
        parts: list[Text | Table] = []
        if view.paused is not None:
            parts.append(Text(f"Waiting for budget: {money(view.paused.spent)} spent of {money(view.paused.budget)}."
                              " Press u to top it up.", style="yellow bold"))
        if self._launched and self.job.status == JobStatus.AWAITING_BUDGET:
            parts.append(Text("⧗ top-up on its way: the campaign goes on shortly", style="yellow"))
        running = [feed.jobs[j] for j in view.option_jobs if j in feed.jobs]
        if running:
            grid = Table.grid(padding=(0, 1))
            for child in running:
                child_view = feed.view(child.id)
                grid.add_row(Text("now", style="dim"), Text(short_id(child.id), style="bold"),
                             status_text(job_status(child, child_view)),
                             f"{child_view.done}/{child_view.total}" if child_view.total else "-",
                             Text(short(child.task.instruction, 200), overflow="ellipsis", no_wrap=True))
            parts.append(grid)
        if view.digests:
            parts.append(Text.assemble(("last digest ", "dim"), view.digests[-1]))
        return Group(*parts) if parts else Group(Text("No iteration yet.", style="dim"))

    # -- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        status = self.job.status
        settled = self.view.discarded or bool(self.view.accepted and self.view.accepted.ok)
        allowed = {
            "stop": not status.finished,
            "topup": status == JobStatus.AWAITING_BUDGET and not self._launched,
            "note": not status.finished,
            "accept": status.delivered and not settled,
        }
        return allowed.get(action, True)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_job()

    def action_open_job(self) -> None:
        from tui.screens.job import JobScreen

        feed = self.shipyard.feed
        chosen = None
        if self.table.row_count:
            number = int(str(self.table.coordinate_to_cell_key(self.table.cursor_coordinate).row_key.value))
            it = self.view.iterations.get(number)
            chosen = (it.winner or (it.jobs[0] if it.jobs else None)) if it else None
        chosen = chosen or next(iter(self.view.option_jobs), None)
        if chosen in feed.jobs:
            self.app.push_screen(JobScreen(feed.jobs[chosen]))

    @work(group="action")
    async def action_stop(self) -> None:
        if await self.app.push_screen_wait(ConfirmDialog(
                f"Stop campaign {self.job.id}? Its job under way stops at its next step; what it merged stays on "
                f"{branch_name(self.job.id)}.", "Stop", danger=True)):
            if (await self.call(self.shipyard.director.cancel, self.job.id))[0]:
                self.notify(f"Campaign {self.job.id} stopped.", title="Stopped")

    @work(group="action")
    async def action_topup(self) -> None:
        text = await self.app.push_screen_wait(PromptDialog("Top up the campaign's budget by how many USD?", "e.g. 2"))
        if text is None:
            return
        try:
            amount = float(text.strip().lstrip("$"))
        except ValueError:
            self.notify(f"{text!r} is not an amount of USD: write a number such as 2 or 0.5.", severity="error")
            return
        if amount <= 0:
            self.notify("A top-up is more than $0.", severity="error")
            return
        director = self.shipyard.director
        if self.view.worker:  # a worker holds the campaign: it goes on there
            ok = (await self.call(director.topup_later, self.job.id, amount))[0]
        else:
            ok = (await self.call(director.record_topup, self.job.id, amount))[0]
            if ok:
                try:
                    self.shipyard.launch(self.job.id, "answer")
                except Exception as exc:  # noqa: BLE001 - the director sees why; the top-up stays recorded
                    self.notify(f"Could not start the campaign's process: {exc}", title="Failed", severity="error")
                    return
        if ok:
            self._launched = True
            self.notify(f"Campaign {self.job.id}: {money(amount)} more; it goes on where it stood.", title="Topped up")
            self._show()

    @work(group="action")
    async def action_note(self) -> None:
        text = await self.app.push_screen_wait(
            PromptDialog("Note to the campaign (its next iterations' planners and agents read it)"))
        if text and (await self.call(self.shipyard.director.note, self.job.id, text))[0]:
            self.notify("Noted: the next iteration reads it.", title="Note sent")
