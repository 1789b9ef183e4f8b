"""An MCP server for the tests, on the SDK's MCPServer (FastMCP before mcp 2): run inside a sandbox, it
reports what it can see there."""

from __future__ import annotations

import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("probe")


@server.tool()
def word_count(path: str) -> str:
    """Count the words of a file of the workspace."""
    return f"{path}: {len(Path(path).read_text().split())} words"


@server.tool()
def environment(name: str) -> str:
    """The value of an environment variable, or <unset>."""
    return os.environ.get(name, "<unset>")


@server.tool()
def read_path(path: str) -> str:
    """The text of any file, or why it cannot be read."""
    try:
        return Path(path).read_text()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"


@server.tool()
def shout(text: str, times: int) -> str:
    """The text in capitals, `times` times over."""
    return text.upper() * times


@server.tool()
def broken() -> str:
    """Always fails."""
    raise RuntimeError("the probe is broken on purpose")


@server.tool()
def crash() -> str:
    """Ends the server at once, without an answer."""
    os._exit(3)


if __name__ == "__main__":
    server.run()
