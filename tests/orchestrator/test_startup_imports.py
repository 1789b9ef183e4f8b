"""The reading commands start without the model stack: `shipyard --help`, `jobs` and `show` import neither
the model clients (openai, langchain), nor LangGraph, nor the Docker SDK. Seen in the modules the real
command imports (`python -X importtime`), not in how long it takes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.store.db import open_store
from orchestrator.store.jobs import Task
from orchestrator.store.records import JobRecords

HEAVY = ("openai", "langchain_core", "langchain_openai", "langgraph", "docker", "mcp")


def _imported(args: list[str], env: dict[str, str], cwd: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "orchestrator", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)
    # Each line of -X importtime: "import time: self | cumulative | module.name"
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
               if line.startswith("import time:") and line.count("|") == 2}
    return {m.split(".")[0] for m in modules}, done


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    root = Path(__file__).resolve().parents[2]
    return {**os.environ, "SHIPYARD_STATE_DIR": str(tmp_path / "state"),
            "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("command", [["--help"], ["jobs"], ["show"]], ids=["help", "jobs", "show"])
def test_reading_commands_do_not_load_the_model_stack(tmp_path: Path, env: dict[str, str], command: list[str]) -> None:
    records = JobRecords(open_store(f"sqlite:///{tmp_path / 'state' / 'shipyard.db'}"))
    job = records.submit(Task(instruction="a note", repo=str(tmp_path), base="main"))
    if command == ["show"]:
        command = ["show", job.id]
    top, done = _imported(command, env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert ("Usage" if command == ["--help"] else job.id[:8]) in done.stdout, done.stdout
    assert "typer" in top, "the probe saw the command's imports"
    loaded = sorted(set(HEAVY) & top)
    assert loaded == [], f"`shipyard {' '.join(command)}` imported {loaded}"


def test_a_job_process_loads_the_mcp_sdk_only_for_agents_with_servers(env: dict[str, str], tmp_path: Path) -> None:
    # The SDK and its models are about 20 MB and a second of start-up: most jobs configure no server.
    probe = ("import sys, orchestrator.runtime.director, orchestrator.engine.runner\n"
             "from agents.mcp_tools import McpServers\n"
             "with McpServers({}).tools(sandbox=None) as tools:\n"
             "    print(tools, 'mcp' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.split() == ["[]", "False"], done.stdout + done.stderr[-2000:]
