"""A job's agents get the MCP servers configured for their roles: the coder calls a server's tool, and a
server that does not start is a notice on each agent that would have had it, whose work goes on."""

from __future__ import annotations

from pathlib import Path

from corekit import MakeDirector
from helpers import approve, call, coder, make_repo, plan_entry, subtask
from mcpkit import host_server

from agents.mcp_tools import McpServerSpec
from orchestrator.config.settings import McpSettings
from orchestrator.store.events import AgentToolResult, Notice
from orchestrator.store.jobs import JobStatus, Task


def test_the_coder_calls_a_tool_of_its_server_and_a_broken_server_is_a_notice(
        tmp_path: Path, make_director: MakeDirector, mcp_sdk: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "four words in here\n"})
    broken = McpServerSpec(command="python3", args=["-c", "import sys; sys.exit('bad config')"],
                           roles=["coder", "reviewer"])
    servers = McpSettings(servers={"probe": host_server(mcp_sdk), "broken": broken})
    director, _ = make_director([
        plan_entry(subtask("s1", "count")),
        coder("s1", call("probe__word_count", path="a.txt"), call("create_file", path="n.txt", content="4\n"),
              call("submit", summary="counted")),
        approve("s1"),
    ], mcp=servers)

    job = director.run(director.submit(Task(instruction="count the words", repo=str(repo))).id)

    assert job.status == JobStatus.UNVERIFIED, job.error  # the repo has no tests
    events = director.events(job.id)
    (counted,) = [e for e in events if isinstance(e, AgentToolResult) and e.tool == "probe__word_count"]
    assert counted.ok and counted.output == "a.txt: 4 words" and counted.agent == "s1.coder.1"
    notices = {e.agent: e.text for e in events if isinstance(e, Notice) and "MCP server" in e.text}
    assert set(notices) == {"s1.coder.1", "s1.reviewer.1"}  # the planner has no MCP servers
    assert all("'broken' did not start" in text and "bad config" in text for text in notices.values())
