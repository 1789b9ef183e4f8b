"""The MCP stdio transport over the pipes of a process in a sandbox (sandboxes.base.SandboxProcess).

The SDK's stdio_client starts its server as a host process; an agent's servers run in its sandbox
instead, so the same newline-delimited JSON-RPC goes through `Sandbox.spawn`'s pipes. Those block, so
each direction runs on a worker thread, feeding the in-memory streams the SDK's session reads and writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client import Transport
from mcp.shared.message import SessionMessage
from mcp.types import jsonrpc_message_adapter

from sandboxes.base import SandboxError, SandboxProcess

# A message longer than this ends the connection, so that a server cannot make the host hold gigabytes.
MAX_MESSAGE_BYTES = 8 << 20
# Seconds a server has to exit once its stdin is closed, before it is killed.
STOP_GRACE = 2.0

Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]


class ProcessTransport:
    """A server process's pipes as an MCP transport; `problem` says why the connection ended early, if it did."""

    def __init__(self, process: SandboxProcess):
        self.process = process
        self.problem: str | None = None

    def streams(self) -> Transport:
        """The transport to give `mcp.Client`: entering it connects, leaving it stops the process."""
        return self._streams()

    @asynccontextmanager
    async def _streams(self) -> AsyncIterator[Streams]:
        incoming_writer, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        outgoing, outgoing_reader = anyio.create_memory_object_stream[SessionMessage](0)
        process = self.process

        async def receive() -> None:
            buffer = bytearray()
            async with incoming_writer:
                while chunk := await anyio.to_thread.run_sync(process.read, abandon_on_cancel=True):
                    buffer += chunk
                    while (end := buffer.find(b"\n")) >= 0:
                        line = bytes(buffer[:end])
                        del buffer[: end + 1]
                        if line.strip():
                            await incoming_writer.send(_message(line))
                    if len(buffer) > MAX_MESSAGE_BYTES:
                        self.problem = f"it sent a message of more than {MAX_MESSAGE_BYTES >> 20} MB, so it was cut off"
                        return
                self.problem = self.problem or "its output ended"

        async def send() -> None:
            try:
                async with outgoing_reader:
                    async for message in outgoing_reader:
                        data = message.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
                        await anyio.to_thread.run_sync(process.write, data, abandon_on_cancel=True)
            except SandboxError as exc:
                self.problem = self.problem or str(exc)
                await incoming_writer.aclose()  # pending requests fail instead of waiting for answers

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(receive)
            tasks.start_soon(send)
            try:
                yield incoming, outgoing
            finally:
                with anyio.CancelScope(shield=True):
                    process.close_stdin()
                    await anyio.to_thread.run_sync(process.wait, STOP_GRACE)
                    await anyio.to_thread.run_sync(process.kill)
                tasks.cancel_scope.cancel()


def _message(line: bytes) -> SessionMessage | Exception:
    """A line as the session's message, or the error it is (the session reports it and reads on)."""
    try:
        return SessionMessage(jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        return exc
