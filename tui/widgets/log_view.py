"""A log that follows its tail: lines are stored as spans and rendered only when on screen,
so taking in thousands of lines a second costs little more than appending them."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.logbook import LOG_WINDOW, Line


class LogView(ScrollView, can_focus=True):
    def __init__(self, window: int = LOG_WINDOW, **kwargs: str) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lines: deque[Line] = deque(maxlen=window)

    @property
    def lines(self) -> list[Line]:
        return list(self._lines)

    def set_lines(self, lines: Iterable[Line]) -> None:
        """Show these lines instead, from their end."""
        self._lines.clear()
        self._lines.extend(lines)
        self._resize()
        self.scroll_end(animate=False, immediate=False)
        self.refresh()

    def append(self, lines: list[Line]) -> None:
        """Add lines at the end; the view follows them if it was at the end, else stays on what it shows."""
        following = self.is_vertical_scroll_end
        dropped = max(0, len(self._lines) + len(lines) - (self._lines.maxlen or 0))
        self._lines.extend(lines)
        self._resize()
        if following:
            self.scroll_end(animate=False, immediate=False)
        elif dropped:
            self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True)
        self.refresh()

    def _resize(self) -> None:
        # Lines are cropped to the view: no sideways scrolling, so the width is the view's.
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._lines))

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        segments = [Segment(text, Style.parse(style)) if style else Segment(text) for text, style in self._lines[index]]
        return Strip(segments).crop_extend(0, width, self.rich_style).apply_style(self.rich_style)
