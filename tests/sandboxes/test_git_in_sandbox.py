"""Read-only git inside real docker and bubblewrap sandboxes, on a workspace of a real repository."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from user_git import git

from sandboxes.base import Sandbox, SandboxBackend, SandboxSpec
from sandboxes.bubblewrap import BubblewrapBackend
from sandboxes.docker_backend import DockerBackend
from sandboxes.git.branches import branch_name
from sandboxes.git.read_only import read_only_git
from sandboxes.git.repo import GitRepo
from sandboxes.git.workspace import Workspace

TOKEN = "ghp_plantedTokenThatMustNotLeak0123456789"


def snapshot(root: Path) -> dict[str, str]:
    """Every entry below `root` (its .git too): type, mode and content hash or link target."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            if path.is_symlink():
                what = f"link {os.readlink(path)}"
            elif path.is_dir():
                what = "dir"
            else:
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(root))] = f"{info.st_mode:o} {what}"
    return found


@pytest.fixture(params=[pytest.param("docker", marks=pytest.mark.docker),
                        pytest.param("bubblewrap", marks=pytest.mark.bubblewrap)])
def backend(request: pytest.FixtureRequest) -> SandboxBackend:
    if request.param == "bubblewrap":
        if shutil.which("bwrap") is None:
            pytest.skip("bwrap is not installed")
        return BubblewrapBackend()
    request.getfixturevalue("image")
    return DockerBackend(request.getfixturevalue("client"))


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """The user's repository, with a token in its config as many clones have one."""
    path = tmp_path / "user"
    git(tmp_path, "init", "-q", "-b", "main", str(path))
    (path / "app.py").write_text("def answer():\n    return 41\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    git(path, "remote", "add", "origin", f"https://x-access-token:{TOKEN}@github.com/owner/repo.git")
    git(path, "config", "http.https://github.com/.extraHeader", f"Authorization: Bearer {TOKEN}")
    return path


@pytest.fixture
def workspace(user_repo: Path, tmp_path: Path) -> Iterator[Workspace]:
    """An agent's workspace with one commit of its own and an uncommitted change on top."""
    repo = GitRepo.open(user_repo, tmp_path / "cache")
    ws = repo.create_workspace(branch_name("j1", "coder"), "main", tmp_path / "state" / "ws")
    (ws.path / "notes.md").write_text("notes\n")
    ws.commit("Add notes", role="coder")
    (ws.path / "app.py").write_text("def answer():\n    return 42\n")
    yield ws
    repo.remove_workspace(ws)


def run(sandbox: Sandbox, command: str) -> tuple[int, str]:
    result = sandbox.exec(command, timeout=60)
    return result.exit_code, result.output


def test_read_only_git_in_the_sandbox(backend: SandboxBackend, workspace: Workspace, user_repo: Path) -> None:
    before = snapshot(user_repo)
    git_dir = user_repo / ".git"

    with backend.start(SandboxSpec(workspace=workspace.path)) as sandbox:
        assert run(sandbox, "git status --porcelain") == (0, " M app.py\n")
        code, diff = run(sandbox, "git diff")
        assert code == 0 and "-    return 41\n+    return 42\n" in diff
        assert run(sandbox, "git log --format=%s") == (0, "Add notes\ninitial\n")
        assert run(sandbox, "git show --format=%an --name-only HEAD") == (0, "Shipyard coder\n\nnotes.md\n")
        assert run(sandbox, "git rev-parse --abbrev-ref HEAD") == (0, f"{workspace.branch}\n")

        code, out = run(sandbox, "git commit -qam 'from the sandbox'")
        assert code != 0 and "Read-only file system" in out
        code, out = run(sandbox, "git branch other")
        assert code != 0 and "Read-only file system" in out

        # Whatever the sandbox reads of the repository's git directory, the token is not in it.
        code, seen = run(sandbox, f"git remote -v; git config --list --show-origin; cat {git_dir}/config; "
                                  f"grep -rl x-access-token {git_dir}; ls -a {git_dir}")
        assert TOKEN not in seen and "github.com" not in seen, seen
        assert run(sandbox, f"ls {git_dir}")[1].split() == ["HEAD", "config", "info", "objects", "refs", "worktrees"]
        assert run(sandbox, f"ls {git_dir}/worktrees")[1].split() == [workspace.git_dir.name]

    assert snapshot(user_repo) == before
    assert git(user_repo, "log", "-1", "--format=%s", workspace.branch) == "Add notes"


def test_the_repository_config_is_read_again_only_once_it_changed(workspace: Workspace, user_repo: Path) -> None:
    def sanitized() -> str:
        git = read_only_git(workspace.path)
        assert git is not None
        try:
            return dict((host.name, host.read_text()) for host, _ in git.binds if host.name == "config")["config"]
        finally:
            git.close()

    assert "ignorecase" not in sanitized()
    git(user_repo, "config", "core.ignorecase", "true")  # a setting reading needs: the sandbox's copy has it
    assert "ignorecase = true" in sanitized()
    assert sanitized() == sanitized()


def test_a_git_file_pointing_anywhere_but_its_own_worktree_metadata_gets_no_git(
    workspace: Workspace, tmp_path: Path
) -> None:
    assert read_only_git(workspace.path) is not None
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "id_rsa").write_text("private key\n")
    dot_git = workspace.path / ".git"

    # Metadata made up inside the workspace, its objects a link to a secret directory.
    fake = workspace.path / "evil" / "worktrees" / "x"
    fake.mkdir(parents=True)
    (fake / "gitdir").write_text(f"{dot_git}\n")
    (workspace.path / "evil" / "objects").symlink_to(secrets)
    dot_git.write_text(f"gitdir: {fake}\n")
    assert read_only_git(workspace.path) is None

    # Another worktree's metadata: it names its own worktree, not this one.
    other = workspace.repo.create_workspace(branch_name("j1", "other"), "main", tmp_path / "state" / "other")
    dot_git.write_text(f"gitdir: {other.git_dir}\n")
    assert read_only_git(workspace.path) is None

    # A link instead of the file, even to the right place.
    dot_git.unlink()
    (tmp_path / "elsewhere").write_text(f"gitdir: {workspace.git_dir}\n")
    dot_git.symlink_to(tmp_path / "elsewhere")
    assert read_only_git(workspace.path) is None
