"""Git workspaces against real git, on repositories built in tmp_path."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from user_git import git

from sandboxes.git.branches import branch_name
from sandboxes.git.command import WorkspaceError
from sandboxes.git.locks import WORKTREE_LOCK
from sandboxes.git.repo import GitRepo
from sandboxes.git.workspace import Workspace

HOOKS = [
    "pre-commit",
    "commit-msg",
    "post-commit",
    "post-checkout",
    "pre-merge-commit",
    "post-merge",
    "reference-transaction",
]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def parents(repo: Path, sha: str) -> list[str]:
    return git(repo, "rev-list", "--parents", "-n1", sha).split()[1:]


def worktree_paths(repo: Path) -> list[str]:
    listing = git(repo, "worktree", "list", "--porcelain")
    return [line.removeprefix("worktree ") for line in listing.splitlines() if line.startswith("worktree ")]


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """The user's repository: a few files on main, *.log ignored."""
    path = tmp_path / "user"
    git(tmp_path, "init", "-q", "-b", "main", str(path))
    write(path / "README.md", "# Project\n\nIntro.\n")
    write(path / "src" / "app.py", "def main():\n    return 1\n")
    write(path / "old_name.txt", "a file that will be renamed\n" * 5)
    write(path / "doomed.txt", "to be deleted\n")
    write(path / ".gitignore", "*.log\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def repo(user_repo: Path, tmp_path: Path) -> GitRepo:
    return GitRepo.open(user_repo, tmp_path / "cache")


@pytest.fixture
def workspaces(tmp_path: Path) -> Path:
    return tmp_path / "workspaces"


def make_branch(repo: GitRepo, workspaces: Path, name: str, files: dict[str, str]) -> str:
    """A branch `shipyard/job--<name>` with one commit writing `files`; its sha."""
    ws = repo.create_workspace(branch_name("job", name), "main", workspaces / name)
    for rel, text in files.items():
        write(ws.path / rel, text)
    sha = ws.commit(f"work on {name}", role="coder", agent=name)
    repo.remove_workspace(ws)
    assert sha is not None
    return sha


def test_branch_names_are_validated() -> None:
    assert branch_name("7f3a") == "shipyard/7f3a"
    assert branch_name("7f3a", "parser") == "shipyard/7f3a--parser"
    for job, name in [
        ("", None),
        ("a/b", None),
        ("a--b", "x"),
        ("j", ""),
        ("j", "x/y"),
        ("j", "bad..name"),
        ("j", "sp ace"),
        ("j", "x.lock"),
    ]:
        with pytest.raises(WorkspaceError):
            branch_name(job, name)


def test_commit_stages_everything_but_ignored_files_as_the_role(
    repo: GitRepo, user_repo: Path, workspaces: Path
) -> None:
    ws = repo.create_workspace(branch_name("job", "coder"), "main", workspaces / "coder")
    assert not ws.resumed and ws.head() == repo.resolve("main")
    assert ws.commit("nothing yet", role="coder") is None

    write(ws.path / "src" / "new.py", "x = 1\n")
    write(ws.path / "debug.log", "ignored\n")
    (ws.path / "doomed.txt").unlink()
    sha = ws.commit("# Add new.py\n\nbody", role="coder", agent="coder-2")

    assert sha == git(user_repo, "rev-parse", "shipyard/job--coder")
    identity = "Shipyard coder (coder-2) <coder@shipyard.invalid>"
    assert (
        git(user_repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%B", sha)
        == f"{identity}|{identity}|# Add new.py\n\nbody"
    )
    assert git(user_repo, "show", "--name-status", "--format=", sha).splitlines() == ["D\tdoomed.txt", "A\tsrc/new.py"]
    with pytest.raises(WorkspaceError, match="invalid role"):
        ws.commit("x", role="coder <evil@example.com>")


def test_what_a_commit_would_never_hold_is_named_and_the_index_listed_once_per_state(
    repo: GitRepo, user_repo: Path, workspaces: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (user_repo / "kept.log").write_text("tracked though ignored\n")
    git(user_repo, "add", "-f", "kept.log")
    git(user_repo, "update-index", "--add", "--cacheinfo", f"160000,{repo.resolve('main')},vendor/lib")
    git(user_repo, "commit", "-q", "-m", "a tracked log and a submodule")
    ws = repo.create_workspace(branch_name("job", "writes"), "main", workspaces / "writes")
    listings: list[list[str]] = []
    real_git = Workspace.git
    monkeypatch.setattr(Workspace, "git", lambda self, args, **kw: (
        listings.append(args) if args[0] == "ls-files" else None) or real_git(self, args, **kw))

    assert "ignored by git" in (ws.uncommittable("debug.log") or "")
    assert ws.uncommittable("/workspace/kept.log") is None  # tracked: committed whatever .gitignore says
    assert "inside the submodule vendor/lib" in (ws.uncommittable("vendor/lib/patch.py") or "")
    assert ws.uncommittable("src/new.py") is None
    assert len(listings) == 1  # four writes, one state of the index
    write(ws.path / "src" / "new.py", "x = 1\n")
    ws.commit("new.py", role="coder")
    assert ws.uncommittable("src/other.py") is None and len(listings) == 2


def test_parallel_workspaces_on_separate_branches(repo: GitRepo, user_repo: Path, workspaces: Path) -> None:
    base = repo.resolve("main")
    results: dict[int, str | None] = {}
    errors: list[BaseException] = []

    def agent(i: int) -> None:
        try:
            ws = repo.create_workspace(branch_name("job", f"t{i}"), "main", workspaces / f"t{i}")
            write(ws.path / f"file{i}.txt", f"agent {i}\n")
            results[i] = ws.commit(f"agent {i}", role="coder")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for i in range(8):
        sha = git(user_repo, "rev-parse", f"shipyard/job--t{i}")
        assert results[i] == sha and parents(user_repo, sha) == [base]
        assert git(user_repo, "show", f"{sha}:file{i}.txt") == f"agent {i}"


def test_lock_file_keeps_other_processes_out(repo: GitRepo, user_repo: Path) -> None:
    # A second open file description on the lock file stands in for another process.
    with open(repo.git_dir / "shipyard.lock", "a") as other_process:
        fcntl.flock(other_process, fcntl.LOCK_EX)
        waiting = threading.Thread(target=repo.ensure_branch, args=("shipyard/locked", "main"))
        waiting.start()
        time.sleep(0.3)
        assert waiting.is_alive()
        assert git(user_repo, "branch", "--list", "shipyard/locked") == ""
    waiting.join(timeout=10)
    assert git(user_repo, "rev-parse", "shipyard/locked") == repo.resolve("main")


def test_worktrees_work_side_by_side_but_never_beside_what_they_share(
    repo: GitRepo, user_repo: Path, workspaces: Path
) -> None:
    a = repo.create_workspace(branch_name("job", "a"), "main", workspaces / "a")
    b = repo.create_workspace(branch_name("job", "b"), "main", workspaces / "b")
    lock_file = repo.git_dir / "shipyard.lock"
    with repo.locked_worktree(a.git_dir):
        # Another worktree's calls go ahead: this commit would wait for ever if they were serialized.
        write(b.path / "b.txt", "b\n")
        assert b.commit("b", role="coder") == git(user_repo, "rev-parse", b.branch)
        # Neither this worktree's own calls nor one on what worktrees share could start (a second open
        # file description stands in for another thread or process).
        for held_file in (a.git_dir / WORKTREE_LOCK, lock_file):
            with open(held_file, "a") as other, pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with repo.locked(), open(lock_file, "a") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)  # no worktree's call beside a shared one


def test_asking_again_for_a_live_workspace_needs_no_git(
    repo: GitRepo, workspaces: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = repo.create_workspace(branch_name("job", "live"), "main", workspaces / "live")
    write(ws.path / "draft.txt", "not committed yet\n")
    calls: list[list[str]] = []
    monkeypatch.setattr(GitRepo, "git", lambda self, args, **kwargs: calls.append(args))
    again = repo.create_workspace(ws.branch, "main", ws.path)
    assert calls == []  # every stage of a subtask asks: no lock, no git process
    assert again.resumed and again.git_dir == ws.git_dir and (again.path / "draft.txt").exists()


def test_diff_shows_what_b_changed_since_it_forked(repo: GitRepo, user_repo: Path, workspaces: Path) -> None:
    ws = repo.create_workspace(branch_name("job", "diff"), "main", workspaces / "diff")
    write(ws.path / "README.md", "# Project\n\nBetter intro.\n")
    write(ws.path / "src" / "util.py", "a = 1\nb = 2\nc = 3\n")
    (ws.path / "doomed.txt").unlink()
    (ws.path / "old_name.txt").rename(ws.path / "new_name.txt")
    (ws.path / "logo.bin").write_bytes(b"\x00\x01\x02binary")
    ws.commit("changes", role="coder")
    # main moves on after the fork; that change is not the branch's.
    write(user_repo / "later.txt", "on main only\n")
    git(user_repo, "add", "later.txt")
    git(user_repo, "commit", "-q", "-m", "later")

    diff = repo.diff("main", ws.branch)
    assert "-Intro.\n+Better intro.\n" in diff
    assert "+++ b/src/util.py" in diff and "rename from old_name.txt" in diff
    assert "later.txt" not in diff

    stat = repo.diff_stat("main", ws.branch)
    by_path = {f.path: f for f in stat.files}
    assert set(by_path) == {"README.md", "src/util.py", "doomed.txt", "new_name.txt", "logo.bin"}
    assert (by_path["README.md"].insertions, by_path["README.md"].deletions) == (1, 1)
    assert (by_path["src/util.py"].insertions, by_path["doomed.txt"].deletions) == (3, 1)
    assert by_path["new_name.txt"].old_path == "old_name.txt"
    assert by_path["logo.bin"].binary
    assert (stat.insertions, stat.deletions) == (4, 2)
    assert stat.summary() == "5 files changed, 4 insertions(+), 2 deletions(-)"
    assert stat.model_dump()["insertions"] == 4
    assert repo.diff(ws.branch, ws.branch) == "" and repo.diff_stat("main", "main").files == []


def test_a_diff_of_two_commits_is_read_once_and_one_of_branches_each_time(
    repo: GitRepo, workspaces: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = repo.create_workspace(branch_name("job", "twice"), "main", workspaces / "twice")
    write(ws.path / "a.txt", "a\n")
    first = ws.commit("a", role="coder")
    base = repo.resolve("main")
    calls: list[list[str]] = []
    real_git = GitRepo.git
    monkeypatch.setattr(GitRepo, "git", lambda self, args, **kw: calls.append(args) or real_git(self, args, **kw))
    assert first is not None and repo.diff(base, first) == repo.diff(base, first) != ""
    assert sum(args[0] == "diff-tree" for args in calls) == 1  # commits never change: asked of git once
    write(ws.path / "b.txt", "b\n")
    ws.commit("b", role="coder")
    assert "b.txt" in repo.diff("main", ws.branch) and sum(args[0] == "diff-tree" for args in calls) == 2


def test_clean_merge_in_a_temporary_worktree(repo: GitRepo, user_repo: Path, workspaces: Path) -> None:
    job = branch_name("job")
    base = repo.ensure_branch(job, "main")
    assert repo.ensure_branch(job, "HEAD~0") == base  # existing: left where it is
    a = make_branch(repo, workspaces, "a", {"a.txt": "from a\n"})
    b = make_branch(repo, workspaces, "b", {"b.txt": "from b\n"})

    first = repo.merge(job, branch_name("job", "a"))
    second = repo.merge(job, branch_name("job", "b"))

    assert first.ok and second.ok and second.conflicts == [] and second.workspace_path is None
    assert first.sha and second.sha == git(user_repo, "rev-parse", job)
    assert parents(user_repo, second.sha) == [first.sha, b] and parents(user_repo, first.sha) == [base, a]
    assert (
        git(user_repo, "log", "-1", "--format=%an|%s", job) == f"Shipyard integrator|Merge shipyard/job--b into {job}"
    )
    assert {"a.txt", "b.txt"} <= set(git(user_repo, "ls-tree", "--name-only", job).split())
    assert worktree_paths(user_repo) == [str(user_repo)]
    assert repo.merge(job, branch_name("job", "a")).message == "already up to date"


def test_clean_merges_in_one_pass_without_a_worktree_stop_at_the_first_conflict(
        repo: GitRepo, user_repo: Path, workspaces: Path) -> None:
    job = branch_name("job")
    base = repo.ensure_branch(job, "main")
    a = make_branch(repo, workspaces, "a", {"a.txt": "from a\n"})
    make_branch(repo, workspaces, "x", {"README.md": "# Project\n\nIntro by x.\n"})
    make_branch(repo, workspaces, "y", {"README.md": "# Project\n\nIntro by y.\n"})
    b = make_branch(repo, workspaces, "b", {"b.txt": "from b\n"})
    names = {n: branch_name("job", n) for n in "axyb"}

    merged = repo.merge_clean(job, [(names[n], f"Merge {n}") for n in "axyb"])

    # a and x merged, each a merge commit; y conflicts with x: it and b after it are left to the caller.
    assert [m.message for m in merged] == ["Merge a", "Merge x"] and all(m.ok for m in merged)
    assert git(user_repo, "rev-parse", job) == merged[-1].sha  # the branch moved once, to the last
    assert parents(user_repo, merged[0].sha) == [base, a] and parents(user_repo, merged[1].sha)[0] == merged[0].sha
    assert worktree_paths(user_repo) == [str(user_repo)]
    # Asked again after a crash: what was merged is "already up to date", and merging goes on after it.
    again = repo.merge_clean(job, [(names["a"], "Merge a"), (names["b"], "Merge b")])
    assert again[0].message == "already up to date" and again[0].sha == merged[-1].sha
    assert git(user_repo, "rev-parse", job) == again[1].sha and parents(user_repo, again[1].sha) == [merged[-1].sha, b]


def test_conflicting_merge_is_reported_and_aborted(repo: GitRepo, user_repo: Path, workspaces: Path) -> None:
    job = branch_name("job")
    repo.ensure_branch(job, "main")
    make_branch(repo, workspaces, "a", {"README.md": "# Project\n\nIntro by a.\n"})
    make_branch(repo, workspaces, "b", {"README.md": "# Project\n\nIntro by b.\n", "b.txt": "b\n"})
    merged = repo.merge(job, branch_name("job", "a")).sha

    result = repo.merge(job, branch_name("job", "b"))

    assert not result.ok and result.sha is None and result.workspace_path is None
    assert result.conflicts == ["README.md"] and "README.md" in result.message
    assert git(user_repo, "rev-parse", job) == merged
    assert worktree_paths(user_repo) == [str(user_repo)]


def test_conflict_kept_for_an_agent_then_committed(repo: GitRepo, user_repo: Path, workspaces: Path) -> None:
    job = branch_name("job")
    repo.ensure_branch(job, "main")
    make_branch(repo, workspaces, "a", {"README.md": "# Project\n\nIntro by a.\n"})
    make_branch(repo, workspaces, "b", {"README.md": "# Project\n\nIntro by b.\n"})
    merged = repo.merge(job, branch_name("job", "a")).sha
    theirs = repo.resolve(branch_name("job", "b"))

    result = repo.merge(job, branch_name("job", "b"), workspaces / "integrate", keep_conflicted=True)

    assert (
        not result.ok
        and result.conflicts == ["README.md"]
        and result.workspace_path == (workspaces / "integrate").resolve()
    )
    ws = repo.open_workspace(result.workspace_path)
    assert ws.branch == job and "<<<<<<<" in (ws.path / "README.md").read_text()
    with pytest.raises(WorkspaceError, match=r"conflict markers remain in README\.md"):
        ws.commit("Resolve", role="coder")
    write(ws.path / "README.md", "# Project\n\nIntro by a and b.\n")
    sha = ws.commit("Merge b, resolving README", role="coder", agent="resolver")
    assert sha == git(user_repo, "rev-parse", job) and parents(user_repo, sha) == [merged, theirs]
    assert git(user_repo, "show", f"{job}:README.md") == "# Project\n\nIntro by a and b."
    repo.remove_workspace(ws)
    assert worktree_paths(user_repo) == [str(user_repo)]


def snapshot(checkout: Path) -> dict[str, str]:
    """Everything about the user's checkout a job must not change."""

    def quiet_git(*args: str) -> str:
        # --no-optional-locks: the test's own `git status` must not refresh the index.
        return git(checkout, "--no-optional-locks", *args)

    return {
        "status": quiet_git("status", "--porcelain", "--untracked-files=all"),
        "head": quiet_git("rev-parse", "HEAD"),
        "branch": quiet_git("symbolic-ref", "HEAD"),
        "stash": quiet_git("stash", "list", "--format=%H"),
        "index": hashlib.sha256((checkout / ".git" / "index").read_bytes()).hexdigest(),
        "readme": (checkout / "README.md").read_text(),
    }


def test_user_checkout_is_never_touched(repo: GitRepo, user_repo: Path, workspaces: Path) -> None:
    write(user_repo / "README.md", "stashed edit\n")
    git(user_repo, "stash", "-q")
    write(user_repo / "README.md", "# Project\n\nUncommitted edit.\n")
    write(user_repo / "untracked.txt", "mine\n")
    before = snapshot(user_repo)

    job = branch_name("job")
    repo.ensure_branch(job, "main")
    make_branch(repo, workspaces, "a", {"README.md": "# Project\n\nIntro by a.\n"})
    make_branch(repo, workspaces, "b", {"README.md": "# Project\n\nIntro by b.\n"})
    assert repo.merge(job, branch_name("job", "a")).ok
    assert not repo.merge(job, branch_name("job", "b")).ok
    kept = repo.merge(job, branch_name("job", "b"), keep_conflicted=True)
    assert kept.workspace_path is not None
    ws = repo.open_workspace(kept.workspace_path)
    write(ws.path / "README.md", "resolved\n")
    ws.commit("resolve", role="coder")
    repo.remove_workspace(ws)
    repo.diff("main", job)
    repo.diff_stat("main", job)
    with pytest.raises(WorkspaceError, match="checked out in your checkout"):
        repo.merge("main", job)
    with pytest.raises(WorkspaceError, match="inside"):
        repo.create_workspace(branch_name("job", "c"), "main", user_repo / ".shipyard" / "c")

    assert snapshot(user_repo) == before
    assert worktree_paths(user_repo) == [str(user_repo)]


def test_remove_keeps_the_branch(repo: GitRepo, user_repo: Path, workspaces: Path) -> None:
    ws = repo.create_workspace(branch_name("job", "gone"), "main", workspaces / "gone")
    write(ws.path / "work.txt", "done\n")
    sha = ws.commit("work", role="coder")
    write(ws.path / "scratch.txt", "uncommitted\n")

    repo.remove_workspace(ws)
    repo.remove_workspace(ws)  # again: nothing left to do

    assert not ws.path.exists() and worktree_paths(user_repo) == [str(user_repo)]
    assert git(user_repo, "rev-parse", ws.branch) == sha


def test_resume_checks_out_the_existing_branch_without_resetting_it(
    repo: GitRepo, user_repo: Path, workspaces: Path
) -> None:
    branch = branch_name("job", "resume")
    ws = repo.create_workspace(branch, "main", workspaces / "resume")
    write(ws.path / "work.txt", "committed\n")
    sha = ws.commit("work", role="coder")
    write(ws.path / "draft.txt", "uncommitted\n")

    again = repo.create_workspace(branch, "main", workspaces / "resume")
    assert again.resumed and again.head() == sha and (again.path / "draft.txt").exists()
    with pytest.raises(WorkspaceError, match="checked out in the workspace at"):
        repo.create_workspace(branch, "main", workspaces / "elsewhere")

    shutil.rmtree(ws.path)  # a crash took the directory; git still lists the worktree
    write(user_repo / "later.txt", "main moved on\n")
    git(user_repo, "add", "later.txt")
    git(user_repo, "commit", "-q", "-m", "later")
    resumed = repo.create_workspace(branch, "main", workspaces / "elsewhere")
    assert resumed.resumed and resumed.head() == sha and (resumed.path / "work.txt").read_text() == "committed\n"
    assert resumed.commit("more", role="coder") is None


def test_open_file_url_clones_once_and_fetches_later(user_repo: Path, tmp_path: Path, workspaces: Path) -> None:
    url = f"file://{user_repo}"
    cache = tmp_path / "cache"
    repo = GitRepo.open(url, cache)
    assert repo.git_dir.parent == cache and repo.checkout is None
    assert repo.resolve("main") == git(user_repo, "rev-parse", "main")
    ws = repo.create_workspace(branch_name("job", "remote"), "main", workspaces / "remote")
    write(ws.path / "work.txt", "ours\n")
    ours = ws.commit("work", role="coder")

    # Upstream moves on, and happens to hold a branch of the same name as ours.
    write(user_repo / "later.txt", "upstream\n")
    git(user_repo, "add", "later.txt")
    git(user_repo, "commit", "-q", "-m", "later")
    git(user_repo, "branch", "shipyard/job--remote", "main")

    reopened = GitRepo.open(url, cache)
    assert reopened.git_dir == repo.git_dir and len(list(cache.glob("*.git"))) == 1
    assert reopened.resolve("main") == git(user_repo, "rev-parse", "main")
    assert reopened.resolve("shipyard/job--remote") == ours


def test_open_errors_say_what_to_do(tmp_path: Path, repo: GitRepo) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(WorkspaceError, match=r"is not a git repository; run `git init` there"):
        GitRepo.open(plain, tmp_path / "cache")
    with pytest.raises(WorkspaceError, match="no such directory"):
        GitRepo.open(tmp_path / "missing", tmp_path / "cache")
    with pytest.raises(WorkspaceError, match="could not clone"):
        GitRepo.open(f"file://{plain}", tmp_path / "cache")
    with pytest.raises(WorkspaceError, match="unknown ref 'nope'"):
        repo.resolve("nope")
    with pytest.raises(WorkspaceError, match="unknown ref"):
        repo.create_workspace(branch_name("job", "x"), "--help", tmp_path / "x")
    with pytest.raises(WorkspaceError, match="no branch shipyard/none"):
        repo.merge("shipyard/none", "main")
    for a, b in (("main", "nope"), ("--output=/tmp/x", "main"), ("main", "main\nHEAD")):
        with pytest.raises(WorkspaceError, match="unknown ref"):
            repo.diff(a, b)


def test_repository_hooks_never_run(repo: GitRepo, user_repo: Path, workspaces: Path, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    for hook in HOOKS:
        script = user_repo / ".git" / "hooks" / hook
        script.write_text(f"#!/bin/sh\ntouch {markers}/{hook}\n")
        script.chmod(0o755)
    git(user_repo, "commit", "-q", "--allow-empty", "-m", "hooks work")
    assert (markers / "pre-commit").exists()  # the hooks are real
    for marker in markers.iterdir():
        marker.unlink()

    job = branch_name("job")
    repo.ensure_branch(job, "main")
    make_branch(repo, workspaces, "a", {"a.txt": "a\n"})
    assert repo.merge(job, branch_name("job", "a")).ok

    assert list(markers.iterdir()) == []


def test_filter_drivers_never_run(repo: GitRepo, user_repo: Path, workspaces: Path, tmp_path: Path) -> None:
    write(user_repo / ".gitattributes", "*.txt filter=mark\n")
    git(user_repo, "add", ".gitattributes")
    git(user_repo, "commit", "-q", "-m", "attributes")
    for step in ("clean", "smudge"):
        git(user_repo, "config", f"filter.mark.{step}", f"touch {tmp_path}/{step}-ran; cat")
    git(user_repo, "config", "filter.mark.required", "true")
    repo = GitRepo.open(user_repo, tmp_path / "cache")  # filters are read when a repository is opened

    ws = repo.create_workspace(branch_name("job", "filters"), "main", workspaces / "filters")
    write(ws.path / "data.txt", "exactly this\n")
    sha = ws.commit("data", role="coder")

    assert not (tmp_path / "clean-ran").exists() and not (tmp_path / "smudge-ran").exists()
    assert git(user_repo, "show", f"{sha}:data.txt") == "exactly this"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_commit_files_owned_by_the_sandbox_uid(repo: GitRepo, user_repo: Path, workspaces: Path) -> None:
    ws = repo.create_workspace(branch_name("job", "uid"), "main", workspaces / "uid")
    write(ws.path / "src" / "sandbox.py", "written in the sandbox\n")
    write(ws.path / "README.md", "# Project\n\nEdited in the sandbox.\n")
    for path in [ws.path, *ws.path.rglob("*")]:
        os.chown(path, 1000, 1000, follow_symlinks=False)

    sha = ws.commit("sandbox work", role="coder")

    assert sha is not None
    assert git(user_repo, "show", "--name-only", "--format=", sha).splitlines() == ["README.md", "src/sandbox.py"]


def test_workspace_paths_outside_the_checkout_only(repo: GitRepo, user_repo: Path) -> None:
    with pytest.raises(WorkspaceError, match="put workspaces outside the repository"):
        repo.create_workspace(branch_name("job", "in"), "main", user_repo / "nested")
    with pytest.raises(WorkspaceError, match="not a Shipyard workspace"):
        repo.open_workspace(user_repo)
    assert isinstance(repo.create_workspace(branch_name("job", "out"), "main", user_repo.parent / "out"), Workspace)
