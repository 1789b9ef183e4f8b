"""Git workspaces: a worktree per agent on its own branch, and merges between branches.

The user's checkout is never touched. Repository-level operations run against the git
directory alone (refs, objects, worktree metadata: no work tree, so nothing can write
the user's index or files); everything that needs files runs in a linked worktree that
Shipyard created, outside the user's checkout.

The target repository is data, not code. Every git call carries `_SAFE_CONFIG`: its
hooks and fsmonitor never run on the host, and the filter drivers configured for it
(git-lfs, git-crypt, ...) are switched off, so worktrees hold blobs exactly as stored
and commits store files exactly as written. Identity never comes from anyone's config.
One gap is documented rather than closed: a merge driver (`merge.<name>.driver`) that
the user's own config defines still runs when a branch's .gitattributes names it,
since blanking it would make git resolve conflicts silently and wrongly.

Mutating operations on one repository are serialized, across threads and processes
(see `_exclusive`); reads (`resolve`, `diff`, `diff_stat`) need no lock because git
updates refs atomically.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, computed_field

BRANCH_PREFIX = "shipyard"

# Separates a job from an agent in branch names. Not "/": git stores refs as paths, so
# a branch `shipyard/<job>` and branches under `shipyard/<job>/` cannot both exist.
AGENT_SEPARATOR = "--"

# Passed as `-c` to every git call; command-line config outranks the repo's and the user's.
_SAFE_CONFIG = (
    # Sandboxes write worktrees as uid 1000 while the host runs as another uid.
    "safe.directory=*",
    # The repository's hooks are its code and must never run on the host.
    "core.hooksPath=/dev/null",
    # A configured fsmonitor is a command git would run, just like a hook.
    "core.fsmonitor=false",
    # A background worker has no signing key and no pinentry.
    "commit.gpgSign=false",
    # No auto-gc detached from our calls: every git process of ours ends inside the repository
    # lock, so a lock file met under that lock is a dead process's (see _clear_stale_locks).
    "gc.auto=0",
)
_SAFE_ARGS = tuple(arg for setting in _SAFE_CONFIG for arg in ("-c", setting))

# Variables that would point our git calls at another repository, index or config
# (as `git rev-parse --local-env-vars` lists them), e.g. when Shipyard runs from a hook.
_REPO_ENV_VARS = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_OBJECT_DIRECTORY",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_INDEX_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_COMMON_DIR",
    }
)

_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class WorkspaceError(RuntimeError):
    """A git workspace operation failed; the message is one line and says what to do."""


class FileStat(BaseModel):
    path: str
    old_path: str | None = None  # set when the file was renamed
    insertions: int
    deletions: int
    binary: bool = False


class DiffStat(BaseModel):
    files: list[FileStat]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def insertions(self) -> int:
        return sum(f.insertions for f in self.files)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)

    def summary(self) -> str:
        """One line in git's own words, e.g. "3 files changed, 10 insertions(+), 2 deletions(-)"."""
        n = len(self.files)
        return f"{n} file{'s' * (n != 1)} changed, {self.insertions} insertions(+), {self.deletions} deletions(-)"


class MergeResult(BaseModel):
    ok: bool
    sha: str | None  # the head of the target branch after the merge; None when it conflicted
    conflicts: list[str] = []  # paths with conflicts, relative to the repository root
    message: str  # one line for the event log
    workspace_path: Path | None = None  # the kept worktree holding a conflicted merge


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
        return self._git(["rev-parse", "HEAD"]).stdout.strip()

    def commit(self, message: str, role: str, agent: str | None = None) -> str | None:
        """Stage everything (.gitignore respected) and commit as the role; None if nothing changed.

        In a worktree left with a conflicted merge (`GitRepo.merge(keep_conflicted=True)`),
        this concludes the merge with a merge commit, refusing while conflict markers remain.
        """
        if not message.strip():
            raise WorkspaceError("a commit needs a message; pass one that says what changed")
        identity = _identity(role, agent)
        with self.repo._locked():
            self._git(["add", "--all"])
            if (self.git_dir / "MERGE_HEAD").exists():
                self._refuse_conflict_markers()
            # Without the repo's diff drivers: a textconv or external diff is a command it names.
            elif self._git(["diff", "--cached", "--quiet", "--no-ext-diff", "--no-textconv"],
                           check=False).returncode == 0:
                return None
            # --cleanup=whitespace: agents' messages may have lines starting with "#".
            self._git(
                ["commit", "--quiet", "--no-verify", "--cleanup=whitespace", "--file=-"], env=identity, input=message
            )
            return self.head()

    def reset(self, sha: str) -> None:
        """Put the branch and the files back to `sha`, dropping uncommitted work (ignored files stay).

        A stage redone after a crash starts here, so that it cannot commit twice.
        """
        with self.repo._locked():
            self.repo._clear_stale_locks(self.branch, self.git_dir)
            self._git(["reset", "--quiet", "--hard", sha])
            self._git(["clean", "--quiet", "-fd"])

    def restore(self, paths: Sequence[str], ref: str) -> None:
        """Put `paths` (files and index) back as they are in `ref`; those that `ref` lacks are deleted.

        An evaluation does this to the files its hidden tests replace, undoing the agents' edits to them.
        """
        with self.repo._locked():
            listed = [self._git(["ls-tree", "-r", "-z", "--name-only", ref, "--", *paths]).stdout,
                      self._git(["ls-files", "-z", "--", *paths]).stdout]
            known = sorted({p for out in listed for p in out.split("\0") if p})
            if known:
                self._git(["restore", f"--source={ref}", "--staged", "--worktree", "--", *known])

    def apply(self, patch: str) -> None:
        """Apply a unified diff to the files (not the index); WorkspaceError with git's reason if it does not apply."""
        with self.repo._locked():
            applied = self._git(["apply", "--whitespace=nowarn", "-"], input=patch, check=False)
        if applied.returncode != 0:
            raise WorkspaceError(f"the patch does not apply to {self.branch}: {_detail(applied)}")

    def _refuse_conflict_markers(self) -> None:
        check = self._git(["diff", "--cached", "--check"], check=False).stdout
        paths = sorted({line.split(":", 1)[0] for line in check.splitlines() if "leftover conflict marker" in line})
        if paths:
            raise WorkspaceError(
                f"conflict markers remain in {', '.join(paths)}; resolve them before committing the merge"
            )

    def _git(
        self, args: list[str], *, env: dict[str, str] | None = None, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.repo._git(args, git_dir=self.git_dir, work_tree=self.path, env=env, input=input, check=check)


class GitRepo:
    """The user's repository, used only through its git directory and worktrees of its own."""

    def __init__(self, git_dir: Path, checkout: Path | None, source: str, lock_file: Path):
        self.git_dir = git_dir  # the common git directory (for a URL, the cached bare clone)
        self.checkout = checkout  # the user's work tree, which nothing here may touch
        self.source = source
        self._lock_file = lock_file
        self._config = _config_args(git_dir)

    @classmethod
    def open(cls, source: str | Path, cache_dir: Path, token: str | None = None) -> GitRepo:
        """The repository at a local path, or at a URL (file:// too).

        A URL is cloned into cache_dir on the first open and fetched on every later one,
        with `token` (if any) sent as in `push`.
        """
        if isinstance(source, str) and _is_url(source):
            return cls._open_url(source, cache_dir, token)
        return cls._open_path(Path(source).expanduser().resolve())

    @classmethod
    def _open_path(cls, path: Path) -> GitRepo:
        if not path.is_dir():
            raise WorkspaceError(f"{path}: no such directory; pass the path or URL of a git repository")
        found = _run_git(
            ["rev-parse", "--path-format=absolute", "--git-common-dir", "--is-bare-repository"], cwd=path, check=False
        )
        if found.returncode != 0:
            raise WorkspaceError(
                f"{path} is not a git repository; run `git init` there or pass a repository's path or URL"
            )
        git_dir_text, bare = found.stdout.splitlines()
        git_dir = Path(git_dir_text)
        checkout = None
        if bare != "true":
            checkout = Path(_run_git(["rev-parse", "--show-toplevel"], cwd=path).stdout.strip())
        return cls(git_dir, checkout, str(path), git_dir / "shipyard.lock")

    @classmethod
    def _open_url(cls, url: str, cache_dir: Path, token: str | None) -> GitRepo:
        cache_dir.mkdir(parents=True, exist_ok=True)
        git_dir = cache_dir / _cache_name(url)
        # Beside the clone, not in it: it must exist before the clone does.
        lock_file = cache_dir / f"{git_dir.name}.lock"
        with _exclusive(lock_file):
            if git_dir.exists():
                _fetch(url, git_dir, token)
            else:
                _clone(url, git_dir, token)
        return cls(git_dir, None, url, lock_file)

    def resolve(self, ref: str) -> str:
        """The commit sha a branch, tag, sha or expression like `main~2` names."""
        found = self._git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], check=False)
        if found.returncode != 0:
            raise WorkspaceError(f"unknown ref {ref!r} in {self.source}; name an existing branch, tag or commit")
        return found.stdout.strip()

    def ensure_branch(self, branch: str, base_ref: str) -> str:
        """Create `branch` at base_ref unless it exists; its sha. No checkout is involved."""
        _check_branch(branch)
        with self._locked():
            self._clear_stale_locks(branch, None)
            return self._ensure_branch(branch, base_ref)[0]

    def create_workspace(self, branch: str, base_ref: str, path: Path) -> Workspace:
        """A worktree at `path` on a new `branch` from base_ref, or on the existing branch as it is (resume).

        Calling it again for a live workspace returns that workspace, uncommitted work included.
        """
        _check_branch(branch)
        path = self._workspace_path(path)
        with self._locked():
            # Forget worktrees whose directories are gone (a crash, a cleanup), so their
            # branches can be checked out again.
            self._git(["worktree", "prune"])
            trees = self._worktrees()
            if trees.get(path) == branch:
                return self._workspace(path, branch, resumed=True)
            self._refuse_checked_out(branch, trees, path)
            self._clear_debris(path, trees)
            self._clear_stale_locks(branch, None)
            _, created = self._ensure_branch(branch, base_ref)
            self._git(["worktree", "add", "--quiet", str(path), branch])
            return self._workspace(path, branch, resumed=not created)

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
        with self._locked():
            self._discard(path)
            self._git(["worktree", "prune"])

    def remove_workspace(self, workspace: Workspace) -> None:
        """Delete the worktree, uncommitted work included; its branch and commits are kept."""
        with self._locked():
            if workspace.path in self._worktrees():
                self._git(["worktree", "remove", "--force", "--force", str(workspace.path)])
            self._git(["worktree", "prune"])

    def diff(self, a: str, b: str) -> str:
        """Unified diff of what `b` changed since it forked from `a`: `git diff a...b`.

        That is what a pull request of b into a shows: commits that reached `a` after the
        fork are not in it.
        """
        return self._git(["diff-tree", "-r", "-p", "--find-renames", *self._fork_point(a, b)]).stdout

    def diff_stat(self, a: str, b: str) -> DiffStat:
        """Files changed by `b` since it forked from `a` (the same range as `diff`)."""
        out = self._git(["diff-tree", "-r", "-z", "--numstat", "--find-renames", *self._fork_point(a, b)]).stdout
        return DiffStat(files=_parse_numstat(out))

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
        _check_branch(into_branch)
        identity = _identity(role, None)
        message = message or f"Merge {from_branch} into {into_branch}"
        with self._locked():
            if self._branch_sha(into_branch) is None:
                raise WorkspaceError(f"no branch {into_branch} to merge into; create it with ensure_branch()")
            theirs = self.resolve(from_branch)
            temporary = workspace_path is None
            if workspace_path is None:
                workspace_path = Path(tempfile.mkdtemp(prefix="shipyard-merge-"))
            path = self._workspace_path(workspace_path)
            try:
                workspace = self._merge_workspace(into_branch, path)
                result = self._merge_in(workspace, theirs, message, identity)
            except BaseException:
                if temporary:
                    self._discard(path)
                raise
            if result.ok or not keep_conflicted:
                if not result.ok:
                    workspace._git(["merge", "--abort"])
                if temporary:
                    self._discard(path)
                return result
            return result.model_copy(update={"workspace_path": path})

    def push(self, branch: str, url: str, token: str | None = None, to: str | None = None) -> str:
        """Push `branch` to the branch `to` (default: the same name) at `url`, fast-forward only; the sha pushed.

        The token travels as an HTTP header set in this one command's environment: never in
        a URL, an argument list, the repository's config or a sandbox.
        """
        target = to or branch
        _check_branch(branch)
        _check_branch(target)
        sha = self.resolve(f"refs/heads/{branch}")
        pushed = self._git(["push", "--porcelain", "--no-verify", "--", url, f"{sha}:refs/heads/{target}"],
                           env=_auth_env(url, token), check=False)
        if pushed.returncode != 0:
            rejected = [line.split("\t")[-1] for line in pushed.stdout.splitlines() if line.startswith("!")]
            why = rejected[0] if rejected else _detail(pushed)
            raise WorkspaceError(f"could not push {branch} to {target} at {url}: {why}")
        return sha

    def fetch(self, url: str, refspecs: Sequence[str], token: str | None = None) -> None:
        """Fetch `refspecs` from `url` (token as in `push`), e.g. a branch the clone's own fetches skip."""
        with self._locked():
            fetched = self._git(["fetch", "--quiet", "--no-tags", "--", url, *refspecs], env=_auth_env(url, token),
                                check=False)
        if fetched.returncode != 0:
            raise WorkspaceError(f"could not fetch {' '.join(refspecs)} from {url}: {_detail(fetched)}")

    def current_branch(self) -> str | None:
        """The branch the user's checkout is on; None when detached or without a checkout."""
        if self.checkout is None:
            return None
        found = _run_git(["symbolic-ref", "--quiet", "--short", "HEAD"], cwd=self.checkout, options=self._config,
                         check=False)
        return found.stdout.strip() or None

    def accept(self, job_branch: str, into_branch: str) -> MergeResult:
        """Merge a finished job into `into_branch` of the user's repo: the one step that may
        touch the user's checkout, and only when the director asks for it.

        When `into_branch` is checked out, the merge happens there and needs a clean
        checkout; otherwise it happens in a temporary worktree.
        """
        if self.checkout is None or self.current_branch() != into_branch:
            return self.merge(into_branch, job_branch, role="director", message=f"Merge {job_branch}")
        with self._locked():
            dirty = _run_git(["status", "--porcelain", "--untracked-files=no"], cwd=self.checkout,
                             options=self._config).stdout.strip()
            if dirty:
                raise WorkspaceError(
                    f"your checkout {self.checkout} has uncommitted changes; commit or stash them, then accept again"
                )
            identity = _identity("director", None)
            workspace = Workspace(self, self.checkout, into_branch, self.git_dir)
            result = self._merge_in(workspace, self.resolve(job_branch), f"Merge {job_branch}", identity)
            if not result.ok:
                workspace._git(["merge", "--abort"])
            return result

    def delete_job_branches(self, job_branch: str) -> list[str]:
        """Delete a job's branch and its agents' branches (`<job_branch>--*`); the names deleted.

        A branch still checked out in a worktree is refused, so no one's files go with it.
        """
        _check_branch(job_branch)
        with self._locked():
            self._git(["worktree", "prune"])
            refs = self._git(["for-each-ref", "--format=%(refname)", f"refs/heads/{job_branch}",
                              f"refs/heads/{job_branch}{AGENT_SEPARATOR}*"]).stdout.split()
            branches = [ref.removeprefix("refs/heads/") for ref in refs]
            for path, branch in self._worktrees().items():
                if branch in branches:
                    raise WorkspaceError(f"{branch} is checked out at {path}; switch that worktree to another "
                                         "branch, then discard again")
            if branches:
                self._git(["branch", "-D", "--", *branches])
            return branches

    def _merge_workspace(self, branch: str, path: Path) -> Workspace:
        trees = self._worktrees()
        if trees.get(path) != branch:
            self._refuse_checked_out(branch, trees, path)
            self._clear_debris(path, trees)
            self._clear_stale_locks(branch, None)
            self._git(["worktree", "add", "--quiet", str(path), branch])
        workspace = self._workspace(path, branch, resumed=True)
        self._clear_stale_locks(branch, workspace.git_dir)
        if workspace._git(["status", "--porcelain"]).stdout.strip():
            raise WorkspaceError(
                f"the workspace at {path} has uncommitted changes; commit or discard them before merging"
            )
        return workspace

    def _merge_in(self, workspace: Workspace, theirs: str, message: str, identity: dict[str, str]) -> MergeResult:
        before = workspace.head()
        merged = workspace._git(
            ["merge", "--no-ff", "--no-edit", "--no-verify", "-m", message, theirs], env=identity, check=False
        )
        if merged.returncode == 0:
            after = workspace.head()
            note = "already up to date" if after == before else message
            return MergeResult(ok=True, sha=after, message=note)
        unmerged = workspace._git(["diff", "--name-only", "--diff-filter=U", "-z"]).stdout
        conflicts = [p for p in unmerged.split("\0") if p]
        if not conflicts:
            if (workspace.git_dir / "MERGE_HEAD").exists():
                workspace._git(["merge", "--abort"])
            raise _git_error(["merge"], merged)
        return MergeResult(ok=False, sha=None, conflicts=conflicts, message=f"conflicts in {', '.join(conflicts)}")

    def _discard(self, path: Path) -> None:
        if path in self._worktrees():
            self._git(["worktree", "remove", "--force", "--force", str(path)])
        shutil.rmtree(path, ignore_errors=True)  # a temporary dir that never became a worktree

    def _clear_debris(self, path: Path, trees: dict[Path, str | None]) -> None:
        """Remove what a git killed mid `worktree add` or `worktree remove` left at `path`: an empty
        directory, or one whose .git file points into this repository's worktree metadata though it is
        no longer registered. Anything else there is left for git to refuse."""
        if path in trees or not path.is_dir():
            return
        dot_git = path / ".git"
        try:
            target = dot_git.read_text().strip().removeprefix("gitdir:").strip() if dot_git.is_file() else ""
        except OSError:
            target = ""
        ours = bool(target) and Path(os.path.normpath(path / target)).parent == self.git_dir / "worktrees"
        if ours or not any(path.iterdir()):
            shutil.rmtree(path, ignore_errors=True)

    def _clear_stale_locks(self, branch: str, admin_dir: Path | None) -> None:
        """Remove the lock files a killed git process left on one of Shipyard's branches and in the
        metadata of one of its worktrees (index.lock, ORIG_HEAD.lock, the branch's ref lock...).

        Called with the repository lock held: no other Shipyard git call runs on this repository
        (none is left running in the background either: gc.auto=0), and no one else works on
        Shipyard's branches or in its worktrees, so such a lock file can only be a dead process's.
        The user's branches, index and checkout are never touched.
        """
        if not branch.startswith(f"{BRANCH_PREFIX}/"):
            return
        stale = [self.git_dir / "refs" / "heads" / f"{branch}.lock"]
        if admin_dir is not None and admin_dir.parent == self.git_dir / "worktrees":
            stale += admin_dir.glob("*.lock")
        for lock in stale:
            lock.unlink(missing_ok=True)

    def _ensure_branch(self, branch: str, base_ref: str) -> tuple[str, bool]:
        """The branch's sha, and whether it was created now."""
        sha = self._branch_sha(branch)
        if sha is not None:
            return sha, False
        sha = self.resolve(base_ref)
        # The empty old value makes the update fail if another process created it meanwhile.
        self._git(["update-ref", "-m", f"shipyard: branch from {base_ref}", f"refs/heads/{branch}", sha, ""])
        return sha, True

    def _branch_sha(self, branch: str) -> str | None:
        found = self._git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], check=False)
        return found.stdout.strip() if found.returncode == 0 else None

    def _fork_point(self, a: str, b: str) -> tuple[str, str]:
        base = self._git(["merge-base", self.resolve(a), self.resolve(b)], check=False)
        if base.returncode != 0:
            raise WorkspaceError(f"{a} and {b} share no history; compare refs of the same project")
        return base.stdout.strip(), self.resolve(b)

    def _worktrees(self) -> dict[Path, str | None]:
        """Registered worktrees (the user's checkout too): path -> branch, None when detached."""
        out = self._git(["worktree", "list", "--porcelain", "-z"]).stdout
        trees: dict[Path, str | None] = {}
        for record in out.split("\0\0"):
            fields = dict(f.partition(" ")[::2] for f in record.split("\0") if f)
            if "worktree" in fields:
                trees[Path(fields["worktree"])] = fields.get("branch", "").removeprefix("refs/heads/") or None
        return trees

    def _refuse_checked_out(self, branch: str, trees: dict[Path, str | None], path: Path) -> None:
        for other, other_branch in trees.items():
            if other_branch != branch or other == path:
                continue
            if other == self.checkout:
                raise WorkspaceError(
                    f"{branch} is checked out in your checkout {other}; switch it to another branch first"
                )
            raise WorkspaceError(
                f"{branch} is checked out in the workspace at {other}; use that path or remove that workspace first"
            )

    def _workspace(self, path: Path, branch: str, resumed: bool) -> Workspace:
        return Workspace(repo=self, path=path, branch=branch, git_dir=self._admin_dir(path), resumed=resumed)

    def _admin_dir(self, path: Path) -> Path:
        for gitdir_file in (self.git_dir / "worktrees").glob("*/gitdir"):
            target = Path(os.path.normpath(gitdir_file.parent / gitdir_file.read_text().strip()))
            if target.parent == path:
                return gitdir_file.parent
        raise WorkspaceError(
            f"{path} is not registered as a worktree of {self.source}; create it with create_workspace()"
        )

    def _workspace_path(self, path: Path) -> Path:
        path = Path(path).expanduser().resolve()
        for inside in (self.checkout, self.git_dir):
            if inside is not None and path.is_relative_to(inside):
                raise WorkspaceError(
                    f"{path} is inside {inside}; put workspaces outside the repository (e.g. in the state directory)"
                )
        return path

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with _exclusive(self._lock_file):
            yield

    def _git(
        self,
        args: list[str],
        *,
        git_dir: Path | None = None,
        work_tree: Path | None = None,
        env: dict[str, str] | None = None,
        input: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        # Without --work-tree git sees a bare repository: a slip cannot reach the user's files.
        location = ["--git-dir", str(git_dir or self.git_dir)]
        if work_tree is not None:
            location += ["--work-tree", str(work_tree)]
        return _run_git(
            args, cwd=work_tree or self.git_dir, options=[*self._config, *location], env=env, input=input, check=check
        )


def branch_name(job_id: str, name: str | None = None) -> str:
    """`shipyard/<job>` for a job's branch, `shipyard/<job>--<name>` for one agent's work in it."""
    if not job_id or "/" in job_id or AGENT_SEPARATOR in job_id:
        raise WorkspaceError(f"invalid job id {job_id!r} for a branch name; use letters, digits, '-' and '_'")
    if name is not None and (not name or "/" in name):
        raise WorkspaceError(f"invalid name {name!r} for a branch name; use letters, digits, '-' and '_'")
    branch = f"{BRANCH_PREFIX}/{job_id}" + (f"{AGENT_SEPARATOR}{name}" if name is not None else "")
    _check_branch(branch)
    return branch


_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold a repository's lock against other threads and, by flock, other processes.

    Concurrent git commands on one repository race on index.lock, packed-refs and the
    worktree metadata; serializing them is simpler than retrying.
    """
    with _LOCKS_GUARD:
        thread_lock = _LOCKS.setdefault(lock_file, threading.Lock())
    with thread_lock, open(lock_file, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _check_branch(branch: str) -> None:
    valid = _run_git(["check-ref-format", f"refs/heads/{branch}"], cwd=Path("/"), check=False).returncode == 0
    if not valid or branch.startswith("-"):
        raise WorkspaceError(f"invalid branch name {branch!r}; see `git help check-ref-format`")


def _identity(role: str, agent: str | None) -> dict[str, str]:
    """Author and committer naming the role, so `git log` tells who did what."""
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


def _config_args(git_dir: Path) -> list[str]:
    """`-c` options: `_SAFE_CONFIG`, and every filter driver the repository sees switched off."""
    options = [*_SAFE_ARGS, "--git-dir", str(git_dir)]
    listed = _run_git(
        ["config", "--name-only", "--get-regexp", r"^filter\."], cwd=git_dir, options=options, check=False
    )
    drivers = sorted({key.removeprefix("filter.").rpartition(".")[0] for key in listed.stdout.split()})
    args = [*_SAFE_ARGS]
    for driver in drivers:
        # An empty command is "no filter"; required=false stops git from failing on it.
        for setting in ("clean=", "smudge=", "process=", "required=false"):
            args += ["-c", f"filter.{driver}.{setting}"]
    return args


def _is_url(source: str) -> bool:
    return "://" in source or re.match(r"^[\w.-]+@[\w.-]+:", source) is not None


def _cache_name(url: str) -> str:
    tail = re.sub(r"\.git$", "", url.rstrip("/").rpartition("/")[2].rpartition(":")[2])
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip(".-") or "repo"
    return f"{slug}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.git"


def _clone(url: str, git_dir: Path, token: str | None) -> None:
    """A bare clone whose fetches update the remote's branches and tags but never ours.

    Not --mirror: a mirror fetch force-updates every ref, so once a job branch is pushed
    it would overwrite the local `shipyard/...` branches (or fail on checked-out ones).
    """
    # Clone beside the final place and rename: an interrupted clone never looks complete.
    partial = Path(tempfile.mkdtemp(prefix=".clone-", dir=git_dir.parent))
    try:
        cloned = _run_git(["clone", "--bare", "--quiet", "--", url, str(partial)], cwd=git_dir.parent,
                          env=_auth_env(url, token), check=False)
        if cloned.returncode != 0:
            raise WorkspaceError(f"could not clone {url}: {_detail(cloned)}; check the URL and your access to it")
        options = [*_SAFE_ARGS, "--git-dir", str(partial)]
        _run_git(
            ["config", "--replace-all", "remote.origin.fetch", "+refs/heads/*:refs/heads/*"],
            cwd=partial,
            options=options,
        )
        _run_git(
            ["config", "--add", "remote.origin.fetch", f"^refs/heads/{BRANCH_PREFIX}/*"], cwd=partial, options=options
        )
        _run_git(["config", "--add", "remote.origin.fetch", "+refs/tags/*:refs/tags/*"], cwd=partial, options=options)
        partial.rename(git_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _fetch(url: str, git_dir: Path, token: str | None) -> None:
    fetched = _run_git(
        ["fetch", "--quiet", "origin"], cwd=git_dir, options=[*_SAFE_ARGS, "--git-dir", str(git_dir)],
        env=_auth_env(url, token), check=False,
    )
    if fetched.returncode != 0:
        raise WorkspaceError(f"could not fetch {url}: {_detail(fetched)}; check your network and your access to it")


def _auth_env(url: str, token: str | None) -> dict[str, str]:
    """Config for one git command that sends `token` the way GitHub takes it over HTTPS (Basic auth,
    user x-access-token), for `url`'s origin only.

    Environment config rather than `-c` (argv shows in `ps`), a URL or a config file (both kept on disk).
    """
    parts = urlsplit(url)
    if not token or parts.scheme not in ("https", "http"):
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "2",
        # Nor may a credential helper store the token, or offer another one.
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": "",
        "GIT_CONFIG_KEY_1": f"http.{parts.scheme}://{parts.netloc}/.extraHeader",
        "GIT_CONFIG_VALUE_1": f"Authorization: Basic {basic}",
    }


def _run_git(
    args: list[str],
    cwd: Path,
    *,
    options: Sequence[str] | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `git <options> <args>`; options default to `_SAFE_CONFIG` alone."""
    if options is None:
        options = _SAFE_ARGS
    environ = {k: v for k, v in os.environ.items() if k not in _REPO_ENV_VARS}
    # Stable English messages; nothing may wait for an editor or a password prompt.
    environ.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_EDITOR=":", **(env or {}))
    try:
        proc = subprocess.run(
            ["git", *options, *args],
            cwd=cwd,
            env=environ,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
        )
    except FileNotFoundError:
        raise WorkspaceError("git is not installed; install git 2.39 or newer") from None
    if check and proc.returncode != 0:
        raise _git_error(args, proc)
    return proc


def _git_error(args: list[str], proc: subprocess.CompletedProcess[str]) -> WorkspaceError:
    return WorkspaceError(f"git {args[0]} failed: {_detail(proc)}")


def _detail(proc: subprocess.CompletedProcess[str]) -> str:
    """The line of git's stderr that says what went wrong."""
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal: ", "error: ")):
            return line.partition(": ")[2]
    return lines[-1] if lines else f"exit code {proc.returncode}"


def _parse_numstat(out: str) -> list[FileStat]:
    """Parse `--numstat -z`: `ins TAB del TAB path NUL`, or for a rename `ins TAB del TAB NUL old NUL new NUL`."""
    fields = out.split("\0")
    files: list[FileStat] = []
    i = 0
    while i < len(fields) and fields[i]:
        insertions, deletions, path = fields[i].split("\t", 2)
        old_path = None
        if not path:
            old_path, path = fields[i + 1], fields[i + 2]
            i += 2
        i += 1
        binary = insertions == "-"
        files.append(
            FileStat(
                path=path,
                old_path=old_path,
                insertions=0 if binary else int(insertions),
                deletions=0 if binary else int(deletions),
                binary=binary,
            )
        )
    return files
