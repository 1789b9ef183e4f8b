"""Tools from MCP servers, offered to an agent beside the built-in ones (the official `mcp` SDK).

A stdio server runs INSIDE the agent's sandbox (`Sandbox.spawn`): it gets the sandbox's limits and
network rule, sees the workspace as the agent's commands do, and none of the host's environment or
files. A streamable-HTTP server is reached from the host, outside any sandbox, which is why the
configuration must allow it.

An agent's servers start when it starts and stop when it ends. A server that does not start is
reported in a line and the agent runs without it. Its tools are named `<server>__<tool>`; a call is
run as any tool's: what fails is an observation the model reads (never an exception into the loop),
and what it returns is bounded like every observation (agents.tools.Toolset).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager

from agents.specs import McpServerSpec
from agents.tools import Tool
from sandboxes.base import Sandbox

Report = Callable[[str], None]


class McpServers:
    """The MCP servers of one agent run, and how to say that one could not be used."""

    def __init__(self, servers: Mapping[str, McpServerSpec] | None = None, report: Report | None = None):
        self.servers = dict(servers or {})
        self.report = report or (lambda line: None)

    @contextmanager
    def tools(self, sandbox: Sandbox) -> Iterator[list[Tool]]:
        """The servers started (stdio ones in `sandbox`) and their tools, in the order configured; stopped
        when the block ends."""
        if not self.servers:
            yield []
            return
        # The SDK (and its models) load only for an agent that has servers: most never do.
        from anyio.from_thread import start_blocking_portal

        from agents.mcp_client import server_tools

        with start_blocking_portal() as portal, ExitStack() as connections:
            tools: list[Tool] = []
            for name, spec in self.servers.items():
                try:
                    tools += server_tools(portal, connections, sandbox, name, spec, {t.name for t in tools})
                except Exception as exc:  # noqa: BLE001 - an MCP server is optional: the agent runs without it
                    self.report(f"MCP server {name!r} did not start, so the agent runs without it: {exc}")
            yield tools
