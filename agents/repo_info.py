"""What the planner learns about a repository before planning: its test command, tree and README.

Everything is read on the host, confined to the repository as agents' file access is
(sandboxes.files.WorkspaceFiles): a symlink out of the repo is never followed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from agents.tools import valid_text
from sandboxes.base import SandboxError
from sandboxes.files import SKIPPED_DIRS, WorkspaceFiles

_MAKE_TEST_TARGET = re.compile(r"^test\s*:(?!=)", re.MULTILINE)
# `npm init` writes this placeholder; it fails by design and tests nothing.
_NPM_PLACEHOLDER = "no test specified"
_TEST_DIRS = ("tests", "test")
_README_NAMES = ("README.md", "README.rst", "README.txt", "README", "readme.md", "Readme.md")


def detect_test_command(repo_dir: Path) -> str | None:
    """The command that runs the project's tests, or None when none is recognisable.

    The checks go from the most specific evidence (a runner's own configuration) to the
    most generic: Python, then npm, Cargo, Go, and a Makefile `test` target last, since
    such targets often wrap Docker or fetch tools, which a sandbox without network
    cannot do. In a polyglot repo (a Python service with a JS front end) the first hit
    is the suite that matters most and that the sandbox image can run.
    """
    files = WorkspaceFiles(repo_dir)
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
    makefile = _read_text(files, "Makefile") or _read_text(files, "makefile") or ""
    if _MAKE_TEST_TARGET.search(makefile):
        return "make test"
    return None


def _uses_pytest(files: WorkspaceFiles) -> bool:
    if _exists(files, "pytest.ini") or _exists(files, "conftest.py"):
        return True
    if "[tool.pytest" in (_read_text(files, "pyproject.toml") or ""):
        return True
    if "[tool:pytest]" in (_read_text(files, "setup.cfg") or ""):
        return True
    return any(_has_python_tests(files, name) for name in _TEST_DIRS)


def _has_python_tests(files: WorkspaceFiles, directory: str) -> bool:
    try:
        paths = files.list(directory)
    except SandboxError:
        return False
    return any(re.search(r"(^|/)(test_[^/]*|[^/]*_test)\.py$", path) for path in paths)


def _npm_test_script(files: WorkspaceFiles) -> bool:
    try:
        package = json.loads(_read_text(files, "package.json") or "{}")
    except json.JSONDecodeError:
        return False
    scripts = package.get("scripts") if isinstance(package, dict) else None
    script = scripts.get("test") if isinstance(scripts, dict) else None
    return isinstance(script, str) and bool(script.strip()) and _NPM_PLACEHOLDER not in script


def _exists(files: WorkspaceFiles, path: str) -> bool:
    try:
        return files.resolve(path).is_file()
    except SandboxError:
        return False


def _read_text(files: WorkspaceFiles, path: str, max_bytes: int = 1_000_000) -> str | None:
    try:
        host = files.resolve(path)
        if not host.is_file() or host.stat().st_size > max_bytes:
            return None
        return host.read_bytes().decode("utf-8", errors="replace")
    except (SandboxError, OSError):
        return None


def file_tree(repo_dir: Path, max_entries: int = 200) -> str:
    """A compact indented tree of the repo, at most `max_entries` entries.

    Entries are chosen breadth first, so a large repo shows its whole top level and
    the first levels of every directory rather than all of the first one; a directory
    with entries left out says how many.
    """
    root = Path(repo_dir).resolve()
    children: dict[Path, list[Path]] = {}
    chosen: set[Path] = set()
    queue = [root]
    while queue and len(chosen) < max_entries:
        directory = queue.pop(0)
        children[directory] = _entries(directory)
        for entry in children[directory]:
            if len(chosen) >= max_entries:
                break
            chosen.add(entry)
            if _is_real_dir(entry):
                queue.append(entry)
    lines: list[str] = []
    _render_tree(root, children, chosen, 0, lines)
    return valid_text("\n".join(lines))  # names need not be UTF-8


def _entries(directory: Path) -> list[Path]:
    """Directories first, then files, each sorted; skipped directories left out."""
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    entries = [e for e in entries if not (e.name in SKIPPED_DIRS and _is_real_dir(e))]
    return sorted(entries, key=lambda e: (not _is_real_dir(e), e.name))


def _is_real_dir(path: Path) -> bool:
    # A symlinked directory may lead out of the repo: it is shown, never entered.
    return path.is_dir() and not path.is_symlink()


def _render_tree(
    directory: Path, children: dict[Path, list[Path]], chosen: set[Path], depth: int, lines: list[str]
) -> None:
    entries = children.get(directory)
    if entries is None:
        return
    indent = "  " * depth
    shown = [e for e in entries if e in chosen]
    for entry in shown:
        if entry.is_symlink():
            lines.append(f"{indent}{entry.name} -> {os.readlink(entry)}")
        elif _is_real_dir(entry):
            lines.append(f"{indent}{entry.name}/")
            _render_tree(entry, children, chosen, depth + 1, lines)
        else:
            lines.append(f"{indent}{entry.name}")
    if len(shown) < len(entries):
        lines.append(f"{indent}… {len(entries) - len(shown)} more")


def read_readme(repo_dir: Path, max_chars: int = 6_000) -> str | None:
    """The README at the repo's root, cut to `max_chars` characters; None if there is none."""
    files = WorkspaceFiles(repo_dir)
    for name in _README_NAMES:
        text = _read_text(files, name, max_bytes=10_000_000)
        if text is None:
            continue
        if len(text) <= max_chars:
            return text
        # The opening of a README says what the project is; the rest is detail.
        return f"{text[:max_chars]}\n[... README cut: {len(text) - max_chars} more characters]"
    return None
