"""A user's world for the director-safety tests: a real repo whose shipyard.toml names a scripted model
server, a state dir, and `shipyard` run as a user runs it (a process of its own, from a directory)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import call, make_repo, plan_entry, subtask

from agents.scripted_model import ScriptedModelServer
from orchestrator.config.settings import load_settings
from orchestrator.runtime.director import Director
from orchestrator.store.jobs import Job

CHANGE = [
    plan_entry(subtask("s1", "add a note")),
    {"match": {"role": "coder"}, "tool_calls": [call("create_file", path="NOTE.md", content="noted\n"),
                                                call("submit", summary="added NOTE.md")], "repeat": True},
    {"match": {"role": "reviewer"}, "tool_calls": [call("submit_review", decision="approve", summary="fine")],
     "repeat": True},
]

SLOW = 120.0  # seconds a slow model takes to answer: far longer than any wait of the tests


def slow(role: str) -> list[dict[str, Any]]:
    """CHANGE, with `role`'s first answer coming only after SLOW seconds."""
    entries = [dict(e) for e in CHANGE]
    for entry in entries:
        if entry["match"].get("role") == role:
            entries.insert(entries.index(entry), {**entry, "latency": SLOW, "repeat": False})
            break
    return entries


def toml_of(server: ScriptedModelServer, test_command: str = "test -f README.md", extra: str = "") -> str:
    return (f'test_command = "{test_command}"\n{extra}\n[models.default]\nbase_url = "{server.base_url}"\n'
            'model = "scripted"\nmax_retries = 0\n')


class World:
    def __init__(self, root: Path, script: Any, backend: str = "bubblewrap", test_command: str = "test -f README.md",
                 files: dict[str, str] | None = None, toml_extra: str = ""):
        self.root = root
        self.server = ScriptedModelServer(script).start()
        self.repo = make_repo(root / "repo", {"README.md": "hello\n", **(files or {}),
                                              "shipyard.toml": toml_of(self.server, test_command, toml_extra)})
        self.elsewhere = root / "elsewhere"
        self.elsewhere.mkdir()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_") and k != "OPENAI_API_KEY"},
            "SHIPYARD_STATE_DIR": str(root / "state"),
            "SHIPYARD_SANDBOX__BACKEND": backend,
        }

    def shipyard(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                 timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd or self.repo,
                              env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
                              check=False)

    def start(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "orchestrator", *args], cwd=cwd or self.repo,
                                env={**self.env, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)

    def director(self) -> Director:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SHIPYARD_STATE_DIR", self.env["SHIPYARD_STATE_DIR"])
            return Director(load_settings(self.elsewhere))

    def only_job(self) -> Job:
        jobs = self.director().list()
        assert len(jobs) == 1, [j.id for j in jobs]
        return jobs[0]

    def asked(self, role: str) -> int:
        return sum(1 for r in self.server.requests if r.role == role)

    def close(self) -> None:
        self.server.stop()


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def ended(process: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"the command did not end within {timeout}s:\n{err[-2000:]}")
    return process.returncode, out, err


def interrupt_a_run(w: World, sig: int, within: float) -> tuple[Job, int, str]:
    """`shipyard run` of a job whose coder's model is slow (slow("coder")), sent `sig` while the coder waits for
    its answer: the job, and how the run ended (exit code, stderr) within `within` seconds."""
    process = w.start("run", "add a note", "--repo", ".")
    wait_for(lambda: w.asked("coder"), 60, "the coder to ask its model")
    job = w.only_job()
    os.killpg(process.pid, sig)
    code, _, err = ended(process, within)
    return job, code, err


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]
