"""Small modal dialogs: confirm an action, ask for a line of text, edit the plan as JSON."""

from __future__ import annotations

import json
from typing import ClassVar, TypeVar

from pydantic import ValidationError
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, SelectionList, Static, TextArea

from agents.plan import Plan


def plan_problems(exc: ValidationError) -> str:
    """One line per problem, naming the subtask by its number and id, with the value that was refused."""
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ".".join(str(p) for p in loc) or "plan"
        if len(loc) >= 2 and loc[0] == "subtasks" and isinstance(loc[1], int):
            where = f"subtask {loc[1] + 1}" + (f" {'.'.join(str(p) for p in loc[2:])}" if loc[2:] else "")
        message = error["msg"]
        if error["type"] == "string_pattern_mismatch":
            message = f"{error['input']!r} is not allowed: it must match {error['ctx']['pattern']}"
        lines.append(f"• {where}: {message}")
    return "\n".join(lines)


Answer = TypeVar("Answer")


class Dialog(ModalScreen[Answer]):
    """A modal dialog: its text on top, then its own widgets (`body`), its keys in the footer."""

    BOX = "dialog"  # the classes of the dialog's box

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes=self.BOX):
            yield Label(self.text, classes="dialog-text")
            yield from self.body()
        yield Footer(compact=True)

    def body(self) -> ComposeResult:
        """The widgets under the text."""
        yield from ()

    def action_cancel(self) -> None:
        """Back out: the answer is None."""
        self.dismiss(None)


class ConfirmDialog(Dialog[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("escape,n", "answer(False)", "No"),
    ]

    def __init__(self, question: str, confirm: str = "Yes", danger: bool = False) -> None:
        super().__init__(question)
        self.confirm = confirm
        self.danger = danger

    def body(self) -> ComposeResult:
        with Horizontal(classes="dialog-buttons"):
            yield Button(f"{self.confirm} (y)", id="yes", variant="error" if self.danger else "primary", compact=True)
            yield Button("No (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no" if self.danger else "#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptDialog(Dialog[str | None]):
    """One line of text; None when the director backs out."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", required: bool = True) -> None:
        super().__init__(title)
        self.placeholder = placeholder
        self.required = required

    def body(self) -> ComposeResult:
        yield Input(placeholder=self.placeholder, id="prompt-input", compact=True)
        yield Static("enter to send, escape to cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text or not self.required:
            self.dismiss(text)


class PlanEditor(Dialog[Plan | None]):
    """The plan as JSON; saving checks it against the orchestrator's Plan model first."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Approve edited plan"),
        # Priority: the text area would otherwise take Escape to move the focus on.
        Binding("escape", "cancel", "Cancel", priority=True),
    ]

    BOX = "dialog editor"

    def __init__(self, plan: Plan) -> None:
        super().__init__("Edit the plan, then ctrl+s to approve it (escape: keep it as it is)")
        self.plan = plan

    def body(self) -> ComposeResult:
        yield TextArea(self.plan.model_dump_json(indent=2), id="plan-json", show_line_numbers=True,
                       tab_behavior="indent", compact=True)
        yield Static("", id="plan-error", classes="dialog-error")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        error = self.query_one("#plan-error", Static)
        try:
            plan = Plan.model_validate(json.loads(self.query_one(TextArea).text))
        except json.JSONDecodeError as exc:
            error.update(Text(f"Not valid JSON: {exc}"))
            return
        except ValidationError as exc:
            error.update(Text("Not a valid plan:\n" + plan_problems(exc)))
            return
        self.dismiss(plan)


class RetryDialog(Dialog[tuple[list[str], str] | None]):
    """Which failed subtasks run again (all, by default) and a note for their agents; None backs out."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "retry", "Retry", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),
    ]

    def __init__(self, question: str, failed: list[tuple[str, str]]) -> None:
        super().__init__(question)
        self.failed = failed  # (id, title) of each failed subtask

    def body(self) -> ComposeResult:
        if self.failed:
            yield SelectionList[str](*((f"{sub_id}  {title}", sub_id, True) for sub_id, title in self.failed),
                                     id="retry-subtasks", compact=True)
        yield Input(placeholder="a note for the agents (optional)", id="retry-note", compact=True)
        yield Static("", id="retry-error", classes="dialog-error")
        yield Static("space picks a subtask, enter or ctrl+s retries, escape cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#retry-note", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_retry()

    def action_retry(self) -> None:
        chosen = self.query_one(SelectionList).selected if self.failed else []
        if self.failed and not chosen:
            self.query_one("#retry-error", Static).update("Pick at least one subtask (space), or escape.")
            return
        # All of them is the default: the orchestrator then also reruns those that never started.
        picked = [] if len(chosen) == len(self.failed) else list(chosen)
        self.dismiss((picked, self.query_one("#retry-note", Input).value.strip()))
