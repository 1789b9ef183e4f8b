"""Read-only git inside a sandbox: `git status`, `diff`, `log` and `show` on the workspace's own branch.

A workspace is a linked worktree: its `.git` file names the worktree's metadata directory inside
the user's repository, at a host path. A sandbox gets that path, and of the repository's git
directory only what reading needs (HEAD, objects, refs, info), read-only, at the same absolute
paths, so the `.git` file resolves as it does on the host. Everything else stays out: the config
is replaced by a copy holding only the settings that say how to read the repository (a remote
URL may carry a token; credential helpers, filters, diff drivers are commands), and hooks,
reflogs, submodules' git directories and other worktrees are not there. Commits stay on the
host: the orchestrator commits after the agent.

The `.git` file is in the sandbox's hands between sandboxes, so it is trusted only when the
metadata directory it names belongs to a repository outside the workspace and points back to it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sandboxes.git.command import file_version, run_git

# What of the repository's git directory reading a linked worktree needs ("reftable": the
# newer ref storage; "shallow": a shallow clone's boundary).
SHARED_ENTRIES = ("HEAD", "objects", "refs", "packed-refs", "reftable", "info", "shallow")
# Config settings that say how to read the repository, none of them a command, URL or secret.
# extensions.worktreeConfig is left out: it would make git read per-worktree config files.
_READING_CONFIG = re.compile(
    r"core\.(repositoryformatversion|bare|filemode|symlinks|ignorecase|precomposeunicode|autocrlf|eol)"
    r"|extensions\.(objectformat|refstorage|compatobjectformat)"
)
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9._-]*")
# For every command in the sandbox: git's ownership check would refuse a repository owned by
# the host's user, and git must not try to take locks it cannot get on read-only files.
GIT_ENV = {
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
}


@dataclass(frozen=True)
class ReadOnlyGit:
    """What a sandbox mounts, read-only, to read its workspace's repository; `close` when it stops."""

    git_dir: Path  # the repository's git directory: a sandbox shows nothing of it but `binds`
    binds: list[tuple[Path, Path]]  # (host path, sandbox path), each read-only
    scratch: Path  # the host directory holding the sanitized config

    @property
    def env(self) -> dict[str, str]:
        """Variables for every command in the sandbox."""
        return GIT_ENV

    def close(self) -> None:
        """Remove the sanitized config; safe to call twice."""
        shutil.rmtree(self.scratch, ignore_errors=True)


def read_only_git(workspace: Path) -> ReadOnlyGit | None:
    """The mounts that make read-only git work in a sandbox on `workspace`; None when it is not a
    linked worktree of a repository outside it (then git in the sandbox sees no repository)."""
    workspace = workspace.resolve()
    admin_dir = _admin_dir(workspace)
    if admin_dir is None:
        return None
    git_dir = admin_dir.parent.parent
    config = _reading_config(git_dir / "config")
    if config is None:
        return None
    scratch = Path(tempfile.mkdtemp(prefix="shipyard-git-"))
    sanitized = scratch / "config"
    sanitized.write_text(config)
    sanitized.chmod(0o644)  # the sandbox's user may not be the host's
    shared = [git_dir / name for name in SHARED_ENTRIES if _plain(git_dir / name)]
    binds = [(path, path) for path in [*shared, *_alternates(git_dir / "objects"), admin_dir]]
    binds.append((sanitized, git_dir / "config"))
    return ReadOnlyGit(git_dir=git_dir, binds=binds, scratch=scratch)


def _admin_dir(workspace: Path) -> Path | None:
    """The worktree metadata directory `workspace/.git` names, if it is one that names `workspace` back."""
    dot_git = workspace / ".git"
    if dot_git.is_symlink() or not dot_git.is_file():
        return None
    try:
        text = dot_git.read_text(errors="replace")[:4096].strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    admin_dir = Path(os.path.realpath(workspace / text.removeprefix("gitdir:").strip()))
    git_dir = admin_dir.parent.parent
    inside = admin_dir.is_relative_to(workspace) or workspace.is_relative_to(git_dir)
    if inside or admin_dir.parent.name != "worktrees" or not (git_dir / "objects").is_dir():
        return None
    try:
        named = (admin_dir / "gitdir").read_text().strip()
    except OSError:
        return None
    return admin_dir if os.path.realpath(named) == str(dot_git) else None


def _reading_config(path: Path) -> str | None:
    """The settings of the config file at `path` that reading needs, as a config file; None if unreadable."""
    version = file_version(path)
    return None if version is None else _reading_config_of(str(path), version)


# Asked at every sandbox's start, of a file that rarely changes: read again only when it has.
@functools.lru_cache(maxsize=64)
def _reading_config_of(path: str, _version: tuple[int, int, int]) -> str | None:
    listed = run_git(["config", "--file", path, "--null", "--list"], cwd=Path("/"), check=False)
    if listed.returncode != 0:
        return None
    sections: dict[str, list[str]] = {}
    for entry in listed.stdout.split("\0"):
        key, _, value = entry.partition("\n")
        if _READING_CONFIG.fullmatch(key) and _PLAIN_VALUE.fullmatch(value):
            section, _, name = key.partition(".")
            sections.setdefault(section, []).append(f"\t{name} = {value}\n")
    return "".join(f"[{section}]\n" + "".join(lines) for section, lines in sections.items())


def _alternates(objects: Path) -> list[Path]:
    """The object directories `objects` borrows from (`git clone --shared` or `--reference`), outside it."""
    try:
        lines = (objects / "info" / "alternates").read_text().splitlines()
    except OSError:
        return []
    found = [Path(os.path.realpath(objects / line.strip())) for line in lines if line.strip() and line[0] != "#"]
    return [path for path in found if path.is_dir() and not path.is_relative_to(objects.parent)]


def _plain(path: Path) -> bool:
    """Whether `path` exists and is a file or directory itself, not a symlink to one."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)
