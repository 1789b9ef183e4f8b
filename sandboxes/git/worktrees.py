"""The bookkeeping of a repository's worktrees: which exist, on what branch, and where their metadata is."""

from __future__ import annotations

import os
from pathlib import Path

from sandboxes.git.branches import BRANCH_PREFIX
from sandboxes.git.command import WorkspaceError


def parse_worktree_list(out: str) -> dict[Path, str | None]:
    """`git worktree list --porcelain -z` as path -> branch (None when detached); the main worktree too."""
    trees: dict[Path, str | None] = {}
    for record in out.split("\0\0"):
        fields = dict(f.partition(" ")[::2] for f in record.split("\0") if f)
        if "worktree" in fields:
            trees[Path(fields["worktree"])] = fields.get("branch", "").removeprefix("refs/heads/") or None
    return trees


def find_admin_dir(git_dir: Path, path: Path) -> Path | None:
    """The metadata directory (`<git_dir>/worktrees/<name>`) of the linked worktree at `path`.

    Found from the repository side: the worktree's own `.git` file is in a sandbox's hands.
    """
    for gitdir_file in (git_dir / "worktrees").glob("*/gitdir"):
        target = Path(os.path.normpath(gitdir_file.parent / gitdir_file.read_text().strip()))
        if target.parent == path:
            return gitdir_file.parent
    return None


def refuse_checked_out(branch: str, trees: dict[Path, str | None], path: Path, checkout: Path | None) -> None:
    """WorkspaceError if `branch` is checked out anywhere but at `path`."""
    for other, other_branch in trees.items():
        if other_branch != branch or other == path:
            continue
        if other == checkout or not branch.startswith(f"{BRANCH_PREFIX}/"):
            where = "your checkout" if other == checkout else "your worktree"
            raise WorkspaceError(f"{branch} is checked out in {where} {other}; switch it to another branch first")
        raise WorkspaceError(
            f"{branch} is checked out in the workspace at {other}; use that path or remove that workspace first"
        )


def outside_repository(path: Path, checkout: Path | None, git_dir: Path) -> Path:
    """`path` resolved, or WorkspaceError if it lies inside the user's checkout or the git directory."""
    path = Path(path).expanduser().resolve()
    for inside in (checkout, git_dir):
        if inside is not None and path.is_relative_to(inside):
            raise WorkspaceError(
                f"{path} is inside {inside}; put workspaces outside the repository (e.g. in the state directory)"
            )
    return path
