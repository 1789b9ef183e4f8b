"""A unified diff split file by file, and one file rendered with its language's highlighting."""

from __future__ import annotations

from dataclasses import dataclass, field

from pygments.lexers import get_lexer_for_filename
from pygments.util import ClassNotFound
from rich.syntax import Syntax
from rich.text import Text

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


def render(file: FileDiff, dark: bool) -> Text:
    """The file's hunks: code highlighted for its language, added and removed lines tinted."""
    code_lines = [line[1:] if line[:1] in "+- " else "" for line in file.lines]
    highlighted = _highlight("\n".join(code_lines), file.path, dark).split("\n", allow_blank=True)
    width = max((len(line) for line in file.lines), default=0) + 1
    out = [Text(header, style="dim") for header in file.header if not header.startswith("index ")]
    for raw, code in zip(file.lines, highlighted, strict=False):  # the lexer may add a last, empty line
        marker = raw[:1]
        if marker in ("@", "\\"):  # a hunk header, or "\ No newline at end of file"
            out.append(Text(raw, style="cyan" if marker == "@" else "dim"))
            continue
        line = Text.assemble((marker or " ", {"+": "green bold", "-": "red bold"}.get(marker, "dim")), code)
        if marker in BACKGROUNDS[dark]:
            # Padded, so that the tint runs as a bar across the longest line of the file.
            line.pad_right(width - len(line))
            line.stylize(BACKGROUNDS[dark][marker])
        out.append(line)
    return Text("\n").join(out)


def _highlight(code: str, path: str, dark: bool) -> Text:
    try:
        # stripnl=False: the hunk's blank lines must stay where they are.
        lexer = get_lexer_for_filename(path, code, stripnl=False)
    except ClassNotFound:
        return Text(code)
    syntax = Syntax(code, lexer, theme="ansi_dark" if dark else "ansi_light", background_color="default")
    return syntax.highlight(code)
