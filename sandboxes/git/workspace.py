"""A workspace: a linked worktree on its own branch, the directory an agent's sandbox mounts.

Its files are the agent's; its branch and commits are made here, on the host, by git
calls that name the worktree's metadata directory explicitly (see `Workspace.git_dir`).
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sandboxes.base import WORKSPACE_MOUNT
from sandboxes.git.command import WorkspaceError, failure_detail, file_version, git_error
from sandboxes.git.locks import clear_stale_locks
from sandboxes.git.results import MergeResult

if TYPE_CHECKING:
    from sandboxes.git.repo import GitRepo

_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Workspace:
    """A linked worktree on its own branch, the directory an agent's sandbox mounts."""

    repo: GitRepo
    path: Path
    branch: str
    # The worktree's metadata directory inside the repository, found from the repository
    # side: `path/.git` is in the sandbox's hands and could point anywhere.
    git_dir: Path
    resumed: bool = False  # the branch existed already (e.g. after a crash) and was not reset

    def head(self) -> str:
        return self.git(["rev-parse", "HEAD"]).stdout.strip()

    def commit(self, message: str, role: str, agent: str | None = None) -> str | None:
        """Stage everything (.gitignore respected) and commit as the role; None if nothing changed.

        In a worktree left with a conflicted merge (`GitRepo.merge(keep_conflicted=True)`),
        this concludes the merge with a merge commit, refusing while conflict markers remain.
        """
        if not message.strip():
            raise WorkspaceError("a commit needs a message; pass one that says what changed")
        identity = commit_identity(role, agent)
        with self.repo.locked_worktree(self.git_dir):
            self.git(["add", "--all"])
            merging = (self.git_dir / "MERGE_HEAD").exists()
            if merging:
                self._refuse_conflict_markers()
            # --cleanup=whitespace: agents' messages may have lines starting with "#".
            args = ["commit", "--quiet", "--no-verify", "--cleanup=whitespace", "--file=-"]
            committed = self.git(args, env=identity, input=message, check=False)
            if committed.returncode != 0:
                # git commit fails (1) when nothing is staged: asked only then, as most commits do hold a change.
                # Without the repo's diff drivers: a textconv or external diff is a command it names.
                unchanged = ["diff", "--cached", "--quiet", "--no-ext-diff", "--no-textconv"]
                if not merging and self.git(unchanged, check=False).returncode == 0:
                    return None
                raise git_error(args, committed)
            head = self.head()
            # Everything not ignored is in the commit now: the files are as a reset to it would leave them.
            self.repo.left_clean(self.path, head)
            return head

    def uncommittable(self, path: str) -> str | None:
        """Why a file written at `path` (relative, or under /workspace) would never reach a commit, or None:
        git ignores it, or it lies inside a submodule, which a commit of this repository does not hold."""
        relative = path.removeprefix(WORKSPACE_MOUNT).lstrip("/") or "."
        for module in self._submodules():
            if relative == module or relative.startswith(f"{module}/"):
                return (f"{path} is inside the submodule {module}: changes there are not part of this "
                        "repository's commits; change the files of this repository instead")
        # A tracked file is never ignored, whatever .gitignore says: check-ignore looks at the index first.
        if self.git(["check-ignore", "-q", "--", relative], check=False).returncode == 0:
            return (f"{path} is ignored by git (.gitignore): a file written there is never committed; "
                    "write it where the repository keeps its files, or say why it must be there")
        return None

    def _submodules(self) -> tuple[str, ...]:
        """The submodules in the index, listed once for each state of it: the listing names every file of the
        repository, and an agent writes many files between two commits."""
        index = file_version(self.git_dir / "index")
        return () if index is None else self._submodules_of(index)  # no index yet: nothing staged, no submodule

    @functools.lru_cache(maxsize=256)  # noqa: B019 - equal workspaces share entries; a few hundred at most
    def _submodules_of(self, _index: tuple[int, int, int]) -> tuple[str, ...]:
        listed = self.git(["ls-files", "--stage", "-z"], check=False).stdout.split("\0")
        return tuple(entry.partition("\t")[2] for entry in listed if entry.startswith("160000 "))

    def reset(self, sha: str) -> None:
        """Put the branch and the files back to `sha`, dropping uncommitted work (ignored files stay).

        A stage redone after a crash starts here, so that it cannot commit twice.
        """
        with self.repo.locked_worktree(self.git_dir):
            self.repo.left_clean(self.path, None)
            clear_stale_locks(self.repo.git_dir, self.branch, self.git_dir)
            self.git(["reset", "--quiet", "--hard", sha])
            self.git(["clean", "--quiet", "-fd"])
            self.repo.left_clean(self.path, sha)

    def start_at(self, sha: str) -> None:
        """`reset(sha)`, unless this process left the worktree exactly there, with nothing run in it since
        (`GitRepo.ran_in`): a stage that starts where the last one committed needs no reset."""
        if self.repo.clean_at(self.path) != sha:
            self.reset(sha)

    def restore(self, paths: Sequence[str], ref: str) -> None:
        """Put `paths` (files and index) back as they are in `ref`; those that `ref` lacks are deleted.

        An evaluation does this to the files its hidden tests replace, undoing the agents' edits to them.
        """
        with self.repo.locked_worktree(self.git_dir):
            self.repo.left_clean(self.path, None)
            listed = [self.git(["ls-tree", "-r", "-z", "--name-only", ref, "--", *paths]).stdout,
                      self.git(["ls-files", "-z", "--", *paths]).stdout]
            known = sorted({p for out in listed for p in out.split("\0") if p})
            if known:
                self.git(["restore", f"--source={ref}", "--staged", "--worktree", "--", *known])

    def apply(self, patch: str) -> None:
        """Apply a unified diff to the files (not the index); WorkspaceError with git's reason if it does not apply."""
        with self.repo.locked_worktree(self.git_dir):
            self.repo.left_clean(self.path, None)
            applied = self.git(["apply", "--whitespace=nowarn", "-"], input=patch, check=False)
        if applied.returncode != 0:
            raise WorkspaceError(f"the patch does not apply to {self.branch}: {failure_detail(applied)}")

    def merge_in(self, theirs: str, message: str, identity: dict[str, str]) -> MergeResult:
        """Merge the commit `theirs` into this worktree's branch (always a merge commit), under the repo lock.

        A conflict is left in the worktree and reported; any other failure is aborted and raised.
        """
        before = self.head()
        merged = self.git(
            ["merge", "--no-ff", "--no-edit", "--no-verify", "-m", message, theirs], env=identity, check=False
        )
        if merged.returncode == 0:
            after = self.head()
            note = "already up to date" if after == before else message
            return MergeResult(ok=True, sha=after, message=note)
        unmerged = self.git(["diff", "--name-only", "--diff-filter=U", "-z"]).stdout
        conflicts = [p for p in unmerged.split("\0") if p]
        if not conflicts:
            if (self.git_dir / "MERGE_HEAD").exists():
                self.git(["merge", "--abort"])
            raise git_error(["merge"], merged)
        return MergeResult(ok=False, sha=None, conflicts=conflicts, message=f"conflicts in {', '.join(conflicts)}")

    def _refuse_conflict_markers(self) -> None:
        check = self.git(["diff", "--cached", "--check"], check=False).stdout
        paths = sorted({line.split(":", 1)[0] for line in check.splitlines() if "leftover conflict marker" in line})
        if paths:
            raise WorkspaceError(
                f"conflict markers remain in {', '.join(paths)}; resolve them before committing the merge"
            )

    def git(
        self, args: list[str], *, env: dict[str, str] | None = None, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run git in this worktree."""
        return self.repo.git(args, git_dir=self.git_dir, work_tree=self.path, env=env, input=input, check=check)


def commit_identity(role: str, agent: str | None) -> dict[str, str]:
    """Author and committer naming the role, so `git log` tells who did what; never anyone's config."""
    if not _ROLE.fullmatch(role):
        raise WorkspaceError(f"invalid role {role!r}; use letters, digits, '-' and '_' (e.g. 'coder')")
    name = f"Shipyard {role}"
    if agent:
        name += " (" + re.sub(r"[<>\n]", "", agent) + ")"
    email = f"{role}@shipyard.invalid"
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
