"""What the app's full screens share: a typed way to the app, whose director they act through."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from tui.app import ShipyardApp


class ShipyardScreen(Screen[None]):
    @property
    def shipyard(self) -> ShipyardApp:
        return cast("ShipyardApp", self.app)
