"""Context windows asked of the server, and `shipyard models check`, against scripted endpoints over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agents.context_window import ContextWindow, context_window, context_window_info
from agents.model_check import check_model
from agents.models import ModelSpec
from agents.scripted_model import ScriptedModelServer

ROOT = Path(__file__).resolve().parents[2]
NATIVE_CALL = {"tool_calls": [{"name": "report_ready", "arguments": {"ready": True}}], "repeat": True}


def _dead_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.mark.parametrize(
    ("kind", "source"),
    [("vllm", "vLLM /v1/models"), ("llama.cpp", "llama.cpp /props"), ("ollama", "Ollama /api/show")],
)
def test_the_context_window_is_asked_of_the_server(kind, source):
    script = {"server": {"kind": kind, "context_window": 32768, "models": ["qwen2.5-coder:32b"]}, "responses": []}
    with ScriptedModelServer(script) as server:
        spec = ModelSpec(base_url=server.base_url, model="qwen2.5-coder:32b")
        assert context_window_info(spec) == ContextWindow(32768, source)
    assert context_window(spec) == 32768  # remembered: the server is gone


def test_a_configured_context_window_wins_and_servers_that_say_nothing_give_none(scripted):
    server = scripted({"server": {"kind": "openai", "context_window": 32768}, "responses": []})

    assert context_window(ModelSpec(base_url=server.base_url, model="gpt-oss")) is None
    assert context_window(ModelSpec(base_url=_dead_url(), model="gpt-oss")) is None
    configured = ModelSpec(base_url=_dead_url(), model="gpt-oss", context_window=8192)
    assert context_window_info(configured) == ContextWindow(8192, "configured")
    # OpenAI itself is never asked: its models' published windows are known, a snapshot's by its family.
    assert context_window_info(ModelSpec(model="gpt-4.1")) == ContextWindow(1_047_576, "OpenAI's model list")
    assert context_window(ModelSpec(model="gpt-4o-mini-2024-07-18")) == 128_000
    assert context_window(ModelSpec(model="my-finetune")) is None


def test_check_a_model_with_native_tool_calls():
    script = {"server": {"kind": "vllm", "context_window": 32768, "models": ["qwen"]}, "responses": [NATIVE_CALL]}
    with ScriptedModelServer(script) as server:
        result = check_model(ModelSpec(base_url=server.base_url, model="qwen"), "coder")

    assert result.ok, result.line()
    assert result.line() == f"coder: qwen at {server.base_url} — reachable, tools native, context 32768"
    (probe,) = server.requests
    assert [t["function"]["name"] for t in probe.body["tools"]] == ["report_ready"]


def test_check_a_model_that_calls_tools_only_in_its_text():
    script = {
        "server": {"kind": "ollama", "context_window": 32768},
        "responses": [{"content": '<tool_call>{"name": "report_ready", "arguments": {"ready": true}}</tool_call>'}],
    }
    with ScriptedModelServer(script) as server:
        result = check_model(ModelSpec(base_url=server.base_url, model="qwen2.5-coder:32b"), "coder")

    assert result.ok and result.tools == "<tool_call>"
    assert result.line().startswith(
        f"coder: qwen2.5-coder:32b at {server.base_url} — reachable, tools via text (<tool_call>), "
        "not listed in /v1/models, context 32768 (Ollama"
    )


def test_check_an_unreachable_endpoint():
    url = _dead_url()

    result = check_model(ModelSpec(base_url=url, model="llama3"), "planner")

    assert not result.ok
    assert result.line().startswith(f"planner: llama3 at {url} — will not work: cannot be reached: ")
    assert "Connection refused" in result.line() and "\n" not in result.line()


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"content": "I am ready."}, "it answered 'I am ready.' instead of calling the offered tool: the agents need"),
        (
            {"status": 400, "message": "registry.ollama.ai/library/gemma:2b does not support tools"},
            "rejected the request (400): registry.ollama.ai/library/gemma:2b does not support tools",
        ),
    ],
    ids=["answers-in-prose", "refuses-tools"],
)
def test_check_a_model_without_tool_calling(scripted, entry, said):
    server = scripted([entry])

    result = check_model(ModelSpec(base_url=server.base_url, model="gemma:2b"), "reviewer")

    assert not result.ok
    assert result.line().startswith(f"reviewer: gemma:2b at {server.base_url} — will not work: ")
    assert said in result.line()


def _shipyard(args: list[str], models: dict, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "COLUMNS": "300",
        "SHIPYARD_MODELS": json.dumps(models),
    }
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "models", "check", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_models_check_prints_a_line_per_role_and_fails_if_one_cannot_work(tmp_path):
    script = {"server": {"kind": "llama.cpp", "context_window": 16384}, "responses": [NATIVE_CALL]}
    prose = {"responses": [{"content": "I am ready.", "repeat": True}]}
    with ScriptedModelServer(script) as server, ScriptedModelServer(prose) as no_tools:
        good = {"base_url": server.base_url, "model": "scripted"}
        models = {"default": good, "coder": {"base_url": _dead_url(), "model": "llama3", "max_retries": 0},
                  "reviewer": {"base_url": no_tools.base_url, "model": "gemma:2b"}}

        every = _shipyard([], models, tmp_path)
        planner = _shipyard(["--role", "planner"], models, tmp_path)
        unknown = _shipyard(["--role", "architect"], models, tmp_path)

    assert every.returncode == 1, every.stderr
    lines = every.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["planner", "coder", "test_fixer", "reviewer"]
    assert lines[0] == f"planner: scripted at {server.base_url} — reachable, tools native, context 16384"
    assert lines[1].startswith("coder: llama3 at http://127.0.0.1:") and "will not work: cannot be reached" in lines[1]
    prose_said = "will not work: reachable, but it answered 'I am ready.'"
    assert lines[3].startswith(f"reviewer: gemma:2b at {no_tools.base_url} — {prose_said}")
    assert (planner.returncode, planner.stdout.splitlines()) == (0, lines[:1])
    assert unknown.returncode == 2 and "'architect' is not a role" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
