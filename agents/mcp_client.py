"""The MCP SDK's side of `agents.mcp_tools`: connect to one server and make agent tools of its listing."""

from __future__ import annotations

import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from anyio.from_thread import BlockingPortal
from mcp import Client
from mcp import types as mcp_types
from pydantic import BaseModel, ConfigDict

from agents.mcp_transport import ProcessTransport
from agents.model_errors import one_line
from agents.specs import McpServerSpec
from agents.tools import Tool, ToolError, ToolLimits, compact_schema
from sandboxes.base import Sandbox

# OpenAI's rule for function names.
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")
MAX_NAME_CHARS = 64
# A tool's description is sent with every request: a server cannot make it long.
MAX_DESCRIPTION_CHARS = 1_000
# Tools offered of one server, and pages of its listing read, at most.
MAX_TOOLS_PER_SERVER = 64
MAX_LISTING_PAGES = 10
# Seconds to wait for a failed server's exit code, to say it.
EXIT_WAIT = 0.5


class McpServerError(RuntimeError):
    """A server could not be started or listed; the message says why, in a line."""


class _Arguments(BaseModel):
    # The server checks arguments against its own schema, and its error is the observation.
    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class McpTool(Tool):
    """A tool of an MCP server: its schema is the server's."""

    input_schema: dict[str, Any] = field(default_factory=dict)

    def parameters(self) -> dict[str, Any]:
        return self.input_schema


def server_tools(portal: BlockingPortal, connections: ExitStack, sandbox: Sandbox, name: str, spec: McpServerSpec,
                 taken: set[str]) -> list[Tool]:
    """Connect to the server (its connection stays open in `connections`) and make tools of its listing."""
    transport: ProcessTransport | None = None
    if spec.command is not None:
        transport = ProcessTransport(sandbox.spawn([spec.command, *spec.args], env=spec.env))
        target: Any = transport.streams()
    else:
        target = spec.url
    client = Client(target, read_timeout_seconds=spec.start_timeout)
    try:
        connections.enter_context(portal.wrap_async_context_manager(client))
        listed = portal.call(_listing, client)
    except Exception as exc:
        if transport is not None:
            transport.process.kill()
        raise McpServerError(_failure(exc, transport)) from None
    server = _Server(portal, client, name, spec, transport)
    tools = []
    for tool in listed[:MAX_TOOLS_PER_SERVER]:
        offered = _NOT_IN_NAME.sub("_", f"{name}__{tool.name}")[:MAX_NAME_CHARS]
        if offered in taken:
            continue
        taken.add(offered)
        description = tool.description or tool.title or tool.name
        tools.append(McpTool(
            name=offered,
            description=_clip(f"{description} (a tool of the MCP server {name})", MAX_DESCRIPTION_CHARS),
            args_model=_Arguments,
            run=partial(server.call, tool.name),
            read_only=False,
            input_schema=compact_schema(tool.input_schema or {"type": "object", "properties": {}}),
        ))
    return tools


async def _listing(client: Client) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor = None
    for _ in range(MAX_LISTING_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None or len(tools) >= MAX_TOOLS_PER_SERVER:
            break
    return tools


@dataclass
class _Server:
    """A connected server, whose tools' calls go through the portal's event loop."""

    portal: BlockingPortal
    client: Client
    name: str
    spec: McpServerSpec
    transport: ProcessTransport | None

    def call(self, tool: str, sandbox: Sandbox, args: BaseModel, limits: ToolLimits) -> str:
        """Run `tool`; ToolError with the reason when the call, or the tool itself, fails."""
        call = partial(self.client.call_tool, tool, args.model_dump(), read_timeout_seconds=self.spec.call_timeout)
        try:
            result = self.portal.call(call)
        except Exception as exc:  # noqa: BLE001 - whatever the SDK or the server does, the model reads a line
            raise ToolError(f"the MCP server {self.name!r} failed on {tool}: {_failure(exc, self.transport)}") from None
        text = _result_text(result)
        if result.is_error:
            raise ToolError(text or f"{tool} reported an error without saying which")
        return text or "(no output)"


def _result_text(result: mcp_types.CallToolResult) -> str:
    """What a tool returned, as text: its text parts, and a line for each part that is not text."""
    parts = []
    for part in result.content:
        match part:
            case mcp_types.TextContent():
                parts.append(part.text)
            case mcp_types.EmbeddedResource(resource=mcp_types.TextResourceContents() as resource):
                parts.append(resource.text)
            case mcp_types.EmbeddedResource(resource=resource):
                parts.append(f"[binary resource {resource.uri} not shown]")
            case mcp_types.ResourceLink():
                parts.append(f"[resource {part.uri}]")
            case _:
                parts.append(f"[{part.type} not shown: only text is]")
    if not parts and result.structured_content is not None:
        parts.append(str(result.structured_content))
    return "\n".join(parts)


def _failure(exc: BaseException, transport: ProcessTransport | None) -> str:
    """Why a server failed, in a line: the error, what the transport saw, the end of the server's stderr."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:  # from the SDK's task groups
        exc = exc.exceptions[0]
    why = one_line(str(exc), 200) or type(exc).__name__
    if transport is not None:
        if transport.problem:
            why += f"; {transport.problem}"
        code = transport.process.wait(EXIT_WAIT)
        if code is not None:
            why += f"; it exited with code {code}"
        errors = [line for line in transport.process.stderr.splitlines() if line.strip()]
        if errors:
            why += f"; its stderr ends: {one_line(errors[-1], 200)}"
    return why


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
