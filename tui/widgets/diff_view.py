"""A diff file by file: the changed files with their line counts, and the chosen file highlighted."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import OptionList, RichLog, Static
from textual.widgets.option_list import Option

from tui.diff import FileDiff, render


class DiffView(Vertical):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.files: list[FileDiff] = []
        self.heading = Static(id="diff-title")
        self.file_list = OptionList(id="diff-files", compact=True)
        self.body = RichLog(id="diff-body", wrap=False, auto_scroll=False)

    def compose(self) -> ComposeResult:
        yield self.heading
        yield self.file_list
        yield self.body

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._render_current())

    def show(self, title: str, files: list[FileDiff]) -> None:
        self.files = files
        changed = f"{len(files)} file{'s' * (len(files) != 1)}  +{sum(f.insertions for f in files)} " \
                  f"-{sum(f.deletions for f in files)}"
        self.heading.update(Text.assemble((title, "bold"), "  ", (changed, "dim"), no_wrap=True, overflow="ellipsis"))
        options = self.file_list
        keep = options.highlighted
        options.clear_options()
        options.add_options([Option(f.title) for f in files])
        options.display = bool(files)
        if files:
            options.highlighted = keep if keep is not None and keep < len(files) else 0
        self._render_current()

    def message(self, text: str) -> None:
        """No diff to show, and why."""
        self.files = []
        self.heading.update(Text(text, style="dim"))
        self.file_list.clear_options()
        self.file_list.display = False
        self.body.clear()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._render_current()

    def _render_current(self) -> None:
        body = self.body
        body.clear()
        index = self.file_list.highlighted
        if not self.files or index is None or index >= len(self.files):
            body.write(Text("No changes.", style="dim"))
            return
        # shrink=False keeps long lines whole; the view scrolls sideways instead.
        body.write(render(self.files[index], self.app.current_theme.dark), shrink=False)
        body.scroll_home(animate=False)
