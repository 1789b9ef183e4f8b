"""The new-task form: what to do, where, and how; submitting it records the job and launches it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar

from pydantic import ValidationError
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Static, TextArea

from agents.validation import problems
from orchestrator.store.jobs import Job, Task

Submit = Callable[[Task], Job]


class OnOff(Checkbox):
    """A checkbox whose two states differ in shape and words, not only in colour: `✓ yes` / `  no`."""

    def __init__(self, words: tuple[str, str], **kwargs: object) -> None:
        self.words = words  # (on, off)
        super().__init__(words[1], **kwargs)  # type: ignore[arg-type]

    @property  # type: ignore[override]
    def BUTTON_INNER(self) -> str:  # noqa: N802 - Textual's name for the mark inside the box
        return "✓" if self.value else " "

    def watch_value(self) -> None:
        self.label = self.words[0] if self.value else self.words[1]


class NewTaskScreen(ModalScreen[Job | None]):
    # Focus is on the instruction from the first key on: keys typed right after `n` land there,
    # and Tab from it reaches the approval box whatever the machine's load.
    AUTO_FOCUS = "#instruction"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Submit"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, repo: str, submit: Submit, like: Task | None = None) -> None:
        super().__init__()
        self.repo = repo
        self.submit = submit
        self.like = like  # a task to start from ("duplicate as a new task")

    def compose(self) -> ComposeResult:
        like = self.like
        with Vertical(classes="dialog form"):
            yield Label("New task, like " + self.like.instruction[:40] if self.like else "New task",
                        classes="dialog-title")
            with Grid(id="task-fields"):
                yield Label("Repository")
                yield Input(like.repo if like else self.repo, id="repo", compact=True)
                yield Label("Base ref")
                yield Input(like.base if like else "HEAD", id="base", compact=True)
                yield Label("Instruction")
                yield TextArea(like.instruction if like else "", id="instruction", compact=True, tab_behavior="focus")
                yield Label("Approve plan")
                yield OnOff(("yes: wait for my approval of the plan", "no: run the plan without asking"),
                            value=bool(like and like.approve_plan), id="approve-plan", compact=True)
                yield Label("Candidates")
                yield Input(str(like.candidates if like else 1), id="candidates", type="integer", compact=True,
                            placeholder="1-5 coders per subtask")
                yield Label("Budget (USD)")
                yield Input(str(like.max_cost) if like and like.max_cost is not None else "", id="budget",
                            type="number", placeholder="no limit", compact=True)
            yield Static("", id="form-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Submit (ctrl+s)", id="submit", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
        yield Footer(compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, group="submit")
    async def action_submit(self) -> None:
        error = self.query_one("#form-error", Static)
        try:
            task = self._read_form()
        except ValidationError as exc:
            error.update(Text(problems(exc)))
            return
        except ValueError as exc:
            error.update(Text(str(exc)))
            return
        error.update("Submitting…")
        try:
            # Opening the repository and resolving the base ref touch git: off the UI thread.
            job = await asyncio.to_thread(self.submit, task)
        except Exception as exc:  # noqa: BLE001 - the form shows why, and the director can fix it
            error.update(Text(f"{type(exc).__name__}: {exc}"))
            return
        self.dismiss(job)

    def _read_form(self) -> Task:
        like = self.like.model_dump(include={"network", "test_command", "image"}) if self.like else {}
        instruction = self.query_one("#instruction", TextArea).text.strip()
        if not instruction:
            raise ValueError("Write the instruction: what should the agents do?")
        candidates = self.query_one("#candidates", Input).value.strip() or "1"
        budget = self.query_one("#budget", Input).value.strip()
        return Task(
            instruction=instruction,
            repo=self.query_one("#repo", Input).value.strip(),
            base=self.query_one("#base", Input).value.strip() or "HEAD",
            approve_plan=self.query_one("#approve-plan", Checkbox).value,
            candidates=int(candidates),
            max_cost=float(budget) if budget else None,
            **like,
        )
