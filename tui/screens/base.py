"""What the app's full screens share: a typed way to the app, Director calls off the UI thread; and what the screens
of one job (a job, a campaign) share: the way back to the list, accepting the job; and the keys of a screen's table."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import work
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable

from orchestrator.store.jobs import Job
from sandboxes.git.branches import branch_name
from tui.screens.dialogs import ConfirmDialog

if TYPE_CHECKING:
    from tui.app import ShipyardApp


class ShipyardScreen(Screen[None]):
    @property
    def shipyard(self) -> ShipyardApp:
        return cast("ShipyardApp", self.app)

    async def call(self, function: Any, *args: Any) -> tuple[bool, Any]:
        """A Director call off the UI thread: whether it worked, and its result. An error becomes a toast."""
        try:
            return True, await asyncio.to_thread(function, *args)
        except Exception as exc:  # noqa: BLE001 - e.g. a dirty checkout refusing the merge
            self.notify(str(exc), title="Failed", severity="error", timeout=15)
            return False, None


# j and k move the cursor of a TableScreen's table, as ↓ and ↑ do.
CURSOR_KEYS = [Binding("j", "cursor('down')", "Down", show=False), Binding("k", "cursor('up')", "Up", show=False)]


class TableScreen(ShipyardScreen):
    """A screen around a table of rows, `table`, whose cursor CURSOR_KEYS move (in its BINDINGS)."""

    table: DataTable[Any]

    def action_cursor(self, direction: str) -> None:
        if direction == "down":
            self.table.action_cursor_down()
        else:
            self.table.action_cursor_up()


class JobDetailScreen(ShipyardScreen):
    """The screen of one job or campaign, opened from the list of jobs."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Jobs", tooltip="Back to the list of jobs")]

    job: Job

    def action_back(self) -> None:
        self.app.pop_screen()

    @work(group="action")
    async def action_accept(self) -> None:
        """Ask, then merge the job's branch into its base; the outcome as a toast."""
        job = self.job
        branch = branch_name(job.id)
        if not await self.app.push_screen_wait(ConfirmDialog(
                f"Merge {branch} into {job.task.base} of {job.task.repo}?", "Merge")):
            return
        ok, result = await self.call(self.shipyard.director.accept, job.id)
        if not ok:
            return
        if result.ok:
            self.notify(f"Merged {branch} into {job.task.base} ({(result.sha or '')[:10]}).", title="Accepted")
        else:
            self.notify(f"Not merged: {result.message}. Merge {branch} by hand to resolve them.",
                        title="Conflicts", severity="error", timeout=15)
