"""What the app's full screens share: a typed way to the app, Director calls off the UI thread, accepting a job."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from textual.screen import Screen

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

    async def accept_job(self, job: Job) -> None:
        """Ask, then merge the job's branch into its base; the outcome as a toast."""
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
