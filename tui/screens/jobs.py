"""The jobs screen: every job with its status, progress, age and cost; the new-task form."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Static

from orchestrator.store.job_view import JobView
from orchestrator.store.jobs import Job, JobStatus
from tui.format import age, label, money, status_text
from tui.screens.base import ShipyardScreen
from tui.screens.job import JobScreen
from tui.screens.new_task import NewTaskScreen
from tui.widgets.panels import job_status

FILTERS: list[JobStatus | None] = [None, *JobStatus]
COLUMNS = ("job", "status", "done", "age", "cost", "task")
# Finished jobs change rarely (an accept, a discard): their events are read every this many polls.
FULL_REFRESH_EVERY = 10
CELL_PADDING = 2


class JobsScreen(ShipyardScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_task", "New task", tooltip="Give Shipyard a task: a new job"),
        Binding("enter", "open_job", "Open", tooltip="Open the job under the cursor"),
        Binding("f", "cycle_filter", "Filter", tooltip="Show only the jobs in the next status"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter: JobStatus | None = None
        self.jobs: list[Job] = []
        self._progress: dict[str, JobView] = {}
        self._polls = 0
        self._rows: list[tuple[Text | str, ...]] = []
        self._shown: list[tuple[str, ...]] = []
        self._wake = asyncio.Event()
        # Kept, not queried: the watch loop may wake after the app has begun to take the screen apart.
        self.table: DataTable[Text | str] = DataTable(id="jobs-table", cursor_type="row", zebra_stripes=True)
        self.empty = Static("No jobs yet. Press [b]n[/b] to give Shipyard a task.", id="no-jobs")

    def compose(self) -> ComposeResult:
        yield Header()
        yield self.table
        yield self.empty
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.table
        for column in COLUMNS:
            table.add_column(column, key=column)
        table.border_title = "Jobs"
        self.run_worker(self._watch(), group="watch-jobs", exclusive=True)

    def on_screen_resume(self) -> None:
        self._wake.set()  # back from a job: show what changed meanwhile at once

    def on_resize(self) -> None:
        self._shown = []  # the task column's width follows the screen's
        self._show()

    def commands(self) -> Iterable[SystemCommand]:
        """Command palette entries besides the key bindings: one per status filter."""
        for status in FILTERS:
            yield SystemCommand(f"Filter jobs: {label(status) if status else 'all'}",
                                "show only jobs in this status", lambda s=status: self.set_filter(s))

    # -- following the store -------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            everything = self._polls % FULL_REFRESH_EVERY == 0
            if self.is_current or not self._polls:
                jobs = await self.shipyard.read("jobs", self._read, self.filter, everything)
                if jobs is not None:
                    self.jobs = jobs
                    self._polls += 1
                    # Rows are built here, between reads, never while a read folds events in.
                    self._rows = [self._row(job) for job in self.jobs]
                    self._show()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.shipyard.poll_interval)
            except TimeoutError:
                pass
            self._wake.clear()

    def _read(self, status: JobStatus | None, everything: bool) -> list[Job]:
        """The jobs, with the progress of each folded up to its latest event (runs in a thread)."""
        director = self.shipyard.director
        jobs = director.list(status, limit=200)
        for job in jobs:
            progress = self._progress.get(job.id)
            if progress is None:
                progress = self._progress[job.id] = JobView(job.id)
            elif job.status.finished and not everything:
                continue
            for event in director.events(job.id, after=progress.cursor):
                progress.apply(event)
        return jobs

    def _show(self) -> None:
        table = self.table
        rows = self._rows
        table.display = bool(rows)
        self.empty.display = not rows and self.filter is None
        table.border_title = f"Jobs · {label(self.filter) if self.filter else 'all'} ({len(rows)})"
        plain = [tuple(str(cell) for cell in row) for row in rows]
        if plain == self._shown:
            return
        self._shown = plain
        selected = self.selected_job_id()
        table.clear()
        task_width = self._task_width(rows)
        for job, row in zip(self.jobs, rows, strict=True):
            task = Text(job.task.instruction.replace("\n", " "), no_wrap=True)
            task.truncate(task_width, overflow="ellipsis")
            table.add_row(*row[:-1], task, key=job.id)
        if selected in {job.id for job in self.jobs}:
            table.move_cursor(row=table.get_row_index(selected), animate=False)

    def _row(self, job: Job) -> tuple[Text | str, ...]:
        progress = self._progress.get(job.id) or JobView(job.id)
        done = f"{progress.done}/{progress.total}" if progress.total else "-"
        return (job.id, status_text(job_status(job, progress)), done,
                age(job.created_at, self.shipyard.clock()), money(progress.cost), job.task.instruction)

    def _task_width(self, rows: list[tuple[Text | str, ...]]) -> int:
        widths = [max([len(name), *(len(str(row[i])) for row in rows)]) for i, name in enumerate(COLUMNS[:-1])]
        used = sum(widths) + CELL_PADDING * len(COLUMNS) + 2  # and the scrollbar
        return max(12, self.size.width - used)

    def selected_job_id(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        return cast(str, table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    # -- actions ---------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_job()

    def action_open_job(self) -> None:
        job_id = self.selected_job_id()
        job = next((j for j in self.jobs if j.id == job_id), None)
        if job is not None:
            self.app.push_screen(JobScreen(job))

    def action_cycle_filter(self) -> None:
        self.set_filter(FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)])

    def set_filter(self, status: JobStatus | None) -> None:
        self.filter = status
        self._wake.set()

    @work(group="new-task")
    async def action_new_task(self) -> None:
        job = await self.app.push_screen_wait(NewTaskScreen(str(self.shipyard.repo), self.shipyard.submit_task))
        if job is None:
            return
        self.notify(f"Job {job.id} submitted; it runs in the background.", title="Submitted")
        self.set_filter(None)
