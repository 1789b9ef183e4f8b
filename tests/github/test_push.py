"""Git over HTTP with an installation token: clone, fetch and push, the token never written anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from appkit import APP_ID, INSTALLATION, REPO
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from fake_github import FakeGitHub
from helpers import git, make_repo

from orchestrator.apps.github.client import GitHub
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
