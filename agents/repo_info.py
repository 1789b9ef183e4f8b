"""What the planner learns about a repository before planning: its tree and README.

Everything is read through the sandbox's file API, confined to the workspace as agents' own
file access is: a symlink out of the repo is never followed.
"""

from __future__ import annotations

from agents.repo_files import list_tree, read_text
from agents.tools import valid_text
from sandboxes.base import WorkspaceReader

_README_NAMES = ("README.md", "README.rst", "README.txt", "README", "readme.md", "Readme.md")


def file_tree(files: WorkspaceReader, max_entries: int = 200) -> str:
    """A compact indented tree of the repo, at most `max_entries` entries.

    Entries are chosen breadth first, so a large repo shows its whole top level and
    the first levels of every directory rather than all of the first one; a directory
    with entries left out says how many.
    """
    children: dict[str, set[str]] = {}
    for path in list_tree(files):
        parts = path.split("/")
        for depth in range(len(parts)):
            parent = "/".join(parts[:depth])
            children.setdefault(parent, set()).add("/".join(parts[: depth + 1]) + ("/" if depth < len(parts) - 1
                                                                                    else ""))
    ordered = {parent: sorted(entries, key=lambda e: (not e.endswith("/"), e)) for parent, entries in children.items()}
    chosen: set[str] = set()
    queue = [""]
    while queue and len(chosen) < max_entries:
        directory = queue.pop(0)
        for entry in ordered.get(directory, []):
            if len(chosen) >= max_entries:
                break
            chosen.add(entry)
            if entry.endswith("/"):
                queue.append(entry.rstrip("/"))
    lines: list[str] = []
    _render_tree("", ordered, chosen, 0, lines)
    return valid_text("\n".join(lines))  # names need not be UTF-8


def _render_tree(directory: str, children: dict[str, list[str]], chosen: set[str], depth: int,
                 lines: list[str]) -> None:
    entries = children.get(directory, [])
    indent = "  " * depth
    shown = [e for e in entries if e in chosen]
    for entry in shown:
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if entry.endswith("/"):
            lines.append(f"{indent}{name}/")
            _render_tree(entry.rstrip("/"), children, chosen, depth + 1, lines)
        else:
            lines.append(f"{indent}{name}")
    if len(shown) < len(entries):
        lines.append(f"{indent}… {len(entries) - len(shown)} more")


def read_readme(files: WorkspaceReader, max_chars: int = 6_000) -> str | None:
    """The README at the repo's root, cut to `max_chars` characters; None if there is none."""
    for name in _README_NAMES:
        text = read_text(files, name)
        if text is None:
            continue
        if len(text) <= max_chars:
            return text
        # The opening of a README says what the project is; the rest is detail.
        return f"{text[:max_chars]}\n[... README cut: {len(text) - max_chars} more characters]"
    return None
