"""The repository's own instructions for agents, read through `WorkspaceReader`, bounded in size.

What is read, from the most general to the most specific, which comes last so that it
has the last word: the testing section of CONTRIBUTING (the sections whose heading
mentions tests), `.github/copilot-instructions.md`, then AGENTS.md and CLAUDE.md of
the root and of every directory down to the paths the work touches (a nested AGENTS.md
applies to its subtree). A file met twice (CLAUDE.md often links to AGENTS.md) is read
once. When the whole is over the limit, the most general parts are cut first, each with
a note saying what was cut.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict, Field

from agents.repo_files import join, list_tree, parent_dirs, read_text
from sandboxes.base import WorkspaceReader

MAX_INSTRUCTIONS_CHARS = 12_000
AGENT_FILES = ("AGENTS.md", "CLAUDE.md")
COPILOT_FILE = ".github/copilot-instructions.md"
CONTRIBUTING_FILES = ("CONTRIBUTING.md", "CONTRIBUTING.rst", "CONTRIBUTING.txt", "CONTRIBUTING",
                      ".github/CONTRIBUTING.md", "docs/CONTRIBUTING.md", "docs/CONTRIBUTING.rst")
TESTING_HEADING = re.compile(r"\btest", re.IGNORECASE)
# An RST section title's underline (or overline): one punctuation character repeated.
RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.,_!$%&;<>?@|])\1{2,}\s*$")
# How many AGENTS.md files of other subtrees are named in the note about them.
MOST_ELSEWHERE = 10


class RepoInstructions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="the instructions, each part headed by its source; '' when there are none")
    sources: list[str] = Field(default_factory=list, description="where each part comes from, general first")
    cut: bool = Field(False, description="whether anything was cut to the limit")
    elsewhere: list[str] = Field(default_factory=list,
                                 description="AGENTS.md/CLAUDE.md files of subtrees the work does not touch")


def read_repo_instructions(
    files: WorkspaceReader, touched: Sequence[str] = (), max_chars: int = MAX_INSTRUCTIONS_CHARS
) -> RepoInstructions:
    """The instructions that apply to work on `touched` (paths of files or directories; none: the root's only)."""
    parts: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(source: str, text: str | None) -> None:
        if text and text.strip() and text.strip() not in seen:
            seen.add(text.strip())
            parts.append((source, text.strip()))

    for path in CONTRIBUTING_FILES:
        text = read_text(files, path)
        if text is not None:
            for heading, section in sections_on_testing(text, rst=path.endswith(".rst")):
                add(f"{path} ({heading})", section)
            break
    add(COPILOT_FILE, read_text(files, COPILOT_FILE))
    directories = _directories(touched)
    for directory in directories:
        for name in AGENT_FILES:
            path = join(directory, name)
            add(path, read_text(files, path))
    text, cut = _fit(parts, max_chars)
    return RepoInstructions(text=text, sources=[source for source, _ in parts], cut=cut,
                            elsewhere=_elsewhere(files, set(directories)))


def sections_on_testing(text: str, rst: bool = False) -> list[tuple[str, str]]:
    """(heading, section text) of the sections whose heading mentions tests, none inside another."""
    headings = _rst_headings(text) if rst else _markdown_headings(text)
    lines = text.splitlines()
    found: list[tuple[str, str]] = []
    taken_until = -1
    for index, (start, level, title) in enumerate(headings):
        if start < taken_until or not TESTING_HEADING.search(title):
            continue
        end = next((s for s, lvl, _ in headings[index + 1:] if lvl <= level), len(lines))
        found.append((title, "\n".join(lines[start:end]).strip()))
        taken_until = end
    return found


def _markdown_headings(text: str) -> list[tuple[int, int, str]]:
    """(first line, level, title) of every heading, ATX or setext, code blocks understood."""
    tokens = MarkdownIt().parse(text)
    headings = []
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            headings.append((token.map[0], int(token.tag[1:]), tokens[index + 1].content.strip()))
    return headings


def _rst_headings(text: str) -> list[tuple[int, int, str]]:
    """(first line, level, title) of every RST section title; levels go by the order styles first appear."""
    lines = text.splitlines()
    styles: list[tuple[str, bool]] = []
    headings = []
    for index in range(1, len(lines)):
        underline, title = RST_ADORNMENT.match(lines[index]), lines[index - 1].strip()
        if not underline or not title or RST_ADORNMENT.match(lines[index - 1]):
            continue
        if len(lines[index].strip()) < len(title):
            continue  # an underline shorter than its title is not one
        overlined = index >= 2 and lines[index - 2].strip() == lines[index].strip()
        style = (underline.group(1), overlined)
        if style not in styles:
            styles.append(style)
        headings.append((index - 2 if overlined else index - 1, styles.index(style) + 1, title))
    return headings


def _directories(touched: Sequence[str]) -> list[str]:
    """The root and every directory down to each touched path (which may be a directory itself), shallow first."""
    found = {"."}
    for path in touched:
        clean = path.strip().strip("/").removeprefix("./")
        if not clean or clean == ".":
            continue
        found.update(parent_dirs(clean))
        found.add(clean)  # if it is a file, nothing is found under it
    return sorted(found, key=lambda d: (0 if d == "." else len(PurePosixPath(d).parts), d))


def _fit(parts: list[tuple[str, str]], max_chars: int) -> tuple[str, bool]:
    """The parts joined within `max_chars`: the last (most specific) keep their room, the first are cut."""
    budget = max_chars
    shown: list[str] = []
    left_out: list[str] = []
    cut = False
    for source, text in reversed(parts):
        block = f"### {source}\n\n{text}"
        if len(block) <= budget:
            shown.append(block)
            budget -= len(block) + 2
        elif budget - len(source) > 300:  # room for a useful beginning
            room = budget - len(source) - 100
            shown.append(f"### {source}\n\n{text[:room]}\n[... {source} cut: {len(text) - room} more characters]")
            budget, cut = 0, True
        else:
            left_out.append(f"{source} ({len(text)} characters)")
    blocks = list(reversed(shown))
    if left_out:
        blocks.insert(0, f"[Left out, over the {max_chars}-character limit of instructions (read them yourself): "
                         f"{', '.join(reversed(left_out))}]")
    return "\n\n".join(blocks), cut or bool(left_out)


def _elsewhere(files: WorkspaceReader, included: set[str]) -> list[str]:
    found = []
    for path in list_tree(files):
        posix = PurePosixPath(path)
        if posix.name in AGENT_FILES and str(posix.parent) not in included:
            found.append(path)
            if len(found) >= MOST_ELSEWHERE:
                break
    return found
