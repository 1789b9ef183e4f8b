"""A log that follows its tail: lines are stored as spans and rendered only when on screen, so taking in
thousands of lines a second costs little more than appending them.

Long lines wrap (`w` crops them instead); a cursor line (↑/↓, j/k) picks a command's step, which
Enter expands to its whole output and collapses again; `/` finds text, `n`/`N` the next and previous
match. While the reader is up the log, new lines only count: the marker under it says how many.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.logbook import KEY, LOG_WINDOW, Line, step_key

Details = Callable[[str], "list[Line] | None"]
CURSOR = Style(reverse=True)
HANG = 9  # wrapped rows start under the text, after the time
MATCH = Style(bgcolor="yellow", color="black")


class LogView(ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "move(-20)", "Page up", show=False),
        Binding("pagedown", "move(20)", "Page down", show=False),
        Binding("home,g", "top", "Top", show=False),
        Binding("end,G", "bottom", "Follow", show=False),
        Binding("enter", "toggle_step", "Expand", tooltip="Show the whole output of the step (again: fold it)"),
        Binding("w", "toggle_wrap", "Wrap", tooltip="Wrap long lines, or crop them"),
        Binding("n", "find(1)", "Next match", show=False),
        Binding("N", "find(-1)", "Previous match", show=False),
    ]

    class Unseen(Message):
        """How many lines came in below what the reader looks at (0: they follow the tail again)."""

        def __init__(self, count: int) -> None:
            super().__init__()
            self.count = count

    def __init__(self, window: int = LOG_WINDOW, details: Details = lambda key: None, **kwargs: str) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lines: deque[Line] = deque(maxlen=window)
        self.details = details
        self.wrap = True
        self.cursor = -1  # the line the cursor is on; -1: the last one, following the tail
        self.query = ""
        self.unseen = 0
        self._folded: dict[str, list[Line]] = {}  # expanded steps: the lines they showed before
        self._offsets: list[int] = []  # the first row of each line
        self._width = 0
        self._stale = True

    @property
    def lines(self) -> list[Line]:
        return list(self._lines)

    @property
    def following(self) -> bool:
        return self.cursor < 0

    def set_lines(self, lines: Iterable[Line]) -> None:
        """Show these lines instead, from their end."""
        self._lines.clear()
        self._lines.extend(lines)
        self._folded.clear()
        self.cursor = -1
        self._changed()
        self._set_unseen(0)

    def append(self, lines: list[Line]) -> None:
        """Add lines at the end; the view follows them if it was at the end, else stays on what it shows."""
        dropped = max(0, len(self._lines) + len(lines) - (self._lines.maxlen or 0))
        self._lines.extend(lines)
        if not self.following:
            self.cursor = max(0, self.cursor - dropped)
            self._set_unseen(self.unseen + len(lines))
        self._changed()

    # -- layout: rows of wrapped lines ------------------------------------------------------

    def _changed(self) -> None:
        self._stale = True
        self._layout()
        if self.following:
            self.scroll_end(animate=False, immediate=False)
        self.refresh()

    def _layout(self) -> None:
        width = max(1, self.scrollable_content_region.width)
        if not self._stale and width == self._width:
            return
        self._width, self._stale = width, False
        offsets, row = [], 0
        for line in self._lines:
            offsets.append(row)
            row += self._rows_of(line, width)
        self._offsets = offsets
        self.virtual_size = Size(width, row)

    def _rows_of(self, line: Line, width: int) -> int:
        if not self.wrap:
            return 1
        length = sum(cell_len(text) for text, style in line if not style.startswith(KEY))
        if length <= width or width <= HANG * 2:
            return max(1, -(-length // width))
        return 1 + -(-(length - width) // (width - HANG))

    def on_resize(self) -> None:
        self._layout()
        if self.following:
            self.scroll_end(animate=False, immediate=False)

    def render_line(self, y: int) -> Strip:
        self._layout()
        row = self.scroll_offset.y + y
        width = self._width
        index = bisect_right(self._offsets, row) - 1
        if index < 0 or index >= len(self._lines) or row >= self.virtual_size.height:
            return Strip.blank(width, self.rich_style)
        line = self._lines[index]
        segments = [Segment(text, Style.parse(style)) if style else Segment(text)
                    for text, style in line if not style.startswith(KEY)]
        strip = Strip(segments)
        if self.query:
            strip = self._highlight(strip)
        part = row - self._offsets[index]
        if part == 0:
            strip = strip.crop_extend(0, width, self.rich_style)
        elif width <= HANG * 2:
            strip = strip.crop_extend(part * width, (part + 1) * width, self.rich_style)
        else:
            start = width + (part - 1) * (width - HANG)
            strip = Strip.join([Strip.blank(HANG, self.rich_style),
                                strip.crop_extend(start, start + width - HANG, self.rich_style)])
        strip = strip.apply_style(self.rich_style)
        if index == self._cursor_index() and self.has_focus:
            strip = strip.apply_style(CURSOR)
        return strip

    def _highlight(self, strip: Strip) -> Strip:
        text = "".join(segment.text for segment in strip)
        found = text.lower().find(self.query.lower())
        if found < 0:
            return strip
        start, end = cell_len(text[:found]), cell_len(text[: found + len(self.query)])
        return Strip.join([strip.crop(0, start), strip.crop(start, end).apply_style(MATCH), strip.crop(end)])

    # -- the cursor and what it does ----------------------------------------------------------

    def _cursor_index(self) -> int:
        return len(self._lines) - 1 if self.cursor < 0 else min(self.cursor, len(self._lines) - 1)

    def _go(self, index: int) -> None:
        last = len(self._lines) - 1
        index = max(0, min(index, last))
        self.cursor = -1 if index >= last else index
        if self.following:
            self._set_unseen(0)
            self.scroll_end(animate=False, immediate=False)
        else:
            self._layout()
            top = self._offsets[index] if index < len(self._offsets) else 0
            # A wrapped line's rows, all of them, come into view (its top first, if they are too many).
            end = self._offsets[index + 1] if index + 1 < len(self._offsets) else self.virtual_size.height
            height = self.scrollable_content_region.height
            if top < self.scroll_y:
                self.scroll_to(y=top, animate=False, immediate=True)
            elif end > self.scroll_y + height:
                self.scroll_to(y=min(top, end - height), animate=False, immediate=True)
        self.refresh()

    def _set_unseen(self, count: int) -> None:
        if count != self.unseen:
            self.unseen = count
            self.post_message(self.Unseen(count))

    def action_move(self, by: int) -> None:
        self._go(self._cursor_index() + by)

    def action_top(self) -> None:
        self._go(0)

    def action_bottom(self) -> None:
        self._go(len(self._lines))

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self._changed()
        if not self.following:
            # The rows above the cursor's line are not as many now: keep that line on screen.
            self._go(self.cursor)

    def action_toggle_step(self) -> None:
        """Expand the step under the cursor to its whole output, or fold it back."""
        index = self._cursor_index()
        key = step_key(self._lines[index]) if 0 <= index < len(self._lines) else None
        if key is None:
            return
        lines = list(self._lines)
        start = index
        while start > 0 and step_key(lines[start - 1]) == key:
            start -= 1
        end = index
        while end + 1 < len(lines) and step_key(lines[end + 1]) == key:
            end += 1
        if key in self._folded:
            body = self._folded.pop(key)
        else:
            full = self.details(key)
            if full is None:
                self.notify("That step's whole output has left memory: `shipyard logs` prints it.",
                            severity="warning")
                return
            self._folded[key] = lines[start + 1: end + 1]
            body = full
        lines[start + 1: end + 1] = body
        following = self.following
        self._lines.clear()
        self._lines.extend(lines)
        self.cursor = -1 if following and end == len(lines) - 1 else start
        self._changed()
        if not self.following:
            self._go(start)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Without a search, n and N are the screen's (a note, ...).
        return bool(self.query) if action == "find" else True

    def find(self, query: str, direction: int = 1) -> bool:
        """Move the cursor to the next line (or the previous) holding `query`; False when none does."""
        self.query = query
        if not query:
            self.refresh()
            return False
        needle = query.lower()
        lines = list(self._lines)
        count = len(lines)
        here = self._cursor_index()
        for step in range(1, count + 1):
            index = (here + direction * step) % count
            if needle in "".join(text for text, style in lines[index] if not style.startswith(KEY)).lower():
                self._go(index)
                return True
        self.refresh()
        return False

    def action_find(self, direction: int) -> None:
        if self.query and not self.find(self.query, direction):
            self.notify(f"No line holds {self.query!r}.", severity="warning")
