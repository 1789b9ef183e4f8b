"""A diff file by file: the changed files with their line counts, and the chosen file highlighted, with
line numbers; side by side when the view is wide. `[` and `]` go to the previous and next file."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import OptionList, RichLog, Static
from textual.widgets.option_list import Option

from tui.diff import SIDE_BY_SIDE, FileDiff, render


class DiffView(Vertical):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.files: list[FileDiff] = []
        self.heading = Static(id="diff-title")
        self.file_list = OptionList(id="diff-files", compact=True)
        self.body = RichLog(id="diff-body", wrap=False, auto_scroll=False)
        self._side_by_side = False

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

    def on_resize(self) -> None:
        side_by_side = self.body.size.width >= SIDE_BY_SIDE
        if side_by_side != self._side_by_side:
            self._render_current()

    def step_file(self, by: int) -> None:
        """The next file (`by` 1) or the previous (-1), round the list."""
        if self.files:
            here = self.file_list.highlighted or 0
            self.file_list.highlighted = (here + by) % len(self.files)

    def _render_current(self) -> None:
        body = self.body
        body.clear()
        index = self.file_list.highlighted
        if not self.files or index is None or index >= len(self.files):
            body.write(Text("No changes.", style="dim"))
            return
        width = body.scrollable_content_region.width
        self._side_by_side = width >= SIDE_BY_SIDE
        # shrink=False keeps long lines whole; the view scrolls sideways instead.
        body.write(render(self.files[index], self.app.current_theme.dark, width), shrink=False)
        body.scroll_home(animate=False)
