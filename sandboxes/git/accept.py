"""Accepting a job: the director's merge of a finished job into a branch of their own repository.

Only a branch can take a merge. A job may start from anything that names a commit (a
tag, a detached HEAD, a bare repository's HEAD), and the director is then told, in one
line, how to merge it with git; so is the director of a repository opened by URL, whose
only local copy is Shipyard's own clone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandboxes.git.command import WorkspaceError
from sandboxes.git.remotes import is_url
from sandboxes.git.results import MergeResult
from sandboxes.git.workspace import Workspace, commit_identity

if TYPE_CHECKING:
    from sandboxes.git.repo import GitRepo


def accept_job(repo: GitRepo, job_branch: str, into_branch: str) -> MergeResult:
    """Merge `job_branch` into `into_branch` of the user's repo: the one step that may touch the
    user's checkout, and only when the director asks for it.

    When `into_branch` is checked out in the checkout the repository was opened from (a linked
    worktree too), the merge happens there and needs a clean checkout; otherwise it happens in a
    temporary worktree.
    """
    _refuse_unmergeable(repo, job_branch, into_branch)
    checkout, own_git_dir = repo.checkout, repo.checkout_git_dir
    if checkout is None or own_git_dir is None or repo.current_branch() != into_branch:
        return repo.merge(into_branch, job_branch, role="director", message=f"Merge {job_branch}")
    with repo.locked():
        # Its own git directory, not the common one: a linked worktree has its own HEAD and index.
        workspace = Workspace(repo, checkout, into_branch, own_git_dir)
        if workspace.git(["status", "--porcelain", "--untracked-files=no"]).stdout.strip():
            raise WorkspaceError(
                f"your checkout {checkout} has uncommitted changes; commit or stash them, then accept again"
            )
        try:
            identity = commit_identity("director", None)
            result = workspace.merge_in(repo.resolve(job_branch), f"Merge {job_branch}", identity)
        except WorkspaceError as exc:
            raise WorkspaceError(f"{exc}; nothing was merged: fix that in {checkout}, then accept again") from None
        if not result.ok:
            workspace.git(["merge", "--abort"])
        return result


def _refuse_unmergeable(repo: GitRepo, job_branch: str, into: str) -> None:
    """WorkspaceError saying how to merge by hand, when accept cannot merge the job into `into`."""
    if is_url(repo.source):
        raise WorkspaceError(
            f"{repo.source} is a remote repository and accept merges only into local ones; in your clone, "
            f"`git fetch {repo.git_dir} {job_branch} && git merge FETCH_HEAD`, then push"
        )
    if repo.branch_sha(into) is not None:
        return
    repo.resolve(into)  # an unknown name gets resolve's error
    tagged = repo.git(["rev-parse", "--verify", "--quiet", f"refs/tags/{into}"], check=False).returncode == 0
    what = f"the tag {into}" if tagged else f"the commit {into[:12]}"
    if repo.checkout is None:
        raise WorkspaceError(
            f"the job started from {what} of the bare repository {repo.source}, which has no branch to merge "
            f"into; merge it in a clone: `git clone {repo.source} work && cd work && git switch -c <branch> {into} "
            f"&& git merge origin/{job_branch}`, then `git push origin <branch>`"
        )
    raise WorkspaceError(
        f"the job started from {what}, not a branch, so there is nothing to merge it into; make a branch there "
        f"and merge it: `git switch -c <branch> {into} && git merge {job_branch}`"
    )
