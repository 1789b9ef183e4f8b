"""`?`: every key of the screen beneath, and the conventions that hold on every screen."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Label, Static

# What holds everywhere, as in lazygit and k9s.
EVERYWHERE = [
    ("?", "this help"), ("escape", "back, close, cancel"), ("j / k", "down / up, as ↓ / ↑"),
    ("tab / shift+tab", "the next / previous pane"), ("/", "search (the jobs list, the log)"),
    ("ctrl+p", "every action, by name"), ("q", "quit (the jobs list)"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, beneath: Screen[Any]) -> None:
        super().__init__()
        self.beneath = beneath

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold cyan", no_wrap=True)
        keys.add_column()
        seen: set[str] = set()
        for key, active in self.beneath.active_bindings.items():
            binding = active.binding
            what = binding.tooltip or binding.description
            if not what or what in seen or binding.action.startswith("app.") and key != "q":
                continue
            seen.add(what)
            keys.add_row(binding.key_display or self.app.get_key_display(binding), Text(what))
        common = Table.grid(padding=(0, 2))
        common.add_column(style="bold cyan", no_wrap=True)
        common.add_column()
        for key, what in EVERYWHERE:
            common.add_row(key, what)
        with Vertical(classes="dialog help"):
            yield Label(f"Keys · {type(self.beneath).__name__.removesuffix('Screen').lower() or 'screen'}",
                        classes="dialog-title")
            with VerticalScroll():
                yield Static(keys, id="help-keys")
                yield Label("Everywhere", classes="dialog-title help-section")
                yield Static(common)
        yield Footer(compact=True)

    def action_close(self) -> None:
        self.dismiss(None)
