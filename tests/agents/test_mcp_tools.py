"""MCP servers' tools for agents: a server written for the test (tests/mcp_server, on the SDK's MCPServer)
runs inside a bubblewrap or a docker sandbox; an agent calls its tools through the loop and a scripted
model over HTTP; what they return is bounded; the server sees none of the host's secrets; a server that
fails, at the start or mid-run, costs the agent a line, never its run."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcpkit import host_server, install_server

from agents.loop import AgentLimits, run_agent
from agents.mcp_tools import McpServers, McpServerSpec
from agents.mcp_transport import MAX_MESSAGE_BYTES
from agents.models import ModelClient, ModelSpec
from agents.tools import ToolLimits, Toolset
from sandboxes.base import Sandbox, SandboxSpec
from sandboxes.bubblewrap import BubblewrapBackend
from sandboxes.docker_backend import DockerBackend
from sandboxes.image_build import DEFAULT_TAG
from sandboxes.local import LocalBackend

SECRET = "sk-host-secret-never-in-a-sandbox"


@pytest.fixture(params=[pytest.param("bubblewrap", marks=pytest.mark.bubblewrap),
                        pytest.param("docker", marks=pytest.mark.docker)])
def sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    backend = BubblewrapBackend() if request.param == "bubblewrap" else DockerBackend()
    if request.param == "bubblewrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    found = backend.availability(DEFAULT_TAG)
    if not found.ok:
        pytest.skip(f"{request.param} does not work here: {found.detail}")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    with backend.start(SandboxSpec(workspace=workspace)) as box:
        yield box


class Results:
    """The tool results of an agent's run, by tool."""

    def __init__(self) -> None:
        self.by_tool: dict[str, Any] = {}

    def message(self, step: int, reply: Any, usage: Any) -> None:
        pass

    def tool_result(self, step: int, observation: Any, arguments: Any) -> None:
        self.by_tool[observation.name] = observation

    def condensed(self, step: int, condensation: Any) -> None:
        pass

    def finished(self, outcome: Any) -> None:
        pass


def test_an_agent_calls_the_tools_of_a_server_in_its_sandbox(
        sandbox: Sandbox, tmp_path: Path, mcp_sdk: Path, scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    secret_file = tmp_path / "host-only.txt"  # beside the workspace, not in it
    secret_file.write_text(SECRET)
    workspace = sandbox.spec.workspace
    (workspace / "notes.txt").write_text("three short words")
    spec = install_server(mcp_sdk, workspace)
    calls = [("word_count", {"path": "notes.txt"}), ("environment", {"name": "OPENAI_API_KEY"}),
             ("read_path", {"path": str(secret_file)}), ("shout", {"text": "ab", "times": 50_000}), ("broken", {})]
    server = scripted([
        {"match": {"role": "coder"}, "tool_calls": [{"name": f"probe__{n}", "arguments": a} for n, a in calls]},
        {"match": {"role": "coder"}, "tool_calls": [{"name": "submit", "arguments": {"summary": "probed"}}]},
    ])
    model = ModelClient(ModelSpec(base_url=server.base_url, model="scripted", max_retries=0), role="coder")
    results, notices = Results(), []

    with McpServers({"probe": spec}, notices.append).tools(sandbox) as tools:
        toolset = Toolset(sandbox, ["view_file", "submit"], extra=tools)
        outcome = run_agent(model, toolset, "You are a coder.", "Probe the sandbox.", AgentLimits(), results)

    assert outcome.submitted, outcome.reason
    assert notices == []
    offered = [t["function"]["name"] for t in server.requests[0].body["tools"]]
    assert offered[:2] == ["view_file", "submit"] and {f"probe__{n}" for n, _ in calls} <= set(offered)
    seen = results.by_tool
    assert seen["probe__word_count"].ok and seen["probe__word_count"].text == "notes.txt: 3 words"
    assert seen["probe__environment"].text == "<unset>"
    assert seen["probe__read_path"].text.startswith(f"cannot read {secret_file}")
    assert all(SECRET not in o.text for o in seen.values())
    shout = seen["probe__shout"]
    assert shout.ok and shout.truncated and len(shout.text) < ToolLimits().max_output_chars + 100
    assert not seen["probe__broken"].ok and "broken" in seen["probe__broken"].text


def _local(workspace: Path) -> Sandbox:
    workspace.mkdir(exist_ok=True)
    return LocalBackend().start(SandboxSpec(workspace=workspace))


def test_a_server_that_does_not_start_is_a_line_and_the_agent_goes_on_without_it(tmp_path: Path,
                                                                                  mcp_sdk: Path) -> None:
    failing = McpServerSpec(command="python3", args=["-c", "import sys; sys.exit('no config for the server')"])
    missing = McpServerSpec(command="no-such-mcp-server")
    notices: list[str] = []
    servers = McpServers({"failing": failing, "missing": missing, "probe": host_server(mcp_sdk)}, notices.append)
    with _local(tmp_path / "ws") as box, servers.tools(box) as tools:
        names = [tool.name for tool in tools]
    assert names and all(name.startswith("probe__") for name in names)
    failed, absent = notices
    assert failed.startswith("MCP server 'failing' did not start") and "no config for the server" in failed
    assert absent.startswith("MCP server 'missing' did not start") and "no-such-mcp-server" in absent
    assert all("\n" not in line for line in notices)


def test_a_server_sending_an_endless_message_is_cut_off(tmp_path: Path) -> None:
    flood = "import sys, time; sys.stdout.write('x' * (9 << 20)); sys.stdout.flush(); time.sleep(600)"
    notices: list[str] = []
    with _local(tmp_path / "ws") as box, McpServers(
            {"flood": McpServerSpec(command="python3", args=["-c", flood])}, notices.append).tools(box) as tools:
        assert tools == []
    (line,) = notices
    assert f"it sent a message of more than {MAX_MESSAGE_BYTES >> 20} MB, so it was cut off" in line


def test_a_server_that_dies_mid_run_fails_its_calls_as_observations(tmp_path: Path, mcp_sdk: Path) -> None:
    with _local(tmp_path / "ws") as box, McpServers({"probe": host_server(mcp_sdk)}).tools(box) as tools:
        toolset = Toolset(box, [], extra=tools)
        crashed = toolset.call("probe__crash", {})
        after = toolset.call("probe__environment", {"name": "HOME"})
    assert not crashed.ok and "the MCP server 'probe' failed on crash" in crashed.text
    assert not after.ok and "the MCP server 'probe' failed on environment" in after.text


@pytest.fixture
def http_server() -> Iterator[str]:
    """An MCP server over streamable HTTP on 127.0.0.1, in this process."""
    app = MCPServer("web")

    @app.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    server = uvicorn.Server(uvicorn.Config(app.streamable_http_app(), host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the MCP HTTP server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(10)


def test_a_streamable_http_server_is_reached_from_the_host(tmp_path: Path, http_server: str) -> None:
    with _local(tmp_path / "ws") as box, McpServers({"web": McpServerSpec(url=http_server)}).tools(box) as tools:
        observation = Toolset(box, [], extra=tools).call("web__add", {"a": 2, "b": 3})
    assert observation.ok and observation.text == "5"
