"""The repository lock, and what a git process killed mid-way leaves behind.

Operations on what worktrees share (the worktree list, branches, merges into a branch, fetches)
are serialized, across threads and processes (`exclusive`). Those that touch one worktree only
(its index, its HEAD, its own branch: reset, commit) run side by side in different worktrees,
never beside a shared one (`one_worktree`). Reads need no lock because git updates refs
atomically. So under either lock no other git call of Shipyard's runs on that worktree or its
branch, and a lock file or a half-made worktree met there on one of Shipyard's own branches is
a dead process's, and is cleared.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandboxes.git.branches import BRANCH_PREFIX

# In a worktree's metadata directory; not "*.lock", which clear_stale_locks takes for git's.
WORKTREE_LOCK = "shipyard-lock"

_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold a repository's lock against other threads and, by flock, other processes.

    Concurrent git commands on one repository race on index.lock, packed-refs and the
    worktree metadata; serializing them is simpler than retrying.
    """
    with _LOCKS_GUARD:
        thread_lock = _LOCKS.setdefault(lock_file, threading.Lock())
    with thread_lock, _flock(lock_file, fcntl.LOCK_EX):
        yield


@contextmanager
def one_worktree(lock_file: Path, worktree_lock_file: Path) -> Iterator[None]:
    """Hold a repository's lock shared, and one worktree's exclusively: for git calls that touch
    nothing but that worktree and its branch (a branch is checked out in one worktree at most)."""
    with _flock(lock_file, fcntl.LOCK_SH), _flock(worktree_lock_file, fcntl.LOCK_EX):
        yield


@contextmanager
def _flock(lock_file: Path, mode: int) -> Iterator[None]:
    # Each holder opens the file itself: flock locks belong to an open file, so this also
    # keeps threads of one process apart.
    with open(lock_file, "a") as held:
        fcntl.flock(held, mode)  # released when the file is closed
        yield


def clear_stale_locks(git_dir: Path, branch: str, admin_dir: Path | None) -> None:
    """Remove the lock files a killed git process left on one of Shipyard's branches and in the
    metadata of one of its worktrees (index.lock, ORIG_HEAD.lock, the branch's ref lock...).

    Called with the repository lock held: no other Shipyard git call runs on this repository
    (none is left running in the background either: gc.auto=0), and no one else works on
    Shipyard's branches or in its worktrees, so such a lock file can only be a dead process's.
    The user's branches, index and checkout are never touched.
    """
    if not branch.startswith(f"{BRANCH_PREFIX}/"):
        return
    stale = [git_dir / "refs" / "heads" / f"{branch}.lock"]
    if admin_dir is not None and admin_dir.parent == git_dir / "worktrees":
        stale += admin_dir.glob("*.lock")
    for lock in stale:
        lock.unlink(missing_ok=True)


def clear_debris(git_dir: Path, path: Path) -> None:
    """Remove what a git killed mid `worktree add` or `worktree remove` left at `path` (not a
    registered worktree): an empty directory, or one whose .git file points into this repository's
    worktree metadata though it is no longer registered. Anything else there is left for git to refuse."""
    if not path.is_dir():
        return
    dot_git = path / ".git"
    try:
        target = dot_git.read_text().strip().removeprefix("gitdir:").strip() if dot_git.is_file() else ""
    except OSError:
        target = ""
    ours = bool(target) and Path(os.path.normpath(path / target)).parent == git_dir / "worktrees"
    if ours or not any(path.iterdir()):
        shutil.rmtree(path, ignore_errors=True)
