"""How the repository readers see a repository: two calls, so any sandbox or host directory will do.

A `sandboxes.base.Sandbox` is a `sandboxes.base.WorkspaceReader` as it is; `HostRepoFiles` gives a host
directory the same two calls with the same confinement (sandboxes.files.WorkspaceFiles:
a symlink out of the repository is refused, listings skip .git, node_modules and the like).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from sandboxes.base import SandboxError, WorkspaceReader
from sandboxes.files import WorkspaceFiles

# The most a configuration or instructions file may hold before the readers ignore it:
# the real ones are a few kilobytes, and a hostile repository may hold one of gigabytes.
MAX_TEXT_BYTES = 1_000_000


class HostRepoFiles:
    """A repository directory on the host, read as agents read their workspace."""

    def __init__(self, root: Path, max_listed: int = 10_000):
        self._files = WorkspaceFiles(root, max_listed=max_listed)

    def read_file(self, path: str) -> bytes:
        return self._files.read(path)

    def list_files(self, path: str = ".") -> list[str]:
        return self._files.list(path)


def read_text(files: WorkspaceReader, path: str, max_bytes: int = MAX_TEXT_BYTES) -> str | None:
    """The file as text, or None when it is missing, unreadable, refused or larger than `max_bytes`."""
    try:
        data = files.read_file(path)
    except (SandboxError, OSError):
        return None
    if len(data) > max_bytes:
        return None
    return data.decode("utf-8", errors="replace")


def list_tree(files: WorkspaceReader, path: str = ".") -> list[str]:
    """Every file below `path` (as far as the listing goes), or [] when there is no such directory."""
    try:
        return files.list_files(path)
    except (SandboxError, OSError):
        return []


def parent_dirs(path: str) -> list[str]:
    """The directories from the root down to the one holding `path`: "a/b/c.py" -> [".", "a", "a/b"]."""
    parts = PurePosixPath(path).parts[:-1]
    return ["."] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


def join(directory: str, name: str) -> str:
    return name if directory in ("", ".") else f"{directory}/{name}"
