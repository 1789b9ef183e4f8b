"""GitRepo.accept against real git: where the merge lands, and what it refuses, in the director's words."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from user_git import git

from sandboxes.git.branches import branch_name
from sandboxes.git.command import WorkspaceError
from sandboxes.git.repo import GitRepo

JOB = branch_name("j1")


def commit_file(checkout: Path, name: str, text: str) -> str:
    (checkout / name).write_text(text)
    git(checkout, "add", name)
    git(checkout, "commit", "-q", "-m", f"add {name}")
    return git(checkout, "rev-parse", "HEAD")


def checkout_state(checkout: Path, git_dir: Path) -> tuple[str, str, str, str]:
    """Status, HEAD, current branch and the index's bytes (hashed) of one checkout."""
    index = hashlib.sha256((git_dir / "index").read_bytes()).hexdigest()
    return (git(checkout, "status", "--porcelain", "--untracked-files=all"), git(checkout, "rev-parse", "HEAD"),
            git(checkout, "branch", "--show-current"), index)


def refusal(repo: GitRepo, into: str) -> str:
    """What accepting the job into `into` is refused with."""
    with pytest.raises(WorkspaceError) as refused:
        repo.accept(JOB, into)
    return str(refused.value)


def job_branch(repo: GitRepo, base: str, workspaces: Path, files: dict[str, str]) -> str:
    """The job's branch from `base`, with one commit writing `files`; its sha."""
    ws = repo.create_workspace(JOB, base, workspaces / "job")
    for name, text in files.items():
        (ws.path / name).write_text(text)
    sha = ws.commit("the job's work", role="coder")
    repo.remove_workspace(ws)
    assert sha is not None
    return sha


@pytest.fixture
def primary(tmp_path: Path) -> Path:
    """The user's repository: main with one file; dev one commit further, checked out."""
    path = tmp_path / "R"
    git(tmp_path, "init", "-q", "-b", "main", str(path))
    commit_file(path, "README.md", "# R\n")
    git(path, "switch", "-q", "-c", "dev")
    commit_file(path, "dev.txt", "dev only\n")
    return path


def test_accept_in_a_linked_worktree_merges_there_and_leaves_the_primary_checkout_alone(
    primary: Path, tmp_path: Path
) -> None:
    linked = tmp_path / "R-main"
    git(primary, "worktree", "add", "-q", str(linked), "main")
    repo = GitRepo.open(linked, tmp_path / "cache")
    assert repo.checkout == linked and repo.git_dir == primary / ".git"
    assert repo.current_branch() == "main"
    main_before, dev_before = git(primary, "rev-parse", "main"), git(primary, "rev-parse", "dev")
    job_sha = job_branch(repo, "main", tmp_path / "ws", {"feature.txt": "the job\n"})
    primary_before = checkout_state(primary, primary / ".git")

    result = repo.accept(JOB, "main")

    assert result.ok and result.message == f"Merge {JOB}"
    assert result.sha == git(primary, "rev-parse", "main") == git(linked, "rev-parse", "HEAD")
    assert git(linked, "rev-list", "--parents", "-n1", "main").split()[1:] == [main_before, job_sha]
    assert (linked / "feature.txt").read_text() == "the job\n"
    assert git(linked, "status", "--porcelain", "--untracked-files=all") == ""
    assert checkout_state(primary, primary / ".git") == primary_before
    assert git(primary, "rev-parse", "dev") == dev_before and not (primary / "feature.txt").exists()


def test_accept_refuses_a_dirty_linked_worktree(primary: Path, tmp_path: Path) -> None:
    linked = tmp_path / "R-main"
    git(primary, "worktree", "add", "-q", str(linked), "main")
    repo = GitRepo.open(linked, tmp_path / "cache")
    job_branch(repo, "main", tmp_path / "ws", {"feature.txt": "the job\n"})
    (linked / "README.md").write_text("edited, not committed\n")
    main_before = git(primary, "rev-parse", "main")

    assert refusal(repo, "main") == (
        f"your checkout {linked} has uncommitted changes; commit or stash them, then accept again"
    )
    assert git(primary, "rev-parse", "main") == main_before


def test_accept_into_a_tag_says_how_to_merge_it(primary: Path, tmp_path: Path) -> None:
    git(primary, "tag", "v1", "main")
    repo = GitRepo.open(primary, tmp_path / "cache")
    job_branch(repo, "v1", tmp_path / "ws", {"feature.txt": "the job\n"})
    refs_before = git(primary, "for-each-ref")

    assert refusal(repo, "v1") == (
        "the job started from the tag v1, not a branch, so there is nothing to merge it into; make a branch "
        f"there and merge it: `git switch -c <branch> v1 && git merge {JOB}`"
    )
    assert git(primary, "for-each-ref") == refs_before


def test_accept_into_a_detached_head_says_how_to_merge_it(primary: Path, tmp_path: Path) -> None:
    git(primary, "switch", "-q", "--detach", "main")
    repo = GitRepo.open(primary, tmp_path / "cache")
    assert repo.current_branch() is None
    base = repo.resolve("HEAD")  # what a job submitted from a detached HEAD records
    job_branch(repo, base, tmp_path / "ws", {"feature.txt": "the job\n"})

    assert refusal(repo, base) == (
        f"the job started from the commit {base[:12]}, not a branch, so there is nothing to merge it into; "
        f"make a branch there and merge it: `git switch -c <branch> {base} && git merge {JOB}`"
    )
    # The command it gives works.
    git(primary, "switch", "-q", "-c", "taken", base)
    git(primary, "merge", "-q", "--no-edit", JOB)
    assert (primary / "feature.txt").read_text() == "the job\n"


def test_accept_in_a_bare_repository(primary: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(primary), str(bare))
    repo = GitRepo.open(bare, tmp_path / "cache")
    assert repo.checkout is None and repo.current_branch() is None
    base = repo.resolve("HEAD")
    job_branch(repo, base, tmp_path / "ws", {"feature.txt": "the job\n"})

    assert refusal(repo, base) == (
        f"the job started from the commit {base[:12]} of the bare repository {bare}, which has no branch to merge "
        f"into; merge it in a clone: `git clone {bare} work && cd work && git switch -c <branch> {base} "
        f"&& git merge origin/{JOB}`, then `git push origin <branch>`"
    )

    # A branch of a bare repository takes the merge (in a temporary worktree).
    main_before = git(bare, "rev-parse", "main")
    merged = repo.accept(JOB, "main")
    assert merged.ok and git(bare, "rev-list", "--parents", "-n1", "main").split()[1] == main_before
    assert git(bare, "show", "main:feature.txt") == "the job"


def test_accept_of_a_repository_opened_by_url_says_where_the_branch_is(primary: Path, tmp_path: Path) -> None:
    url = f"file://{primary}"
    repo = GitRepo.open(url, tmp_path / "cache")
    job_branch(repo, "main", tmp_path / "ws", {"feature.txt": "the job\n"})

    assert refusal(repo, "main") == (
        f"{url} is a remote repository and accept merges only into local ones; in your clone, "
        f"`git fetch {repo.git_dir} {JOB} && git merge FETCH_HEAD`, then push"
    )


def test_accept_keeps_the_list_of_untracked_files_it_would_overwrite(primary: Path, tmp_path: Path) -> None:
    git(primary, "switch", "-q", "main")
    repo = GitRepo.open(primary, tmp_path / "cache")
    job_branch(repo, "main", tmp_path / "ws", {"a.txt": "job a\n", "b.txt": "job b\n", "c.txt": "job c\n"})
    (primary / "a.txt").write_text("mine\n")
    (primary / "c.txt").write_text("mine too\n")
    before = checkout_state(primary, primary / ".git")

    assert refusal(repo, "main") == (
        "git merge failed: The following untracked working tree files would be overwritten by merge: a.txt, c.txt; "
        f"nothing was merged: fix that in {primary}, then accept again"
    )
    assert checkout_state(primary, primary / ".git") == before
    assert (primary / "a.txt").read_text() == "mine\n" and not (primary / "b.txt").exists()
