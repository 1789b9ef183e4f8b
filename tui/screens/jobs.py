"""The jobs screen, inbox first: what needs the director, then what runs, then the rest; `/` searches,
number keys filter; the new-task form."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header, Input, Static

from orchestrator.store.jobs import Job
from tui.feed import Change
from tui.format import age, money, status_text
from tui.inbox import FILTERS, Filter, group, matches, ordered, short_id
from tui.screens.base import CURSOR_KEYS, TableScreen
from tui.screens.new_task import NewTaskScreen
from tui.widgets.panels import job_status

COLUMNS = ("job", "status", "done", "age", "cost", "task")
# The orders `s` goes through: the inbox's (what needs the director first), then the newest, then the costliest.
SORTS = ("inbox", "newest", "cost")
CELL_PADDING = 2
AGE_TICK = 15.0  # seconds between repaints of the ages when nothing else changes


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class JobsScreen(TableScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_task", "New", tooltip="Give Shipyard a task: a new job"),
        Binding("enter", "open_job", "Open", tooltip="Open the job under the cursor"),
        Binding("slash", "search", "Search", tooltip="Search the jobs by task, repo, id or branch"),
        Binding("f", "cycle_filter", "Filter", tooltip="Show the next kind of jobs (1-5 choose one)"),
        Binding("s", "cycle_sort", "Sort", show=False, tooltip="Order the jobs: inbox first, newest first, costliest"
                " first"),
        *(Binding(f.key, f"set_filter('{f.key}')", f"Filter: {f.name}", show=False) for f in FILTERS),
        *CURSOR_KEYS,
        Binding("escape", "clear_search", "Clear search", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter: Filter = FILTERS[0]
        self.search = ""
        self.sort = SORTS[0]
        self.jobs: list[Job] = []  # as listed, in order
        self._cells: dict[str, tuple[str, ...]] = {}
        self._dirty = True
        self._ready = False  # the table has its columns: rows may go in
        # Kept, not queried: the feed may call after the app has begun to take the screen apart.
        self.table: DataTable[Text | str] = DataTable(id="jobs-table", cursor_type="row", zebra_stripes=True)
        self.empty = Static("No jobs yet. Press [b]n[/b] to give Shipyard a task.", id="no-jobs")
        self.search_box = Input(placeholder="search task, repo, id, branch; enter keeps it, escape clears it",
                                id="jobs-search", compact=True)

    def compose(self) -> ComposeResult:
        yield Header()
        yield self.table
        yield self.empty
        yield self.search_box
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.table.add_column(column, key=column)
        self.search_box.display = False
        self._ready = True
        self._show()
        self.set_interval(AGE_TICK, self._tick)

    def feed_updated(self, change: Change) -> None:
        """Called by the app after a poll that brought something."""
        self._dirty = True
        if self.is_current:
            self._show()

    def on_screen_resume(self) -> None:
        if self._dirty:
            self._show()

    def on_resize(self) -> None:
        self._cells = {}  # the task column's width follows the screen's
        self._show()

    def _tick(self) -> None:
        if self.is_current:
            self._dirty = True
            self._show()

    def commands(self) -> Iterable[SystemCommand]:
        """Command palette entries besides the key bindings: one per filter."""
        for f in FILTERS:
            yield SystemCommand(f"Filter jobs: {f.name}", f"key {f.key}", lambda k=f.key: self.action_set_filter(k))

    # -- what is shown -------------------------------------------------------------------

    def _shown_jobs(self) -> list[Job]:
        feed = self.shipyard.feed
        words = self.search.lower().split()
        # A campaign's iteration jobs are on its own screen; a search finds them too.
        jobs = [job for job in ordered(list(feed.jobs.values()), feed.view)
                if (words or job.task.parent is None)
                and self.filter.keeps(job, feed.view(job.id)) and matches(job, feed.view(job.id), words)]
        if self.sort == "newest":
            jobs.sort(key=lambda job: -job.created_at)
        elif self.sort == "cost":
            spent = self._spent()
            jobs.sort(key=lambda job: -(feed.view(job.id).cost + spent.get(job.id, 0.0)))
        return jobs

    def _spent(self) -> dict[str, float]:
        """A campaign's cost is its iterations' jobs'."""
        feed = self.shipyard.feed
        spent: dict[str, float] = {}
        for job in feed.jobs.values():
            if job.task.parent is not None:
                spent[job.task.parent] = spent.get(job.task.parent, 0.0) + feed.view(job.id).cost
        return spent

    def _show(self) -> None:
        if not self._ready:  # the feed or a resize came before the mount: the mount shows it all
            return
        self._dirty = False
        feed = self.shipyard.feed
        jobs = self._shown_jobs()
        table = self.table
        table.display = bool(jobs)
        self.empty.display = not jobs
        if not jobs:
            self.empty.update("No jobs yet. Press [b]n[/b] to give Shipyard a task." if not feed.jobs else
                              f"No job matches ({self.filter.name}{', ' + repr(self.search) if self.search else ''})."
                              " Press [b]1[/b] for all jobs, [b]escape[/b] to clear the search.")
        needs = sum(1 for job in feed.jobs.values() if job.task.parent is None and group(job, feed.view(job.id)) == 0)
        searched = f" · /{self.search}" if self.search else ""
        by = f" · by {self.sort}" if self.sort != SORTS[0] else ""
        table.border_title = f"Jobs · {self.filter.name}{searched}{by} ({len(jobs)})"
        table.border_subtitle = f"{needs} need you" if needs else ""
        spent = self._spent()
        cells = {job.id: self._row(job, spent.get(job.id, 0.0)) for job in jobs}
        width = self._task_width(list(cells.values()))
        cells = {job_id: (*row[:-1], _cut(row[-1], width)) for job_id, row in cells.items()}
        if [j.id for j in jobs] == [j.id for j in self.jobs] and cells.keys() == self._cells.keys():
            # The same rows in the same order: only the cells that changed are repainted.
            for job_id, row in cells.items():
                if row != self._cells[job_id]:
                    for column, (new, old) in zip(COLUMNS, zip(row, self._cells[job_id], strict=True), strict=True):
                        if new != old:
                            table.update_cell(job_id, column, self._cell(column, new, feed.jobs[job_id]))
        else:
            selected = self.selected_job_id()
            table.clear()
            for job in jobs:
                row = cells[job.id]
                table.add_row(*(self._cell(c, v, job) for c, v in zip(COLUMNS, row, strict=True)), key=job.id)
            if selected in cells:
                table.move_cursor(row=table.get_row_index(selected), animate=False)
        self.jobs = jobs
        self._cells = cells

    def _row(self, job: Job, children_cost: float) -> tuple[str, ...]:
        """The row as plain strings: compared to what is on screen to repaint only what changed."""
        view = self.shipyard.feed.view(job.id)
        task = " ".join(job.task.instruction.split())
        if job.task.campaign is not None:
            done = f"it {view.iteration}" if view.iteration else "-"
            task = "◎ " + task
        else:
            done = f"{view.done}/{view.total}" if view.total else "-"
        return (short_id(job.id), job_status(job, view), done, age(job.created_at, self.shipyard.clock()),
                money(view.cost + children_cost), task)

    def _cell(self, column: str, value: str, job: Job) -> Text | str:
        if column == "status":
            return status_text(value)
        if column == "job" and group(job, self.shipyard.feed.view(job.id)) == 0:
            return Text(value, style="bold")
        if column == "task" and job.task.campaign is not None:
            return Text.assemble(("◎", "cyan"), value[1:])
        return value

    def _task_width(self, rows: list[tuple[str, ...]]) -> int:
        """What the other columns leave to the task (their widest cell, their padding, borders, scrollbar)."""
        widths = [max([len(name), *(len(row[i]) + 2 * (name == "status") for row in rows)])
                  for i, name in enumerate(COLUMNS[:-1])]
        return max(12, self.size.width - sum(widths) - CELL_PADDING * len(COLUMNS) - 4)

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
        job = self.shipyard.feed.jobs.get(self.selected_job_id() or "")
        if job is None:
            return
        if job.task.campaign is not None:
            from tui.screens.campaign import CampaignScreen

            self.app.push_screen(CampaignScreen(job))
        else:
            from tui.screens.job import JobScreen

            self.app.push_screen(JobScreen(job))

    def action_cycle_filter(self) -> None:
        index = FILTERS.index(self.filter)
        self.action_set_filter(FILTERS[(index + 1) % len(FILTERS)].key)

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._show()

    def action_set_filter(self, key: str) -> None:
        self.filter = next(f for f in FILTERS if f.key == key)
        self._show()

    def action_search(self) -> None:
        self.search_box.display = True
        self.search_box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input is self.search_box:
            self.search = event.value.strip()
            self._show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is self.search_box:
            self.search_box.display = bool(self.search)
            self.table.focus()

    def action_clear_search(self) -> None:
        self.search_box.value = ""
        self.search = ""
        self.search_box.display = False
        self.table.focus()
        self._show()

    def action_new_task(self) -> None:
        # Pushed at once, not from a worker: keys typed right after `n` reach the form, not this list.
        self.app.push_screen(NewTaskScreen(str(self.shipyard.repo), self.shipyard.submit_task), self._submitted)

    def _submitted(self, job: Job | None) -> None:
        if job is not None:
            self.notify(f"Job {job.id} submitted; it runs in the background.", title="Submitted")
            self.filter = FILTERS[0]
            self.search = ""
            self._show()
