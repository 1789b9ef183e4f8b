"""Scripted entries rendered as OpenAI chat completion bodies: whole, or as stream chunks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from agents.scripted_model.script import ChatRequest, Entry, message_text

# Characters per streamed delta: small enough that words and JSON arguments are split
# across chunks, as real endpoints do, so clients must reassemble them.
CHUNK_CHARS = 16

ERROR_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Bad request (scripted).", None),
    401: ("invalid_request_error", "Incorrect API key provided (scripted).", "invalid_api_key"),
    403: ("invalid_request_error", "You are not allowed to use this model (scripted).", None),
    404: (
        "invalid_request_error",
        "The model `{model}` does not exist or you do not have access to it.",
        "model_not_found",
    ),
    429: ("requests", "Rate limit reached (scripted).", "rate_limit_exceeded"),
    500: ("server_error", "The server had an error while processing your request (scripted).", None),
}


def estimate_tokens(text: str) -> int:
    """About one token per four characters: deterministic, and close enough for budgets."""
    return (len(text) + 3) // 4


class Reply:
    """An assistant-message entry made concrete for one request."""

    def __init__(self, entry: Entry, request: ChatRequest, tools: Any, seq: int, index: int, nth: int):
        self.entry = entry
        self.quirks = entry.quirks
        self.model = request.model or "scripted"
        self.id = f"chatcmpl-scripted-{seq}"
        self.created = int(time.time())
        self.tool_calls: list[dict[str, Any]] = [
            {
                "id": call.id or f"call_{index}_{nth}_{position}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.encoded_arguments()},
            }
            for position, call in enumerate(entry.tool_calls)
        ]
        self.finish_reason = entry.finish_reason or ("tool_calls" if self.tool_calls else "stop")
        if entry.usage is not None:
            prompt, completion = entry.usage.prompt_tokens, entry.usage.completion_tokens
        else:
            prompt_text = "\n".join(message_text(m) for m in request.messages)
            if tools:
                prompt_text += json.dumps(tools)
            completion_text = (
                (entry.reasoning_content or "")
                + (entry.content or "")
                + "".join(c["function"]["name"] + c["function"]["arguments"] for c in self.tool_calls)
            )
            prompt, completion = estimate_tokens(prompt_text), estimate_tokens(completion_text)
        self.usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if entry.usage is not None and entry.usage.cached_tokens is not None:
            self.usage["prompt_tokens_details"] = {"cached_tokens": entry.usage.cached_tokens}

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.entry.content, "refusal": None}
        if self.entry.reasoning_content is not None:
            message["reasoning_content"] = self.entry.reasoning_content
        if self.tool_calls:
            message["tool_calls"] = [self._wire_call(call) for call in self.tool_calls]
        body = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason, "logprobs": None}],
            "usage": self.usage,
        }
        if self.quirks.omit_usage:
            del body["usage"]
        return body

    def chunks(self, include_usage: bool) -> Iterator[dict[str, Any]]:
        """The chat.completion.chunk objects of a stream, in order."""
        include_usage = include_usage and not self.quirks.omit_usage
        yield self._chunk({"role": "assistant", "content": ""}, include_usage)
        for field in ("reasoning_content", "content"):
            text = getattr(self.entry, field) or ""
            for start in range(0, len(text), CHUNK_CHARS):
                yield self._chunk({field: text[start : start + CHUNK_CHARS]}, include_usage)
        for position, call in enumerate(self.tool_calls):
            wire = self._wire_call(call)
            arguments = wire["function"]["arguments"]
            if not isinstance(arguments, str):  # an object cannot be sent in pieces
                yield self._chunk({"tool_calls": [self._delta(position, wire)]}, include_usage)
                continue
            head = {**wire, "function": {"name": call["function"]["name"], "arguments": ""}}
            yield self._chunk({"tool_calls": [self._delta(position, head)]}, include_usage)
            for start in range(0, len(arguments), CHUNK_CHARS):
                piece = {"function": {"arguments": arguments[start : start + CHUNK_CHARS]}}
                yield self._chunk({"tool_calls": [self._delta(position, piece)]}, include_usage)
        yield self._chunk({}, include_usage, finish_reason=self.finish_reason)
        if include_usage:
            # As OpenAI does: a last chunk with no choices that carries the usage.
            yield {**self._envelope(), "choices": [], "usage": self.usage}

    def _wire_call(self, call: dict[str, Any]) -> dict[str, Any]:
        """A tool call as the quirks of the entry send it."""
        wire = {**call, "function": dict(call["function"])}
        if self.quirks.omit_tool_call_ids:
            del wire["id"]
        if self.quirks.arguments_as_object:
            try:
                wire["function"]["arguments"] = json.loads(wire["function"]["arguments"])
            except ValueError:
                pass  # malformed on purpose: it stays the string it is
        return wire

    def _delta(self, position: int, call: dict[str, Any]) -> dict[str, Any]:
        return call if self.quirks.omit_tool_call_index else {"index": position, **call}

    def _envelope(self) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}

    def _chunk(self, delta: dict[str, Any], include_usage: bool, finish_reason: str | None = None) -> dict[str, Any]:
        chunk = {
            **self._envelope(),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        if include_usage:
            chunk["usage"] = None
        return chunk


def error_body(status: int, message: str | None, code: str | None, model: str | None) -> dict[str, Any]:
    kind, default, default_code = ERROR_DEFAULTS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", f"Scripted error {status}.", None)
    )
    return {
        "error": {
            "message": message or default.format(model=model),
            "type": kind,
            "param": None,
            "code": code or default_code,
        }
    }
