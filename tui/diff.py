"""A unified diff split file by file, and one file rendered with its language's highlighting and line
numbers: unified, or side by side (old left, new right) when the view is wide enough."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pygments.lexers import get_lexer_for_filename
from pygments.util import ClassNotFound
from rich.syntax import Syntax
from rich.text import Text

HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
SIDE_BY_SIDE = 140  # columns from which a diff is shown side by side
NUMBER = 5  # the width of a line number and its space

# Line backgrounds for added and removed lines, per theme brightness.
BACKGROUNDS = {
    True: {"+": "on #1d3b27", "-": "on #42201f"},
    False: {"+": "on #dcf5e3", "-": "on #fbe1df"},
}


@dataclass
class FileDiff:
    path: str
    old_path: str | None = None
    header: list[str] = field(default_factory=list)  # mode changes, renames, "Binary files differ"
    lines: list[str] = field(default_factory=list)  # hunk headers and hunk lines
    insertions: int = 0
    deletions: int = 0

    @property
    def title(self) -> str:
        name = f"{self.old_path} → {self.path}" if self.old_path and self.old_path != self.path else self.path
        return f"{name}  +{self.insertions} -{self.deletions}"


def parse(diff: str) -> list[FileDiff]:
    files: list[FileDiff] = []
    current: FileDiff | None = None
    in_hunk = False
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            a, _, b = line[len("diff --git "):].partition(" b/")
            current = FileDiff(path=b, old_path=a.removeprefix("a/"))
            files.append(current)
            in_hunk = False
        elif current is None:
            continue
        elif line.startswith("@@"):
            in_hunk = True
            current.lines.append(line)
        elif in_hunk:
            current.lines.append(line)
            if line.startswith("+"):
                current.insertions += 1
            elif line.startswith("-"):
                current.deletions += 1
        elif line.startswith(("+++ ", "--- ")):
            continue  # the paths are in the title already
        else:
            current.header.append(line)
    return files


def render(file: FileDiff, dark: bool, width: int = 0) -> Text:
    """The file's hunks: code highlighted for its language, added and removed lines tinted, each with its
    line number (old, new); side by side when `width` allows it."""
    code_lines = [line[1:] if line[:1] in "+- " else "" for line in file.lines]
    # The lexer may add a last, empty line: the zip below stops at the diff's own lines.
    highlighted = _highlight("\n".join(code_lines), file.path, dark).split("\n", allow_blank=True)
    out = [Text(header, style="dim") for header in file.header if not header.startswith("index ")]
    if width >= SIDE_BY_SIDE:
        out += _side_by_side(file, highlighted, dark, width)
    else:
        out += _unified(file, highlighted, dark)
    return Text("\n").join(out)


def _numbered(file: FileDiff) -> list[tuple[str, int | None, int | None, int]]:
    """Each hunk line as (marker, old number, new number, its index in `file.lines`)."""
    rows: list[tuple[str, int | None, int | None, int]] = []
    old = new = 0
    for index, raw in enumerate(file.lines):
        marker = raw[:1] or " "
        if marker == "@":
            found = HUNK.match(raw)
            old, new = (int(found.group(1)), int(found.group(2))) if found else (old, new)
            rows.append(("@", None, None, index))
        elif marker == "\\":
            rows.append(("\\", None, None, index))
        elif marker == "-":
            rows.append(("-", old, None, index))
            old += 1
        elif marker == "+":
            rows.append(("+", None, new, index))
            new += 1
        else:
            rows.append((" ", old, new, index))
            old, new = old + 1, new + 1
    return rows


def _number(value: int | None) -> tuple[str, str]:
    return (f"{value:>{NUMBER - 1}} " if value is not None else " " * NUMBER, "dim")


def _unified(file: FileDiff, highlighted: list[Text], dark: bool) -> list[Text]:
    width = max((len(line) for line in file.lines), default=0) + 1 + 2 * NUMBER
    out = []
    for marker, old, new, index in _numbered(file):
        raw = file.lines[index]
        if marker in ("@", "\\"):  # a hunk header, or "\ No newline at end of file"
            out.append(Text(raw, style="cyan" if marker == "@" else "dim"))
            continue
        code = highlighted[index] if index < len(highlighted) else Text()
        line = Text.assemble(_number(old), _number(new), (marker, _MARKS.get(marker, "dim")), code)
        if marker in BACKGROUNDS[dark]:
            # Padded, so that the tint runs as a bar across the longest line of the file.
            line.pad_right(width - len(line))
            line.stylize(BACKGROUNDS[dark][marker], 2 * NUMBER)
        out.append(line)
    return out


def _side_by_side(file: FileDiff, highlighted: list[Text], dark: bool, width: int) -> list[Text]:
    """Old on the left, new on the right: a run of removed lines faces the run of added lines after it."""
    half = (width - 3) // 2
    rows = _numbered(file)
    out: list[Text] = []

    def side(row: tuple[str, int | None, int | None, int] | None, new: bool) -> Text:
        if row is None:
            return Text(" " * half)
        marker, old_no, new_no, index = row
        code = highlighted[index].copy() if index < len(highlighted) else Text()
        text = Text.assemble(_number(new_no if new else old_no), (marker, _MARKS.get(marker, "dim")), code)
        text.truncate(half, overflow="ellipsis", pad=True)
        if marker in BACKGROUNDS[dark]:
            text.stylize(BACKGROUNDS[dark][marker], NUMBER)
        return text

    at = 0
    while at < len(rows):
        marker, _, _, index = rows[at]
        if marker in ("@", "\\"):
            out.append(Text(file.lines[index], style="cyan" if marker == "@" else "dim"))
            at += 1
            continue
        if marker == " ":
            out.append(Text.assemble(side(rows[at], False), (" │ ", "dim"), side(rows[at], True)))
            at += 1
            continue
        removed, added = [], []
        while at < len(rows) and rows[at][0] == "-":
            removed.append(rows[at])
            at += 1
        while at < len(rows) and rows[at][0] == "+":
            added.append(rows[at])
            at += 1
        for k in range(max(len(removed), len(added))):
            left = removed[k] if k < len(removed) else None
            right = added[k] if k < len(added) else None
            out.append(Text.assemble(side(left, False), (" │ ", "dim"), side(right, True)))
    return out


_MARKS = {"+": "green bold", "-": "red bold"}


def _highlight(code: str, path: str, dark: bool) -> Text:
    try:
        # stripnl=False: the hunk's blank lines must stay where they are.
        lexer = get_lexer_for_filename(path, code, stripnl=False)
    except ClassNotFound:
        return Text(code)
    syntax = Syntax(code, lexer, theme="ansi_dark" if dark else "ansi_light", background_color="default")
    return syntax.highlight(code)
