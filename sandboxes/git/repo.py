"""The user's repository, used only through its git directory and worktrees of Shipyard's own.

The user's checkout is never touched. Repository-level operations run against the git
directory alone (refs, objects, worktree metadata: no work tree, so nothing can write
the user's index or files); everything that needs files runs in a linked worktree that
Shipyard created, outside the user's checkout. The one exception is `accept`, the
director's explicit request to merge a finished job into their branch.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sandboxes.git.accept import accept_job
from sandboxes.git.branches import AGENT_SEPARATOR, check_branch
from sandboxes.git.command import WorkspaceError, repo_config_args, run_git
from sandboxes.git.locks import WORKTREE_LOCK, clear_debris, clear_stale_locks, exclusive, one_worktree
from sandboxes.git.remotes import cache_name, clone, fetch_clone, fetch_refs, is_url, push_branch
from sandboxes.git.results import DiffStat, MergeResult, parse_numstat
from sandboxes.git.workspace import Workspace, commit_identity
from sandboxes.git.worktrees import find_admin_dir, outside_repository, parse_worktree_list, refuse_checked_out

# An object name: SHA-1, or SHA-256 in a repository that uses it.
SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
DIFFS_KEPT = 16
DIFF_KEPT_CHARS = 1 << 20


class GitRepo:
    """The user's repository, used only through its git directory and worktrees of its own."""

    def __init__(
        self, git_dir: Path, checkout: Path | None, source: str, lock_file: Path, checkout_git_dir: Path | None = None
    ):
        self.git_dir = git_dir  # the common git directory (for a URL, the cached bare clone)
        self.checkout = checkout  # the user's work tree, which nothing here may touch but `accept`
        # The checkout's own git directory (its HEAD and index): the common one for a main
        # worktree, `<git_dir>/worktrees/<name>` when the user opened a linked worktree.
        self.checkout_git_dir = checkout_git_dir
        self.source = source
        self._lock_file = lock_file
        self._config = repo_config_args(git_dir)
        self._diffs: dict[tuple[str, str], str] = {}  # recent diffs of two commit shas, which never change
        self._diffs_lock = threading.Lock()
        # Worktrees this process left exactly at a commit (checked out, committed or reset there; nothing run in
        # them since): path -> that sha. Starting a stage there needs no reset (see Workspace.start_at).
        self._clean_at: dict[Path, str] = {}

    @classmethod
    def open(cls, source: str | Path, cache_dir: Path, token: str | None = None) -> GitRepo:
        """The repository at a local path, or at a URL (file:// too).

        A URL is cloned into cache_dir on the first open and fetched on every later one,
        with `token` (if any) sent as in `push`.
        """
        if isinstance(source, str) and is_url(source):
            return cls._open_url(source, cache_dir, token)
        return cls._open_path(Path(source).expanduser().resolve())

    @classmethod
    def _open_path(cls, path: Path) -> GitRepo:
        if not path.is_dir():
            raise WorkspaceError(f"{path}: no such directory; pass the path or URL of a git repository")
        found = run_git(
            ["rev-parse", "--path-format=absolute", "--git-common-dir", "--git-dir", "--is-bare-repository"],
            cwd=path,
            check=False,
        )
        if found.returncode != 0:
            raise WorkspaceError(
                f"{path} is not a git repository; run `git init` there or pass a repository's path or URL"
            )
        common_dir, own_dir, bare = found.stdout.splitlines()
        git_dir = Path(common_dir)
        if bare == "true":
            return cls(git_dir, None, str(path), git_dir / "shipyard.lock")
        checkout = Path(run_git(["rev-parse", "--show-toplevel"], cwd=path).stdout.strip())
        return cls(git_dir, checkout, str(path), git_dir / "shipyard.lock", checkout_git_dir=Path(own_dir))

    @classmethod
    def _open_url(cls, url: str, cache_dir: Path, token: str | None) -> GitRepo:
        cache_dir.mkdir(parents=True, exist_ok=True)
        git_dir = cache_dir / cache_name(url)
        # Beside the clone, not in it: it must exist before the clone does.
        lock_file = cache_dir / f"{git_dir.name}.lock"
        with exclusive(lock_file):
            if git_dir.exists():
                fetch_clone(url, git_dir, token)
            else:
                clone(url, git_dir, token)
        return cls(git_dir, None, url, lock_file)

    def resolve(self, ref: str) -> str:
        """The commit sha a branch, tag, sha or expression like `main~2` names."""
        return self._peeled(ref, "commit")

    def tree(self, ref: str) -> str:
        """The sha of the files `ref`'s commit holds: commits with the same files have the same tree."""
        return self._peeled(ref, "tree")

    def _peeled(self, ref: str, kind: str) -> str:
        found = self.git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{{kind}}}"], check=False)
        if found.returncode != 0:
            raise WorkspaceError(f"unknown ref {ref!r} in {self.source}; name an existing branch, tag or commit")
        return found.stdout.strip()

    def ensure_branch(self, branch: str, base_ref: str) -> str:
        """Create `branch` at base_ref unless it exists; its sha. No checkout is involved."""
        check_branch(branch)
        with self.locked():
            clear_stale_locks(self.git_dir, branch, None)
            return self._ensure_branch(branch, base_ref)[0]

    def create_workspace(self, branch: str, base_ref: str, path: Path) -> Workspace:
        """A worktree at `path` on a new `branch` from base_ref, or on the existing branch as it is (resume).

        Calling it again for a live workspace returns that workspace, uncommitted work included.
        """
        check_branch(branch)
        path = self._workspace_path(path)
        live = self._live_workspace(path, branch)
        if live is not None:
            return live
        with self.locked():
            if SHA.fullmatch(base_ref) and self._added(path, branch, base_ref):
                return self._workspace(path, branch, resumed=False)
            trees = self._worktrees(prune=True)
            if trees.get(path) == branch:
                return self._workspace(path, branch, resumed=True)
            refuse_checked_out(branch, trees, path, self.checkout)
            if path not in trees:
                clear_debris(self.git_dir, path)
            clear_stale_locks(self.git_dir, branch, None)
            existing, base = self._lookup(f"refs/heads/{branch}", base_ref)
            if existing is not None:
                self.git(["worktree", "add", "--quiet", str(path), branch])
                self._clean_at[path] = existing
            else:  # the branch and its worktree in one git process
                base = base or self.resolve(base_ref)
                self.git(["worktree", "add", "--quiet", "-b", branch, str(path), base])
                self._clean_at[path] = base
            return self._workspace(path, branch, resumed=existing is not None)

    def _added(self, path: Path, branch: str, sha: str) -> bool:
        """A new branch at commit `sha` and its worktree at `path`, in one git process; False, with nothing
        made, when that is not how things stand (the branch exists, debris or a registration is in the way):
        the caller then looks. What most workspaces are: new, from a commit named by its sha."""
        if path.exists():
            return False
        added = self.git(["worktree", "add", "--quiet", "-b", branch, str(path), sha], check=False)
        if added.returncode != 0:
            return False
        self._clean_at[path] = sha
        return True

    def open_workspace(self, path: Path) -> Workspace:
        """The existing workspace at `path`, e.g. the one a conflicted merge was kept in."""
        path = Path(path).expanduser().resolve()
        branch = self._worktrees().get(path)
        if branch is None or path == self.checkout:
            raise WorkspaceError(
                f"{path} is not a Shipyard workspace of {self.source}; create one with create_workspace()"
            )
        return self._workspace(path, branch, resumed=True)

    def discard_workspace(self, path: Path) -> None:
        """Remove whatever is at `path`: a worktree, or what a git killed mid-way left of one; the files,
        uncommitted work included, go; the branch and its commits stay."""
        path = self._workspace_path(path)
        with self.locked():
            self._discard(path)
            self.git(["worktree", "prune"])

    def remove_workspace(self, workspace: Workspace) -> None:
        """Delete the worktree, uncommitted work included; its branch and commits are kept."""
        self._clean_at.pop(workspace.path, None)
        with self.locked():
            removed = self.git(["worktree", "remove", "--force", "--force", str(workspace.path)], check=False)
            if removed.returncode != 0:
                if workspace.path in self._worktrees():  # it is there, and would not go: say why
                    self.git(["worktree", "remove", "--force", "--force", str(workspace.path)])
                self.git(["worktree", "prune"])  # its directory went some other way: forget it

    def diff(self, a: str, b: str) -> str:
        """Unified diff of what `b` changed since it forked from `a`: `git diff a...b`.

        That is what a pull request of b into a shows: commits that reached `a` after the
        fork are not in it.
        """
        key = (a, b)
        with self._diffs_lock:
            if key in self._diffs:
                return self._diffs[key]
        diff = self.git(["diff-tree", "-r", "-p", "--find-renames", *self._fork_point(a, b)]).stdout
        # A subtask's change is read twice (the tampering check, then its reviewer): kept when it is named by
        # shas, and small enough that a few cost little memory.
        if SHA.fullmatch(a) and SHA.fullmatch(b) and len(diff) <= DIFF_KEPT_CHARS:
            with self._diffs_lock:
                while len(self._diffs) >= DIFFS_KEPT:
                    del self._diffs[next(iter(self._diffs))]
                self._diffs[key] = diff
        return diff

    def diff_stat(self, a: str, b: str) -> DiffStat:
        """Files changed by `b` since it forked from `a` (the same range as `diff`)."""
        out = self.git(["diff-tree", "-r", "-z", "--numstat", "--find-renames", *self._fork_point(a, b)]).stdout
        return parse_numstat(out)

    def merge_clean(self, into_branch: str, merges: Sequence[tuple[str, str]], *,
                    role: str = "integrator") -> list[MergeResult]:
        """Merge each (from_branch, message) of `merges` into into_branch in turn, each a merge commit, without a
        worktree, as long as they merge cleanly: the results of those that did, in order; the first that conflicts
        and those after it are not merged (`merge` with keep_conflicted leaves a conflict for an agent). Nothing is
        checked out: each merged tree is computed in the object store (`git merge-tree`, the same ort merge as `git
        merge`), and the branch moves once, to the last merge, only if nobody moved it meanwhile. A branch merged
        already (before a crash) is reported "already up to date"."""
        check_branch(into_branch)
        identity = commit_identity(role, None)
        with self.locked():
            ours, *theirs = self._lookup(f"refs/heads/{into_branch}", *(branch for branch, _ in merges))
            if ours is None:
                raise WorkspaceError(f"no branch {into_branch} to merge into; create it with ensure_branch()")
            shas = [sha or self.resolve(branch) for sha, (branch, _) in zip(theirs, merges, strict=True)]
            merged_before = self._merged_into(ours, shas)
            start, results = ours, []
            for sha, (_, message) in zip(shas, merges, strict=True):
                if sha in merged_before:
                    results.append(MergeResult(ok=True, sha=ours, message="already up to date"))
                    continue
                tree = self.git(["merge-tree", "--write-tree", "--no-messages", ours, sha], check=False)
                if tree.returncode == 1:
                    break
                if tree.returncode != 0:
                    self.git(["merge-tree", "--write-tree", ours, sha])  # raises, saying why
                ours = self.git(["commit-tree", tree.stdout.split()[0], "-p", ours, "-p", sha, "-m", message],
                                env=identity).stdout.strip()
                results.append(MergeResult(ok=True, sha=ours, message=message))
            if ours != start:
                self.git(["update-ref", "-m", results[-1].message, f"refs/heads/{into_branch}", ours, start])
        return results

    def _merged_into(self, head: str, shas: Sequence[str]) -> set[str]:
        """Those of `shas` that `head` contains already, in one git process."""
        if not shas:
            return set()
        # The commits of `shas` that `head` lacks (a subtask's own few): a sha not among them is in `head`.
        # `merge-base --is-ancestor` would ask one at a time.
        unmerged = self.git(["rev-list", f"^{head}", *shas]).stdout.split()
        return set(shas) - set(unmerged)

    def merge(
        self,
        into_branch: str,
        from_branch: str,
        workspace_path: Path | None = None,
        *,
        keep_conflicted: bool = False,
        role: str = "integrator",
        message: str | None = None,
    ) -> MergeResult:
        """Merge from_branch into into_branch (always a merge commit) in a worktree on into_branch.

        The worktree is the one at workspace_path (created there if need be, and left
        in place), else a temporary one. A conflict is reported in the result, not raised:
        the merge is aborted, or with keep_conflicted left in its worktree
        (`result.workspace_path`) for an agent to resolve and `Workspace.commit`.
        """
        check_branch(into_branch)
        identity = commit_identity(role, None)
        message = message or f"Merge {from_branch} into {into_branch}"
        with self.locked():
            if self.branch_sha(into_branch) is None:
                raise WorkspaceError(f"no branch {into_branch} to merge into; create it with ensure_branch()")
            theirs = self.resolve(from_branch)
            temporary = workspace_path is None
            if workspace_path is None:
                workspace_path = Path(tempfile.mkdtemp(prefix="shipyard-merge-"))
            path = self._workspace_path(workspace_path)
            try:
                workspace = self._merge_workspace(into_branch, path)
                result = workspace.merge_in(theirs, message, identity)
            except BaseException:
                if temporary:
                    self._discard(path)
                raise
            if result.ok or not keep_conflicted:
                if not result.ok:
                    workspace.git(["merge", "--abort"])
                if temporary:
                    self._discard(path)
                return result
            return result.model_copy(update={"workspace_path": path})

    def push(self, branch: str, url: str, token: str | None = None, to: str | None = None) -> str:
        """Push `branch` to `to` (default: the same name) at `url`, fast-forward only (see remotes.push_branch)."""
        return push_branch(self, branch, url, token, to)

    def fetch(self, url: str, refspecs: Sequence[str], token: str | None = None) -> None:
        """Fetch `refspecs` from `url` (see remotes.fetch_refs)."""
        fetch_refs(self, url, refspecs, token)

    def current_branch(self) -> str | None:
        """The branch the user's checkout is on; None when detached or without a checkout."""
        if self.checkout is None:
            return None
        found = self.git(["symbolic-ref", "--quiet", "--short", "HEAD"], git_dir=self.checkout_git_dir, check=False)
        return found.stdout.strip() or None

    def accept(self, job_branch: str, into_branch: str) -> MergeResult:
        """Merge a finished job into `into_branch` of the user's repo (see accept.accept_job)."""
        return accept_job(self, job_branch, into_branch)

    def fast_forward(self, branch: str, to: str) -> str:
        """Move `branch` on to `to`, a commit that already holds all of it; WorkspaceError if it does not."""
        check_branch(branch)
        with self.locked():
            old, new = self.resolve(branch), self.resolve(to)
            if self.git(["merge-base", "--is-ancestor", old, new], check=False).returncode != 0:
                raise WorkspaceError(f"{to} does not build on {branch}: it cannot be fast-forwarded there")
            self.git(["update-ref", f"refs/heads/{branch}", new, old])
            return new

    def is_merged(self, branch: str, into: str) -> bool:
        """Whether every commit of `branch` is in `into` (False when either does not exist)."""
        try:
            head, target = self.resolve(branch), self.resolve(into)
        except WorkspaceError:
            return False
        return self.git(["merge-base", "--is-ancestor", head, target], check=False).returncode == 0

    def delete_job_branches(self, job_branch: str) -> list[str]:
        """Delete a job's branch and its agents' branches (`<job_branch>--*`); the names deleted.

        A branch still checked out in a worktree is refused, so no one's files go with it.
        """
        check_branch(job_branch)
        with self.locked():
            self.git(["worktree", "prune"])
            refs = self.git(["for-each-ref", "--format=%(refname)", f"refs/heads/{job_branch}",
                             f"refs/heads/{job_branch}{AGENT_SEPARATOR}*"]).stdout.split()
            branches = [ref.removeprefix("refs/heads/") for ref in refs]
            for path, branch in self._worktrees().items():
                if branch in branches:
                    raise WorkspaceError(f"{branch} is checked out at {path}; switch that worktree to another "
                                         "branch, then discard again")
            if branches:
                self.git(["branch", "-D", "--", *branches])
            return branches

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this repository's lock (see locks.exclusive)."""
        with exclusive(self._lock_file):
            yield

    def git(
        self,
        args: list[str],
        *,
        git_dir: Path | None = None,
        work_tree: Path | None = None,
        env: dict[str, str] | None = None,
        input: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run git on the repository's git directory, or with `git_dir` and `work_tree` in one of its worktrees."""
        # Without --work-tree git sees a bare repository: a slip cannot reach the user's files.
        location = ["--git-dir", str(git_dir or self.git_dir)]
        if work_tree is not None:
            location += ["--work-tree", str(work_tree)]
        return run_git(
            args, cwd=work_tree or self.git_dir, options=[*self._config, *location], env=env, input=input, check=check
        )

    def _merge_workspace(self, branch: str, path: Path) -> Workspace:
        trees = self._worktrees()
        if trees.get(path) != branch:
            refuse_checked_out(branch, trees, path, self.checkout)
            if path not in trees:
                clear_debris(self.git_dir, path)
            clear_stale_locks(self.git_dir, branch, None)
            self.git(["worktree", "add", "--quiet", str(path), branch])
        workspace = self._workspace(path, branch, resumed=True)
        clear_stale_locks(self.git_dir, branch, workspace.git_dir)
        if workspace.git(["status", "--porcelain"]).stdout.strip():
            raise WorkspaceError(
                f"the workspace at {path} has uncommitted changes; commit or discard them before merging"
            )
        return workspace

    def ran_in(self, path: Path) -> None:
        """Something may write the files at `path` now (a sandbox on it): its next stage resets it."""
        self.left_clean(Path(path).resolve(), None)

    def clean_at(self, path: Path) -> str | None:
        """The commit the worktree at `path` is exactly at, if this process left it so (see `_clean_at`)."""
        return self._clean_at.get(path)

    def left_clean(self, path: Path, sha: str | None) -> None:
        if sha is None:
            self._clean_at.pop(path, None)
        else:
            self._clean_at[path] = sha

    def _discard(self, path: Path) -> None:
        self._clean_at.pop(path, None)
        if path in self._worktrees():
            self.git(["worktree", "remove", "--force", "--force", str(path)])
        shutil.rmtree(path, ignore_errors=True)  # a temporary dir that never became a worktree

    def _ensure_branch(self, branch: str, base_ref: str) -> tuple[str, bool]:
        """The branch's sha, and whether it was created now."""
        sha, base = self._lookup(f"refs/heads/{branch}", base_ref)
        if sha is not None:
            return sha, False
        sha = base or self.resolve(base_ref)  # which says what is wrong with base_ref
        # The empty old value makes the update fail if another process created it meanwhile.
        self.git(["update-ref", "-m", f"shipyard: branch from {base_ref}", f"refs/heads/{branch}", sha, ""])
        return sha, True

    def branch_sha(self, branch: str) -> str | None:
        """The sha of the branch called `branch`; None when there is none (e.g. `branch` names a tag)."""
        found = self.git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], check=False)
        return found.stdout.strip() if found.returncode == 0 else None

    def _fork_point(self, a: str, b: str) -> tuple[str, str]:
        """(where `b` forked from `a`, b's sha), as the commit shas."""
        sha_a, sha_b = self._commits(a, b)
        base = self.git(["merge-base", sha_a, sha_b], check=False)
        if base.returncode != 0:
            raise WorkspaceError(f"{a} and {b} share no history; compare refs of the same project")
        return base.stdout.strip(), sha_b

    def _commits(self, *refs: str) -> list[str]:
        """The commit shas of `refs`, as resolve() gives them, in one git process rather than one each."""
        # None: missing or ambiguous, and resolve() says what is wrong with it.
        return [sha or self.resolve(ref) for ref, sha in zip(refs, self._lookup(*refs), strict=True)]

    def _lookup(self, *refs: str) -> list[str | None]:
        """The commit sha each of `refs` names, None for those naming none, in one git process."""
        if any("\n" in ref for ref in refs):  # they go one per line; no ref name holds one
            raise WorkspaceError(f"unknown ref in {refs!r}; name an existing branch, tag or commit")
        # On stdin, a ref cannot pass for an option.
        listed = "".join(f"{ref}^{{commit}}\n" for ref in refs)
        found = self.git(["cat-file", "--batch-check=%(objectname)"], input=listed).stdout.splitlines()
        # Anything but a sha is git's "<ref> missing" or "ambiguous".
        return [sha if SHA.fullmatch(sha) else None for sha in found]

    def _worktrees(self, prune: bool = False) -> dict[Path, str | None]:
        """Registered worktrees (the user's checkout too): path -> branch, None when detached.

        `prune`: first forget those whose directories are gone (a crash, a cleanup), so that their
        branches can be checked out again; git is asked to only when there is one."""
        trees = parse_worktree_list(self.git(["worktree", "list", "--porcelain", "-z"]).stdout)
        if prune and not all(path.exists() for path in trees):
            self.git(["worktree", "prune"])
            return self._worktrees()
        return trees

    def _live_workspace(self, path: Path, branch: str) -> Workspace | None:
        """The workspace at `path` if it is registered there on `branch` already, found from the files git keeps
        rather than under the lock: every stage of a subtask starts by asking for its workspace again."""
        try:
            admin_dir = find_admin_dir(self.git_dir, path)
            head = (admin_dir / "HEAD").read_text().strip() if admin_dir else None
            here = (path / ".git").is_file()
        except OSError:  # another worktree came or went meanwhile: ask git, under the lock
            return None
        if admin_dir is None or head != f"ref: refs/heads/{branch}" or not here:
            return None
        return Workspace(repo=self, path=path, branch=branch, git_dir=admin_dir, resumed=True)

    def locked_worktree(self, admin_dir: Path) -> AbstractContextManager[None]:
        """Hold the lock of the worktree whose metadata is `admin_dir` (see locks.one_worktree)."""
        return one_worktree(self._lock_file, admin_dir / WORKTREE_LOCK)

    def _workspace(self, path: Path, branch: str, resumed: bool) -> Workspace:
        admin_dir = find_admin_dir(self.git_dir, path)
        if admin_dir is None:
            raise WorkspaceError(
                f"{path} is not registered as a worktree of {self.source}; create it with create_workspace()"
            )
        return Workspace(repo=self, path=path, branch=branch, git_dir=admin_dir, resumed=resumed)

    def _workspace_path(self, path: Path) -> Path:
        return outside_repository(path, self.checkout, self.git_dir)
