"""Hostile repositories: links out of the repo, hooks and filters, and trees built to drown the tools."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import call, checkout_state, git, make_repo
from kit import (
    CANARY_SSH,
    HOOK_NAMES,
    HostSecrets,
    arm_repo,
    branches,
    hostile_repo,
    make_backend,
    one_subtask_script,
    require_backend,
    scripted_job,
)

from agents.repo_files import HostRepoFiles
from agents.repo_info import file_tree, read_readme
from agents.repo_map import build_repo_map
from agents.test_discovery import TestCommand, discover_test_command
from agents.tools import ToolObservation, Toolset
from orchestrator.store.jobs import JobStatus
from sandboxes.base import SandboxLimits, SandboxSpec
from sandboxes.git.repo import GitRepo

OTHER_SECRET = "ANOTHER-AGENTS-UNCOMMITTED-WORK"


@pytest.fixture
def hostile(outside: Path, secrets_planted: HostSecrets, backend_name: str) -> Iterator[tuple[Toolset, Path, Path]]:
    """A sandbox (of each backend) on a worktree of a repo full of links out of itself.

    The repo and the state dir sit outside /tmp, as a user's would; the state dir is
    hidden from bubblewrap sandboxes as the job runner hides it.
    """
    state = outside / "state"
    other = state / "worktrees" / "job" / "s2"
    repo_dir = hostile_repo(outside / "repo", secrets_planted.home, other)
    repo = GitRepo.open(repo_dir, state / "repos")
    repo.create_workspace("shipyard/job--s2", "main", other)
    (other / "secret.txt").write_text(OTHER_SECRET + "\n")
    ws = repo.create_workspace("shipyard/job--s1", "main", state / "worktrees" / "job" / "s1")
    backend = make_backend(backend_name, hide=(state,))
    with backend.start(SandboxSpec(workspace=ws.path, limits=SandboxLimits(exec_timeout=10))) as sandbox:
        yield Toolset(sandbox), ws.path, other


def _no_secret(observation: ToolObservation) -> None:
    assert CANARY_SSH not in observation.text and OTHER_SECRET not in observation.text, observation.text


def test_file_tools_refuse_links_out_of_the_workspace(hostile: tuple[Toolset, Path, Path]) -> None:
    tools, _, other = hostile
    passwd = Path("/etc/passwd").read_bytes()
    refusals = [
        ("view_file", {"path": name}) for name in ("passwd", "shadow", "ssh_key", "other_secret", "etc/passwd",
                                                   "home/.ssh/id_rsa", "other/secret.txt", "up/etc/passwd",
                                                   "/etc/passwd", "/workspace/../etc/passwd", "../../etc/passwd")
    ] + [
        ("list_files", {"path": name}) for name in ("etc", "home", "home/.ssh", "other", "up", "/etc")
    ] + [
        ("search_text", {"pattern": "CANARY|AGENTS", "path": name}) for name in ("home", "other", "ssh_key", "up")
    ] + [
        ("edit_file", {"path": "passwd", "old": "root", "new": "pwned"}),
        ("edit_file", {"path": "other/secret.txt", "old": "ANOTHER", "new": "pwned"}),
        ("create_file", {"path": "passwd", "content": "pwned\n"}),
        ("create_file", {"path": "etc/pwned", "content": "pwned\n"}),
        ("create_file", {"path": "other/secret.txt", "content": "pwned\n"}),
        ("create_file", {"path": "home/.ssh/authorized_keys", "content": "ssh-rsa pwned\n"}),
        ("create_file", {"path": "../escaped.txt", "content": "pwned\n"}),
        ("create_file", {"path": "/etc/pwned", "content": "pwned\n"}),
    ]
    for name, arguments in refusals:
        observation = tools.call(name, arguments)
        assert not observation.ok, (name, arguments, observation.text)
        assert "outside the workspace" in observation.text or "only paths inside /workspace" in observation.text, (
            name, arguments, observation.text)
        _no_secret(observation)
    # A search of the whole workspace does not follow the links either.
    _no_secret(tools.call("search_text", {"pattern": "CANARY|AGENTS|root:", "path": "."}))
    listing = tools.call("list_files", {})
    assert listing.ok and "secret.txt" not in listing.text and "id_rsa" not in listing.text, listing.text
    assert Path("/etc/passwd").read_bytes() == passwd and not Path("/etc/pwned").exists()
    assert (other / "secret.txt").read_text() == OTHER_SECRET + "\n"
    assert not (other.parent / "escaped.txt").exists()


def test_commands_in_the_sandbox_cannot_follow_links_out(hostile: tuple[Toolset, Path, Path]) -> None:
    tools, workspace, other = hostile
    passwd = Path("/etc/passwd").read_bytes()
    attempts = [
        "cat ssh_key home/.ssh/id_rsa other_secret other/secret.txt",
        "ls -la home home/.ssh other up/",
        "cat shadow etc/shadow",
        "grep -rs CANARY home/ other/ 2>/dev/null | head",
        "echo pwned > passwd; echo pwned > etc/pwned; echo pwned > other/secret.txt; echo pwned > other/new.txt",
        "mkdir -p home/.ssh && echo 'ssh-rsa pwned' >> home/.ssh/authorized_keys",
    ]
    for command in attempts:
        observation = tools.call("run_command", {"command": command})
        assert observation.ok, observation.text  # the tool ran; the command's own exit code is in the text
        _no_secret(observation)
    assert Path("/etc/passwd").read_bytes() == passwd and not Path("/etc/pwned").exists()
    assert (other / "secret.txt").read_text() == OTHER_SECRET + "\n" and not (other / "new.txt").exists()
    assert not (Path.home() / ".ssh" / "authorized_keys").exists() or \
        "pwned" not in (Path.home() / ".ssh" / "authorized_keys").read_text()
    # The links themselves are still the repo's content, untouched.
    assert os.readlink(workspace / "passwd") == "/etc/passwd"


def test_hooks_and_filters_of_the_target_repo_never_run_on_the_host(tmp_path: Path) -> None:
    backend = require_backend("bubblewrap")
    repo = make_repo(tmp_path / "repo", {"README.md": "# project\n", "app.py": "def main():\n    return 1\n"})
    markers = tmp_path / "markers"
    before = checkout_state(repo)
    arm_repo(repo, markers)
    before = (before[0], git(repo, "rev-parse", "HEAD"), before[2])
    script = one_subtask_script(
        call("edit_file", path="app.py", old="return 1", new="return 2"),
        call("create_file", path="notes/NEW.md", content="new\n"),
        call("run_command", command="git status; git log --oneline | head -3; git commit -qam x; true"),
    )
    with scripted_job(tmp_path, repo, script, backend, test_command="test -f app.py") as job:
        done = job.runner.run(job.submit().id)
        assert done.status == JobStatus.SUCCEEDED, done.error
        assert "return 2" in job.runner.changes(done.id, "main", f"shipyard/{done.id}")[1]
        assert safe_git(repo, "status", "--porcelain") == before[0]
        accepted = job.runner.accept(done.id)
        assert accepted.ok, accepted.message
    ran = sorted(p.name for p in markers.iterdir())
    assert safe_git(repo, "show", "main:app.py") == "def main():\n    return 2\n"
    assert ran == [], f"ran on the host: {ran} (armed: {', '.join(HOOK_NAMES)}, filters, fsmonitor, textconv)"
    assert set(branches(repo)) == {"main", f"shipyard/{done.id}", f"shipyard/{done.id}--s1"}


def safe_git(repo: Path, *args: str) -> str:
    """The test's own look at the armed repo, with everything armed switched off."""
    off = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "filter.evil.clean=",
           "-c", "filter.evil.smudge=", "-c", "filter.evil.required=false"]
    return git(repo, *off, *args)


# --- trees built to drown the tools -----------------------------------------------------

HUGE_TEXT_MB = 40
SPARSE_GB = 16


@pytest.fixture(scope="module")
def drowning_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Huge, sparse, binary, non-UTF-8 and single-line files, and a name that is not UTF-8."""
    root = tmp_path_factory.mktemp("drown") / "ws"
    root.mkdir()
    line = b"needle in a haystack of text, line after line after line\n"
    with open(root / "huge.txt", "wb") as out:
        block = line * ((1 << 20) // len(line))
        for _ in range(HUGE_TEXT_MB):
            out.write(block)
    with open(root / "sparse.log", "wb") as out:  # 16 GiB that take no disk: reading it all would
        out.truncate(SPARSE_GB << 30)
    (root / "one_line.js").write_bytes(b"var needle = [" + b"1," * (10 << 20) + b"];\n")
    (root / "blob.dat").write_bytes(bytes(range(256)) * 4096)
    (root / "latin1.py").write_bytes(b"# caf\xe9 cr\xe8me\nNAME = 'd\xe9j\xe0 vu'  # needle\n")
    (root / os.fsdecode(b"caf\xe9-\xff.txt")).write_bytes(b"needle\n")
    (root / "README.md").write_bytes(b"# readme\n" + b"x" * (5 << 20) + b"\n")
    return root


def _timed(tools: Toolset, name: str, arguments: dict) -> tuple[ToolObservation, float]:
    started = time.monotonic()
    observation = tools.call(name, arguments)
    return observation, time.monotonic() - started


def _bounded(observation: ToolObservation, tools: Toolset) -> None:
    # Valid Unicode, whatever the bytes in the repo: it goes into JSON and to the model.
    observation.text.encode("utf-8")
    assert len(observation.text) <= tools.limits.max_output_chars + 200, len(observation.text)


@pytest.fixture
def drowning_tools(drowning_tree: Path, backend_name: str) -> Iterator[Toolset]:
    spec = SandboxSpec(workspace=drowning_tree, limits=SandboxLimits(exec_timeout=60))
    with make_backend(backend_name).start(spec) as sandbox:
        yield Toolset(sandbox)


@pytest.mark.timeout(180)
def test_tools_answer_huge_binary_and_foreign_files_in_bounded_output_and_time(drowning_tools: Toolset) -> None:
    tools = drowning_tools
    calls = [
        ("view_file", {"path": "huge.txt"}),
        ("view_file", {"path": "huge.txt", "start_line": 1_000_000, "end_line": 1_000_100}),
        ("view_file", {"path": "sparse.log"}),
        ("view_file", {"path": "one_line.js"}),
        ("view_file", {"path": "blob.dat"}),
        ("view_file", {"path": "latin1.py"}),
        ("edit_file", {"path": "sparse.log", "old": "a", "new": "b"}),
        ("list_files", {}),
        ("search_text", {"pattern": "needle"}),
        ("search_text", {"pattern": "needle", "path": "one_line.js"}),
        ("run_command", {"command": "cat huge.txt one_line.js"}),
        ("run_command", {"command": "head -c 50000000 sparse.log"}),
        ("run_command", {"command": "ls"}),
    ]
    for name, arguments in calls:
        observation, seconds = _timed(tools, name, arguments)
        _bounded(observation, tools)
        assert seconds < 30, (name, arguments, seconds)
        if name == "view_file" and arguments["path"] == "one_line.js":  # 20 MB on one line: clipped
            assert observation.ok and "more characters" in observation.text, observation.text[-300:]
        if name in ("view_file", "edit_file") and arguments["path"] in ("huge.txt", "sparse.log"):
            # Refused from its size, with what to do instead, rather than read whole into memory.
            assert not observation.ok and "sed -n" in observation.text, observation.text
    latin = tools.call("view_file", {"path": "latin1.py"})
    assert latin.ok and "not valid UTF-8" in latin.text
    names = tools.call("list_files", {}).text
    assert "caf" in names and "huge.txt" in names
    foreign = tools.call("search_text", {"pattern": "needle", "glob": "caf*"})
    _bounded(foreign, tools)


def test_repo_map_file_tree_and_readme_stay_bounded_on_hostile_files(drowning_tree: Path) -> None:
    started = time.monotonic()
    tree = file_tree(HostRepoFiles(drowning_tree))
    repo_map = build_repo_map(HostRepoFiles(drowning_tree))
    readme = read_readme(HostRepoFiles(drowning_tree))
    assert time.monotonic() - started < 10
    for text in (tree, repo_map, readme or ""):
        text.encode("utf-8")
    assert len(repo_map) <= 8_000 and len(tree) < 20_000 and len(readme or "") < 7_000


@pytest.mark.timeout(180)
def test_a_100000_file_tree_gets_bounded_answers_in_bounded_time(big_tree: Path, backend_name: str) -> None:
    spec = SandboxSpec(workspace=big_tree, limits=SandboxLimits(exec_timeout=60))
    with make_backend(backend_name).start(spec) as sandbox:
        tools = Toolset(sandbox)
        for name, arguments in [
            ("list_files", {}),
            ("list_files", {"pattern": "*.py"}),
            ("search_text", {"pattern": "return"}),
            ("search_text", {"pattern": "f099999"}),
            ("run_command", {"command": "find . -type f"}),
        ]:
            observation, seconds = _timed(tools, name, arguments)
            _bounded(observation, tools)
            assert observation.ok, observation.text[:500]
            assert seconds < 30, (name, seconds)
        assert "more not shown" in tools.call("list_files", {}).text
        assert "f099999" in tools.call("search_text", {"pattern": "f099999"}).text


def discovered_command(files: HostRepoFiles) -> str | None:
    found = discover_test_command(files)
    return found.command if isinstance(found, TestCommand) else None


def test_planner_inputs_of_a_100000_file_tree_are_bounded(big_tree: Path) -> None:
    for build, limit in [(file_tree, 20_000), (build_repo_map, 8_000), (discovered_command, 100),
                         (read_readme, 7_000)]:
        started = time.monotonic()
        text = build(HostRepoFiles(big_tree)) or ""
        assert time.monotonic() - started < 20, build.__name__
        assert len(text) <= limit, (build.__name__, len(text))
