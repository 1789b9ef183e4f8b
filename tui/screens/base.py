"""What the app's full screens share: a typed way to the app, and Director calls off the UI thread."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from textual.screen import Screen

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
