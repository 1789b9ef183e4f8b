"""The adversarial suite's toolkit, shared with the fault matrix (`python -m bench.faults`).

Everything here is real: git repositories, sandboxes of the backends present, the scripted
model over HTTP, runner processes killed with SIGKILL. Network checks only ever target
servers started here on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import multiprocessing
import os
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import GIT_ENV, call, git, make_repo

from agents.models import ModelSpec
from agents.scripted_model import ScriptedModelServer
from orchestrator.apps.demo import demo_settings
from orchestrator.config.settings import Settings
from orchestrator.runtime.director import Director
from orchestrator.store.events import Event
from orchestrator.store.jobs import Job, JobStatus, Task
from sandboxes.base import SandboxBackend
from sandboxes.bubblewrap import BubblewrapBackend
from sandboxes.docker_backend import DockerBackend
from sandboxes.image_build import DEFAULT_TAG

BACKENDS = ("docker", "bubblewrap")
# Canaries: if one of these turns up where it must not, something escaped.
CANARY_KEY = "sk-shipyard-canary-" + "0" * 24
CANARY_TOKEN = "ghp_shipyardcanary" + "1" * 22
CANARY_SSH = "SHIPYARD-CANARY-PRIVATE-KEY"


def backend_unavailable(name: str) -> str | None:
    """Why the backend cannot run here, or None when it can."""
    if name == "bubblewrap":
        if shutil.which("bwrap") is None:
            return "bwrap is not installed"
        found = BubblewrapBackend().availability()
    else:
        found = DockerBackend().availability(DEFAULT_TAG)
    return None if found.ok else found.detail


_unavailable: dict[str, str | None] = {}


def require_backend(name: str) -> str:
    """Skip the test (a failure in CI, where present backends are required) when the backend does not work here."""
    import pytest

    if name not in _unavailable:
        _unavailable[name] = backend_unavailable(name)
    if _unavailable[name]:
        pytest.skip(f"the {name} sandbox cannot run here: {_unavailable[name]}")
    return name


def make_backend(name: str, hide: tuple[Path, ...] = ()) -> SandboxBackend:
    return BubblewrapBackend(hide=[str(p) for p in hide]) if name == "bubblewrap" else DockerBackend()


# --- places ------------------------------------------------------------------------


@contextlib.contextmanager
def outside_tmp(prefix: str = "shipyard-adv-") -> Iterator[Path]:
    """A scratch directory NOT under /tmp, removed afterwards.

    bubblewrap gives every sandbox a fresh /tmp, so a host path under /tmp is invisible in
    it whatever the backend hides; a repo or state dir here is seen (read-only) unless
    Shipyard hides it, as it would be in a user's real setup.
    """
    parent = Path("/var/cache") if os.access("/var/cache", os.W_OK) else Path.home()
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def small_filesystem(path: Path, megabytes: int) -> Iterator[Path]:
    """An ext4 file system of `megabytes` loop-mounted at `path` (root only): a disk that fills up quickly.

    Not a tmpfs: its pages would count against the memory limit of whichever sandbox wrote them.
    """
    path.mkdir(parents=True, exist_ok=True)
    image = path.parent / f"{path.name}.img"
    with open(image, "wb") as out:
        out.truncate(megabytes << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(path)], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
        image.unlink(missing_ok=True)


def can_mount() -> bool:
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("mount", "mkfs.ext4", "losetup")) \
        and os.path.exists("/dev/loop-control")


def fill_disk(path: Path, leave_bytes: int = 0) -> Path:
    """Write a ballast file in `path` until its file system has at most `leave_bytes` free."""
    ballast = path / "ballast.bin"
    chunk = b"\0" * (1 << 20)
    with open(ballast, "wb") as out:
        while True:
            free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
            if free <= leave_bytes:
                break
            try:
                out.write(chunk[: max(4096, min(len(chunk), free - leave_bytes))])
                out.flush()
            except OSError:
                break
    return ballast


# --- host secrets and a loopback listener -------------------------------------------


@dataclass
class HostSecrets:
    """Secrets planted on the host for a test: API keys in the environment, a fake SSH key in ~/.ssh."""

    ssh_key: Path
    home: Path
    values: tuple[str, ...] = (CANARY_KEY, CANARY_TOKEN, CANARY_SSH)

    def found_in(self, text: str) -> list[str]:
        return [value for value in self.values if value in text]


@contextlib.contextmanager
def host_secrets() -> Iterator[HostSecrets]:
    """OPENAI_API_KEY and GITHUB_TOKEN set in this process, and a fake private key in the real ~/.ssh.

    An existing ~/.ssh/id_rsa is never touched: the fake key then gets a name of its own.
    """
    home = Path.home()
    ssh = home / ".ssh"
    made_dir = not ssh.exists()
    ssh.mkdir(mode=0o700, exist_ok=True)
    key = ssh / "id_rsa"
    if key.exists() or key.is_symlink():
        key = ssh / f"id_rsa_shipyard_{secrets.token_hex(4)}"
    key.write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{CANARY_SSH}\n-----END OPENSSH PRIVATE KEY-----\n")
    key.chmod(0o600)
    saved = {name: os.environ.get(name) for name in ("OPENAI_API_KEY", "GITHUB_TOKEN")}
    os.environ["OPENAI_API_KEY"] = CANARY_KEY
    os.environ["GITHUB_TOKEN"] = CANARY_TOKEN
    try:
        yield HostSecrets(ssh_key=key, home=home)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        key.unlink(missing_ok=True)
        if made_dir:
            shutil.rmtree(ssh, ignore_errors=True)


class LoopbackServer:
    """An HTTP server on 127.0.0.1 that counts every connection made to it (an exfiltration target)."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"exfiltrated\n")

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.connections = 0
        original = self._server.get_request

        def counted() -> Any:
            request = original()
            self.connections += 1
            return request

        self._server.get_request = counted  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- repositories ----------------------------------------------------------------------


def hostile_repo(path: Path, home: Path, other_worktree: Path) -> Path:
    """A repo whose tree links out of itself: to /etc, into the user's home, into another worktree, and up."""
    repo = make_repo(path, {"README.md": "# project\n", "app.py": "def main():\n    return 1\n"})
    links = {
        "etc": "/etc",
        "passwd": "/etc/passwd",
        "shadow": "/etc/shadow",
        "home": str(home),
        "ssh_key": str(home / ".ssh" / "id_rsa"),
        "other": str(other_worktree),
        "other_secret": str(other_worktree / "secret.txt"),
        "up": "../../..",
    }
    for name, target in links.items():
        (repo / name).symlink_to(target)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "links")
    return repo


HOOK_NAMES = (
    "pre-commit", "prepare-commit-msg", "commit-msg", "post-commit", "pre-merge-commit", "post-merge",
    "post-checkout", "pre-rebase", "post-rewrite", "reference-transaction", "pre-push", "pre-auto-gc",
    "post-index-change", "fsmonitor-watchman",
)


def arm_repo(repo: Path, markers: Path) -> None:
    """Hooks, a hooks path, an fsmonitor and filter/diff drivers in the repo that would each leave a marker.

    `.gitattributes` is part of the repo's content (anyone can ship one); the hooks and the
    drivers' commands live in the repo's config (the user's machine), as git requires.
    """
    markers.mkdir(parents=True, exist_ok=True)

    def script(name: str) -> str:
        return f"#!/bin/sh\ntouch '{markers}/{name}'\ncat\n" if name.startswith("filter") else \
            f"#!/bin/sh\ntouch '{markers}/{name}'\nexit 0\n"

    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in HOOK_NAMES:
        (hooks / name).write_text(script(name))
        (hooks / name).chmod(0o755)
    other_hooks = repo.parent / f"{repo.name}-hooks"
    other_hooks.mkdir(exist_ok=True)
    for name in HOOK_NAMES:
        (other_hooks / name).write_text(script(f"hookspath-{name}"))
        (other_hooks / name).chmod(0o755)
    tools = repo.parent / f"{repo.name}-drivers"
    tools.mkdir(exist_ok=True)
    for name in ("filter-clean", "filter-smudge", "fsmonitor", "textconv", "external-diff"):
        (tools / name).write_text(script(name))
        (tools / name).chmod(0o755)
    for key, value in {
        "core.hooksPath": str(other_hooks),
        "core.fsmonitor": str(tools / "fsmonitor"),
        "filter.evil.clean": str(tools / "filter-clean"),
        "filter.evil.smudge": str(tools / "filter-smudge"),
        "filter.evil.required": "true",
        "diff.evil.textconv": str(tools / "textconv"),
        "diff.evil.command": str(tools / "external-diff"),
    }.items():
        git(repo, "config", key, value)
    (repo / ".gitattributes").write_text("* filter=evil diff=evil\n")
    # The commit that brings the attributes in must not run them either: committed with
    # everything switched off, as a user would have received it.
    subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "filter.evil.clean=",
                    "-c", "filter.evil.smudge=", "-c", "filter.evil.required=false", "add", "-A"], cwd=repo,
                   env=GIT_ENV, check=True, capture_output=True)
    subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "commit", "-q",
                    "--no-verify", "-m", "attributes"], cwd=repo, env=GIT_ENV, check=True, capture_output=True)
    for stale in markers.iterdir():
        stale.unlink()


def make_big_tree(root: Path, files: int, per_dir: int = 1000) -> Path:
    """`files` small files in directories of `per_dir`; a tenth are Python."""
    root.mkdir(parents=True, exist_ok=True)
    for d in range(0, files, per_dir):
        directory = root / f"d{d // per_dir:04d}"
        directory.mkdir()
        for i in range(d, min(d + per_dir, files)):
            suffix = "py" if i % 10 == 0 else "txt"
            with open(directory / f"f{i:06d}.{suffix}", "w") as out:
                out.write(f"def f{i}():\n    return {i}\n" if suffix == "py" else f"line {i}\n")
    return root


# --- jobs --------------------------------------------------------------------------------


def job_settings(workdir: Path, base_url: str, backend: str, **overrides: Any) -> Settings:
    """The demo's settings (scripted model for every role, a state dir in workdir) with quick model retries."""
    settings = demo_settings(workdir, base_url, backend)
    model = ModelSpec(base_url=base_url, model="scripted", timeout=overrides.pop("model_timeout", 2.0),
                      max_retries=overrides.pop("max_retries", 2),
                      **overrides.pop("model_fields", {}))
    limits = overrides.pop("limits", None)
    sandbox = settings.sandbox if limits is None else settings.sandbox.model_copy(update={"limits": limits})
    image = overrides.pop("image", None)
    if image:
        sandbox = sandbox.model_copy(update={"image": image})
    return settings.model_copy(update={"models": {"default": model}, "sandbox": sandbox, **overrides})


@dataclass
class ScriptedJob:
    """A scripted model server and a runner whose every role talks to it."""

    server: ScriptedModelServer
    runner: Director
    repo: Path

    def submit(self, instruction: str = "do the task", **task: Any) -> Job:
        return self.runner.submit(Task(instruction=instruction, repo=str(self.repo), base="main", **task))

    def events(self, job_id: str, *kinds: str) -> list[Event]:
        return [e for e in self.runner.events(job_id) if not kinds or e.kind in kinds]


@contextlib.contextmanager
def scripted_job(workdir: Path, repo: Path, script: Any, backend: str, **settings: Any) -> Iterator[ScriptedJob]:
    with ScriptedModelServer(script) as server:
        runner = Director(job_settings(workdir, server.base_url, backend, **settings))
        yield ScriptedJob(server=server, runner=runner, repo=repo)


def one_subtask_script(*coder_calls: dict[str, Any], coder_extra: list[dict[str, Any]] | None = None,
                       review: bool = True) -> list[dict[str, Any]]:
    """Planner: one subtask s1; the coder makes `coder_calls` one per step, then submits; the reviewer approves."""
    script: list[dict[str, Any]] = [{"match": {"role": "planner"}, "tool_calls": [call(
        "submit_plan", summary="One change.", subtasks=[{"id": "s1", "title": "Make the change",
                                                         "instructions": "Do what the README says."}])]}]
    script += coder_extra or []
    for step in coder_calls:
        script.append({"match": {"role": "coder"}, "tool_calls": [step]})
    script.append({"match": {"role": "coder"}, "tool_calls": [call("submit", summary="Done.")]})
    if review:
        script.append({"match": {"role": "reviewer"}, "repeat": True,
                       "tool_calls": [call("submit_review", decision="approve", summary="Fine.")]})
    return script


def branches(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


def tool_outputs(events: list[Event]) -> list[str]:
    return [str(e.payload.get("output", "")) for e in events if e.kind == "agent.tool_result"]


def work_lost(runner: Director, repo: Path, job_id: str) -> list[str]:
    """What a job recorded as done but the repository no longer holds; [] when nothing is lost.

    Every agent commit the events announce is on a branch of the job, every successful
    merge is on the job branch, and a succeeded job's report head is the job branch.
    """
    lost = []
    heads = branches(repo)
    job_branches = {name: sha for name, sha in heads.items() if name.startswith(f"shipyard/{job_id}")}
    if not any(e.kind == "job.submitted" for e in runner.events(job_id)):
        lost.append("the job.submitted event is gone")

    def reachable(sha: str) -> bool:
        return any(subprocess.run(["git", "merge-base", "--is-ancestor", sha, tip], cwd=repo, env=GIT_ENV,
                                  capture_output=True).returncode == 0 for tip in job_branches.values())

    last_commit: dict[str, str] = {}
    for event in runner.events(job_id):
        if event.kind == "agent.commit" and event.payload.get("head"):
            last_commit[event.agent or ""] = event.payload["head"]
        if event.kind == "merge" and event.payload.get("ok") and event.payload.get("sha"):
            if not reachable(event.payload["sha"]):
                lost.append(f"merge {event.payload['sha'][:10]} of {event.subtask} is on no job branch")
    for agent, sha in last_commit.items():
        if not reachable(sha):
            lost.append(f"the last commit {sha[:10]} of {agent} is on no job branch")
    job = runner.get(job_id)
    if job.status == JobStatus.SUCCEEDED and job.report:
        if job_branches.get(f"shipyard/{job_id}") != job.report["head_sha"]:
            lost.append("the job branch is not where the report says")
    return lost


# --- scripts of long, strictly ordered jobs ----------------------------------------------------


def chain_script(n: int = 12, latency: float = 0.05) -> dict[str, Any]:
    """`n` subtasks, each depending on the one before; every answer repeatable, so that a stage redone
    after a kill gets its answers again."""
    subtasks = [{"id": f"s{i}", "title": f"step {i}", "instructions": f"Write s{i}.txt",
                 "depends_on": [f"s{i - 1}"] if i > 1 else []} for i in range(1, n + 1)]
    responses: list[dict[str, Any]] = [
        {"match": {"role": "planner"}, "repeat": True,
         "tool_calls": [call("submit_plan", summary="A chain.", subtasks=subtasks)]},
    ]
    for i in range(1, n + 1):
        responses.append({"match": {"role": "coder", "last_role": "user", "any_message_contains": f"Write s{i}.txt"},
                          "repeat": True, "tool_calls": [call("create_file", path=f"s{i}.txt", content=f"{i}\n")]})
    responses += [
        {"match": {"role": "coder", "last_role": "tool"}, "repeat": True,
         "tool_calls": [call("submit", summary="Wrote it.")]},
        {"match": {"role": "reviewer"}, "repeat": True,
         "tool_calls": [call("submit_review", decision="approve", summary="Fine.")]},
    ]
    return {"latency": latency, "responses": responses}


def restart_script() -> list[dict[str, Any]]:
    """One subtask whose coder runs a long command first (to restart a daemon under), then writes s1.txt."""
    return [
        {"match": {"role": "planner"}, "repeat": True, "tool_calls": [call(
            "submit_plan", summary="One.", subtasks=[{"id": "s1", "title": "note", "instructions": "Write s1.txt"}])]},
        {"match": {"role": "coder", "last_role": "user"}, "repeat": True,
         "tool_calls": [call("run_command", command="sleep 8; echo slept")]},
        {"match": {"role": "coder", "last_role": "tool", "last_message_contains": "stopped answering"},
         "repeat": True, "tool_calls": [call("run_command", command="echo revived")]},
        {"match": {"role": "coder", "last_role": "tool"}, "repeat": True,
         "tool_calls": [call("create_file", path="s1.txt", content="1\n"), call("submit", summary="Wrote it.")]},
        {"match": {"role": "reviewer"}, "repeat": True,
         "tool_calls": [call("submit_review", decision="approve", summary="Fine.")]},
    ]


# --- runner processes to kill ---------------------------------------------------------

_context: Any = None


def _forkserver() -> Any:
    """Runner processes forked from a server that imported Shipyard once: started in milliseconds."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["orchestrator.runtime.director", "agents.roles", "sandboxes.select"])
    return _context


def _run_job(settings: Settings, job_id: str, die_after_writes_to: str | None) -> None:
    os.setsid()  # its own process group: a kill takes its sandboxes with it
    if die_after_writes_to is not None:
        _die_after_writes(die_after_writes_to)
    Director(settings).run(job_id)


# `die_after_writes_to` this: the runner dies once the graph's last checkpoint is saved (the final
# tests are in it), before the job's row says it ended.
LAST_CHECKPOINT = "the last checkpoint"


def _die_after_writes(channel: str) -> None:
    """SIGKILL this process as soon as a graph task's writes to `channel` are saved: the moment a
    step's work is in the checkpoint store, before the checkpoint of the next step exists."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    if channel == LAST_CHECKPOINT:
        put = SqliteSaver.put

        def put_then_die(self: Any, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
            saved = put(self, config, checkpoint, metadata, new_versions)
            if "tests_after" in checkpoint["channel_values"]:
                os.kill(os.getpid(), 9)
            return saved

        SqliteSaver.put = put_then_die  # type: ignore[method-assign]
        return
    put_writes = SqliteSaver.put_writes

    def put_then_die(self: Any, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        put_writes(self, config, writes, task_id, task_path)
        if any(name == channel for name, _ in writes):
            os.kill(os.getpid(), 9)

    SqliteSaver.put_writes = put_then_die  # type: ignore[method-assign]


def start_runner(settings: Settings, job_id: str, die_after_writes_to: str | None = None) -> Any:
    """`Director.run(job_id)` in a process of its own, returned started; with `die_after_writes_to`,
    it kills itself once a step's writes to that state channel are saved."""
    process = _forkserver().Process(target=_run_job, args=(settings, job_id, die_after_writes_to), daemon=False)
    process.start()
    return process


def kill_runner(process: Any) -> None:
    """SIGKILL the runner and everything in its process group, as a crash (or the OOM killer) would."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 9)
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, 9)
    process.join(10)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


@contextlib.contextmanager
def sqlite_held(path: Path, seconds: float) -> Iterator[None]:
    """Another process holds an EXCLUSIVE lock on the SQLite database at `path` for `seconds`."""
    code = (
        "import sqlite3, sys, time\n"
        "conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)\n"
        "conn.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "conn.execute('COMMIT')\n"
    )
    holder = subprocess.Popen(["python3", "-c", code, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.wait(seconds + 30)


def sqlite_is_locked(path: Path) -> bool:
    try:
        conn = sqlite3.connect(str(path), timeout=0)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        conn.close()
        return False
    except sqlite3.OperationalError:
        return True


@dataclass
class Outcome:
    """One trial of a fault, as the fault matrix counts it."""

    finished: bool = False  # the job succeeded
    failed_cleanly: bool = False  # the job failed with a recorded reason, nothing raised past the runner
    lost: list[str] = field(default_factory=list)
    escapes: list[str] = field(default_factory=list)
    note: str = ""


# --- a Docker daemon of our own, to restart under a job ----------------------------------

MINI_IMAGE = "shipyard-mini:latest"
# What the docker backend needs in an image (a shell, timeout, env, sleep, mkdir, cat) and a
# few tools for agents' commands; taken from the host with their libraries.
MINI_TOOLS = ("sh", "timeout", "env", "sleep", "mkdir", "cat", "ls", "rm", "echo", "true", "test", "dd", "head")


def _mini_rootfs(tar_path: Path) -> Path:
    files: dict[str, str] = {}
    for tool in MINI_TOOLS:
        found = shutil.which(tool)
        if found is None:
            continue
        real = os.path.realpath(found)
        files[f"bin/{tool}"] = real
        ldd = subprocess.run(["ldd", real], capture_output=True, text=True).stdout
        for line in ldd.splitlines():
            parts = line.split()
            path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
            if path.startswith("/") and os.path.exists(path):
                files[path.lstrip("/")] = os.path.realpath(path)
    directories = {"tmp", "workspace", "etc", "proc", "dev", "sys", "sbin", "usr", "usr/local"}
    for name in files:
        parent = os.path.dirname(name)
        while parent:
            directories.add(parent)
            parent = os.path.dirname(parent)
    with tarfile.open(tar_path, "w") as tar:
        for directory in sorted(directories):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        for name, source in sorted(files.items()):
            tar.add(source, arcname=name)
        for link in ("usr/bin", "usr/local/bin", "usr/sbin"):
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/bin"
            tar.addfile(info)
        passwd = b"root:x:0:0::/root:/bin/sh\nshipyard:x:1000:1000::/tmp/home:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return tar_path


class PrivateDockerd:
    """A dockerd of our own (its own socket, data and state), so that restarting it mid-job
    disturbs no one else's containers. Storage: vfs; network: none; one tiny image."""

    def __init__(self, root: Path):
        self.root = root
        self.socket = root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None
        (root / "daemon.json").write_text("{}")

    def start(self, timeout: float = 60) -> None:
        log = open(self.root / "dockerd.log", "ab")
        # A network namespace of its own: with no bridge, dockerd deletes any `docker0` it sees,
        # and the machine's daemon owns the host's.
        self.process = subprocess.Popen(
            ["unshare", "--net", "--",
             "dockerd", "--config-file", str(self.root / "daemon.json"), "--data-root", str(self.root / "data"),
             "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "dockerd.pid"),
             "-H", self.host, "--bridge", "none", "--iptables=false", "--ip-masq=false", "--storage-driver", "vfs"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: self._docker("version").returncode == 0 or self.process.poll() is not None, timeout,
                 "the private dockerd", poll=0.2)
        if self.process.poll() is not None:
            raise RuntimeError(f"dockerd exited: {(self.root / 'dockerd.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def load_mini_image(self) -> str:
        tar = _mini_rootfs(self.root / "mini.tar")
        imported = self._docker("import", "--change", "USER 1000:1000", "--change", "WORKDIR /workspace",
                                "--change", "ENV HOME=/tmp/home", str(tar), MINI_IMAGE)
        if imported.returncode != 0:
            raise RuntimeError(f"docker import failed: {imported.stderr}")
        return MINI_IMAGE

    def containers(self) -> list[str]:
        return self._docker("ps", "-aq").stdout.split()

    def _docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "-H", self.host, *args], capture_output=True, text=True, timeout=60)


def private_dockerd_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to run a dockerd of its own"
    for tool in ("dockerd", "containerd", "runc", "docker", "ldd", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@contextlib.contextmanager
def private_dockerd() -> Iterator[PrivateDockerd]:
    root = Path(tempfile.mkdtemp(prefix="sy-dk-", dir="/tmp"))  # short: unix socket paths are limited
    daemon = PrivateDockerd(root)
    try:
        daemon.start()
        daemon.load_mini_image()
        yield daemon
    finally:
        daemon.stop()
        subprocess.run(["umount", "-R", str(root / "exec")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


class Bystander:
    """Another agent's sandbox and the host, checked a few times a second while something runs beside them."""

    def __init__(self, sandbox: Any):
        self.sandbox = sandbox
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                result = self.sandbox.exec("echo alive", timeout=20)
                if result.stdout != "alive\n":
                    self.failures.append(f"sandbox: {result.exit_code} {result.output[:200]}")
            except Exception as exc:  # noqa: BLE001 - recorded as a failure of the bystander
                self.failures.append(f"sandbox: {exc}")
            host = subprocess.run(["sh", "-c", "echo host"], capture_output=True, text=True, timeout=20)
            if host.stdout != "host\n":
                self.failures.append(f"host: {host.returncode} {host.stderr[:200]}")
            self.latencies.append(time.monotonic() - started)
            self._stop.wait(0.2)

    def problems(self) -> list[str]:
        """What went wrong for the bystander: failures, a hang, answers too slow to call it running."""
        found = list(self.failures)
        if self._thread.is_alive():
            found.append("the bystander's own command hung")
        if not self.latencies:
            found.append("the bystander never got an answer")
        elif max(self.latencies) >= 8 or sorted(self.latencies)[len(self.latencies) // 2] >= 3:
            found.append(f"the bystander was stuck: answers took up to {max(self.latencies):.1f} s")
        return found

    def __enter__(self) -> Bystander:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
