"""Helpers for tests that run real jobs: git repos and scripted-model entries."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from agents.scripted_model import ScriptedModelServer
from orchestrator.apps.demo import demo_settings
from orchestrator.runtime.director import Director

GIT_ENV = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "T",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "PATH": "/usr/bin:/bin"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def checkout_state(repo: Path) -> tuple[str, str, str]:
    """What must not change in the user's checkout: status, HEAD and the current branch."""
    return git(repo, "status", "--porcelain"), git(repo, "rev-parse", "HEAD"), git(repo, "branch", "--show-current")


class ScriptedJobs:
    """A scripted model server plus a Director whose every role talks to it."""

    def __init__(self, workdir: Path, backend: str):
        self.workdir = workdir
        self.backend = backend
        self.server: ScriptedModelServer | None = None

    def runner(self, script: Any, **settings: Any) -> Director:
        if self.server is not None:
            self.server.stop()
        self.server = ScriptedModelServer(script).start()
        base = demo_settings(self.workdir, self.server.base_url, self.backend)
        return Director(base.model_copy(update=settings))

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def plan_entry(*subtasks: dict[str, Any], summary: str = "the plan") -> dict[str, Any]:
    return {"match": {"role": "planner"}, "tool_calls": [call("submit_plan", summary=summary, subtasks=list(subtasks))]}


def subtask(id: str, title: str, depends_on: list[str] | None = None) -> dict[str, Any]:
    return {"id": id, "title": title, "instructions": f"do {title}", "depends_on": depends_on or []}


def coder(sub: str, *calls: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"match": {"role": "coder", "any_message_contains": f"Your subtask: {sub}"}, "tool_calls": list(calls),
            **extra}


def approve(sub: str) -> dict[str, Any]:
    return {"match": {"role": "reviewer", "any_message_contains": f"Subtask: {sub}"},
            "tool_calls": [call("submit_review", decision="approve", summary="good")]}
