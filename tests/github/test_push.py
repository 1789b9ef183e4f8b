"""Git over HTTP with an installation token: clone, fetch and push, the token never written anywhere, a revoked
one replaced, GitHub's refusals kept in its words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from appkit import APP_ID, INSTALLATION, REPO
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from fake_github import FakeGitHub
from helpers import git, make_repo

from orchestrator.apps.github.client import GitHub
from orchestrator.apps.github.git_remote import AppGit, NotFastForward, PushRefused
from sandboxes.git.command import WorkspaceError
from sandboxes.git.repo import GitRepo


@pytest.fixture
def fake(tmp_path: Path, app_key: RSAPrivateKey) -> Iterator[FakeGitHub]:
    made = FakeGitHub(tmp_path / "github", APP_ID, app_key.public_key())
    made.add_repo(REPO, make_repo(tmp_path / "src", {"README.md": "hello\n"}), INSTALLATION)
    yield made
    made.stop()


def commit_on(repo: GitRepo, branch: str, base: str, path: Path, text: str) -> str:
    workspace = repo.create_workspace(branch, base, path)
    (path / "NOTE.md").write_text(text)
    sha = workspace.commit("Add a note", "coder")
    repo.remove_workspace(workspace)
    assert sha is not None
    return sha


def test_clone_fetch_and_push_with_a_token(fake: FakeGitHub, app_key: RSAPrivateKey, tmp_path: Path) -> None:
    url = fake.clone_url(REPO)
    token = GitHub(fake.url, APP_ID, app_key).token(INSTALLATION)
    with pytest.raises(WorkspaceError, match="could not clone"):
        GitRepo.open(url, tmp_path / "cache")  # a private repository wants the token
    repo = GitRepo.open(url, tmp_path / "cache", token=token)
    sha = commit_on(repo, "shipyard/j1", "main", tmp_path / "wt", "noted\n")

    assert repo.push("shipyard/j1", url, token) == sha
    assert git(fake.bare(REPO), "rev-parse", "refs/heads/shipyard/j1").strip() == sha
    assert repo.push("shipyard/j1", url, token, to="feature") == sha
    assert git(fake.bare(REPO), "show", "feature:NOTE.md") == "noted\n"
    repo.fetch(url, ["+refs/heads/feature:refs/shipyard-pulls/1"], token)
    assert repo.resolve("refs/shipyard-pulls/1") == sha
    GitRepo.open(url, tmp_path / "cache", token=token)  # a later open fetches, with the token again

    assert fake.git_tokens and set(fake.git_tokens) == {token}
    written = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert written == [], "the token is in no file of the clone"
    assert "x-access-token" not in git(repo.git_dir, "config", "--list")


def test_a_push_that_is_no_fast_forward_is_refused(fake: FakeGitHub, app_key: RSAPrivateKey,
                                                     tmp_path: Path) -> None:
    url = fake.clone_url(REPO)
    token = GitHub(fake.url, APP_ID, app_key).token(INSTALLATION)
    repo = GitRepo.open(url, tmp_path / "cache", token=token)
    commit_on(repo, "mine", "main", tmp_path / "a", "mine\n")
    commit_on(repo, "theirs", "main", tmp_path / "b", "theirs\n")
    repo.push("theirs", url, token, to="feature")
    with pytest.raises(WorkspaceError, match=r"could not push mine to feature at .*: \[rejected\]"):
        repo.push("mine", url, token, to="feature")
    with pytest.raises(WorkspaceError, match="could not push"):
        repo.push("mine", url, "ghs_not-a-token")


def test_a_token_revoked_at_push_time_is_replaced(fake: FakeGitHub, app_key: RSAPrivateKey, tmp_path: Path) -> None:
    """API calls and git take their tokens the same way: one GitHub refuses is dropped, and a new one used."""
    github = GitHub(fake.url, APP_ID, app_key)
    app_git = AppGit(github.tokens, tmp_path / "cache")
    url = fake.clone_url(REPO)
    repo = app_git.open(INSTALLATION, url)
    sha = commit_on(repo, "shipyard/j1", "main", tmp_path / "wt", "noted\n")
    first = github.token(INSTALLATION)

    fake.revoke_on_push = True
    assert app_git.push(INSTALLATION, repo, "shipyard/j1", url) == sha
    assert git(fake.bare(REPO), "rev-parse", "refs/heads/shipyard/j1").strip() == sha
    renewed = github.token(INSTALLATION)
    assert renewed != first and fake.git_tokens[-1] == renewed, "the push went through with a new token"
    assert github.repository(INSTALLATION, REPO).full_name == REPO, "and the API uses the new one too"

    fake.tokens.clear()  # revoked while fetching, too
    app_git.fetch(INSTALLATION, repo, url, ["+refs/heads/shipyard/j1:refs/shipyard-pulls/1"])
    assert repo.resolve("refs/shipyard-pulls/1") == sha


def test_a_push_github_refuses_keeps_githubs_words(fake: FakeGitHub, app_key: RSAPrivateKey, tmp_path: Path) -> None:
    github = GitHub(fake.url, APP_ID, app_key)
    app_git = AppGit(github.tokens, tmp_path / "cache")
    url = fake.clone_url(REPO)
    repo = app_git.open(INSTALLATION, url)
    commit_on(repo, "shipyard/j1", "main", tmp_path / "a", "noted\n")
    fake.add_rule(REPO, "shipyard/*", "Cannot create ref due to creations being restricted.")
    with pytest.raises(PushRefused) as refused:
        app_git.push(INSTALLATION, repo, "shipyard/j1", url)
    assert refused.value.remote[0] == "error: GH013: Repository rule violations found for refs/heads/shipyard/j1."
    assert "- Cannot create ref due to creations being restricted." in refused.value.remote
    assert "declined" in refused.value.summary

    commit_on(repo, "theirs", "main", tmp_path / "b", "theirs\n")
    app_git.push(INSTALLATION, repo, "theirs", url, to="feature")
    with pytest.raises(NotFastForward, match=r"could not push shipyard/j1 to feature: \[rejected\]"):
        app_git.push(INSTALLATION, repo, "shipyard/j1", url, to="feature")
