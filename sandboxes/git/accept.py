"""Accepting a job: the director's merge of a finished job into a branch of their own repository."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandboxes.git.command import WorkspaceError
from sandboxes.git.results import MergeResult
from sandboxes.git.workspace import Workspace, commit_identity

if TYPE_CHECKING:
    from sandboxes.git.repo import GitRepo


def accept_job(repo: GitRepo, job_branch: str, into_branch: str) -> MergeResult:
    """Merge `job_branch` into `into_branch` of the user's repo: the one step that may touch the
    user's checkout, and only when the director asks for it.

    When `into_branch` is checked out, the merge happens there and needs a clean checkout;
    otherwise it happens in a temporary worktree.
    """
    if repo.checkout is None or repo.current_branch() != into_branch:
        return repo.merge(into_branch, job_branch, role="director", message=f"Merge {job_branch}")
    with repo.locked():
        dirty = repo.git(["status", "--porcelain", "--untracked-files=no"], work_tree=repo.checkout).stdout.strip()
        if dirty:
            raise WorkspaceError(
                f"your checkout {repo.checkout} has uncommitted changes; commit or stash them, then accept again"
            )
        workspace = Workspace(repo, repo.checkout, into_branch, repo.git_dir)
        result = workspace.merge_in(repo.resolve(job_branch), f"Merge {job_branch}", commit_identity("director", None))
        if not result.ok:
            workspace.git(["merge", "--abort"])
        return result
