"""What the planner learns about a repository before planning: its test command, tree and README.

Everything is read through the sandbox's file API, confined to the workspace as agents' own
file access is: a symlink out of the repo is never followed.
"""

from __future__ import annotations

import json
import re

from agents.repo_files import list_tree, read_text
from agents.tools import valid_text
from sandboxes.base import SandboxError, WorkspaceReader

_MAKE_TEST_TARGET = re.compile(r"^test\s*:(?!=)", re.MULTILINE)
# `npm init` writes this placeholder; it fails by design and tests nothing.
_NPM_PLACEHOLDER = "no test specified"
_TEST_DIRS = ("tests", "test")
_README_NAMES = ("README.md", "README.rst", "README.txt", "README", "readme.md", "Readme.md")


def detect_test_command(files: WorkspaceReader) -> str | None:
    """The command that runs the project's tests, or None when none is recognisable.

    The checks go from the most specific evidence (a runner's own configuration) to the
    most generic: Python, then npm, Cargo, Go, and a Makefile `test` target last, since
    such targets often wrap Docker or fetch tools, which a sandbox without network
    cannot do. In a polyglot repo (a Python service with a JS front end) the first hit
    is the suite that matters most and that the sandbox image can run.
    """
    if _uses_pytest(files):
        # `-m` puts the repo root on sys.path, so an uninstalled package imports; `python3`
        # because the sandbox image (Debian) has no bare `python`.
        return "python3 -m pytest"
    if _npm_test_script(files):
        return "npm test"
    if _exists(files, "Cargo.toml"):
        return "cargo test"
    if _exists(files, "go.mod"):
        return "go test ./..."
    makefile = read_text(files, "Makefile") or read_text(files, "makefile") or ""
    if _MAKE_TEST_TARGET.search(makefile):
        return "make test"
    return None


def _uses_pytest(files: WorkspaceReader) -> bool:
    if _exists(files, "pytest.ini") or _exists(files, "conftest.py"):
        return True
    if "[tool.pytest" in (read_text(files, "pyproject.toml") or ""):
        return True
    if "[tool:pytest]" in (read_text(files, "setup.cfg") or ""):
        return True
    return any(_has_python_tests(files, name) for name in _TEST_DIRS)


def _has_python_tests(files: WorkspaceReader, directory: str) -> bool:
    try:
        paths = files.list_files(directory)
    except SandboxError:
        return False
    return any(re.search(r"(^|/)(test_[^/]*|[^/]*_test)\.py$", path) for path in paths)


def _npm_test_script(files: WorkspaceReader) -> bool:
    try:
        package = json.loads(read_text(files, "package.json") or "{}")
    except json.JSONDecodeError:
        return False
    scripts = package.get("scripts") if isinstance(package, dict) else None
    script = scripts.get("test") if isinstance(scripts, dict) else None
    return isinstance(script, str) and bool(script.strip()) and _NPM_PLACEHOLDER not in script


def _exists(files: WorkspaceReader, path: str) -> bool:
    return read_text(files, path) is not None


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
