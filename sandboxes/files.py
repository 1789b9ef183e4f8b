"""File access to a sandbox's workspace, done on the host side and confined to it.

Every backend mounts the workspace, so reading and writing through the host is the
same for all of them and much faster than a round trip into the sandbox. The one
rule that matters: a path, after following symlinks, must stay inside the workspace;
a hostile repo may hold links to /etc or to the user's home.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from sandboxes.base import WORKSPACE_MOUNT, SandboxError

# Directories no listing descends into: they are large and never what an agent wants.
SKIPPED_DIRS = {".git", "node_modules", "__pycache__", ".venv", ".tox", ".mypy_cache", ".pytest_cache"}
# The most a read returns: a repo may hold a file of many gigabytes (sparse ones cost no
# disk), and a read is held whole in the host's memory.
MAX_READ_BYTES = 32 << 20


class WorkspaceFiles:
    """Host-side, symlink-safe file operations on a workspace directory."""

    def __init__(self, workspace: Path, max_listed: int = 10_000, max_read: int = MAX_READ_BYTES):
        self.root = workspace.resolve()
        self.max_listed = max_listed
        self.max_read = max_read

    def resolve(self, path: str) -> Path:
        """The host path for a sandbox path, or SandboxError if it leaves the workspace."""
        pure = PurePosixPath(path)
        if pure.is_absolute():
            try:
                pure = pure.relative_to(WORKSPACE_MOUNT)
            except ValueError:
                raise SandboxError(f"{path}: only paths inside {WORKSPACE_MOUNT} can be accessed") from None
        host = (self.root / pure).resolve()
        if host != self.root and self.root not in host.parents:
            raise SandboxError(f"{path}: resolves outside the workspace (a symlink or '..'); refused")
        return host

    def read(self, path: str) -> bytes:
        host = self.resolve(path)
        if not host.is_file():
            raise SandboxError(f"{path}: no such file in the workspace")
        with open(host, "rb") as file:
            data = file.read(self.max_read + 1)  # bounded even if the file grows meanwhile
        if len(data) > self.max_read:
            size = max(host.stat().st_size, len(data))
            raise SandboxError(
                f"{path}: {size} bytes, more than the {self.max_read} bytes a file read returns; "
                "look at parts of it with a command (head, tail, sed -n, grep)"
            )
        return data

    def write(self, path: str, content: bytes | str) -> None:
        host = self.resolve(path)
        if host == self.root or host.is_dir():
            raise SandboxError(f"{path}: is a directory")
        host.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        # Write through a fresh file so that a symlink planted at the target after
        # resolve() cannot redirect the write.
        tmp = host.with_name(f".{host.name}.shipyard-tmp")
        tmp.write_bytes(data)
        if host.exists():
            os.chmod(tmp, host.stat().st_mode & 0o7777)
        os.replace(tmp, host)

    def list(self, path: str = ".") -> list[str]:
        """Files below `path`, relative to the workspace, sorted; symlinks are not followed."""
        start = self.resolve(path)
        if start.is_file():
            return [str(start.relative_to(self.root))]
        if not start.is_dir():
            raise SandboxError(f"{path}: no such directory in the workspace")
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
            rel = Path(dirpath).relative_to(self.root)
            # A worktree's `.git` is a file naming the repository's git dir: git's, not the project's.
            for name in sorted(n for n in filenames if n != ".git"):
                found.append(str(rel / name) if str(rel) != "." else name)
                if len(found) >= self.max_listed:
                    return found
        return found
