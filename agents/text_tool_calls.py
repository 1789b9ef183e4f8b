"""Tool calls a model wrote in its text, for servers that do not parse them out.

vLLM without --enable-auto-tool-choice, llama.cpp without --jinja, some Ollama templates and
LM Studio pass the model's own tool-call syntax through as content. Recognised, and only when
they name a tool that was offered (so that JSON the model writes as its answer stays an answer):

- Hermes / Qwen: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, a block per call
  (the closing tag may be missing when the answer stopped at a stop token);
- Llama 3.1+: `<|python_tag|>{"name": ..., "parameters": {...}}`, calls separated by `;`;
- Mistral: `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`;
- the whole content being one such object or a list of them, also inside a ```json fence.

The text around the calls stays content. A `<tool_call>` block naming an offered tool whose JSON
is broken becomes an invalid tool call, so that the agent is told rather than ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any, NamedTuple

from langchain_core.messages import InvalidToolCall, ToolCall
from langchain_core.messages.tool import invalid_tool_call, tool_call

_HERMES = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_HERMES_NAME = re.compile(r'"name"\s*:\s*"([^"]+)"')
# The marker, then the calls, then an end-of-message token the server did not strip.
_PREFIXED = {"<|python_tag|>": re.compile(r"<\|(?:eom_id|eot_id|eom|end_of_text)\|>\s*\Z"), "[TOOL_CALLS]": None}
_FENCE = re.compile(r"\A```(?:json)?\s*(.*?)\s*```\Z", re.DOTALL)
_CALL_KEYS = {"name", "arguments", "parameters", "type", "id", "function"}
_SEPARATORS = " \t\r\n;,"


class TextToolCalls(NamedTuple):
    content: str
    tool_calls: list[ToolCall]
    invalid_tool_calls: list[InvalidToolCall]
    syntax: str  # how they were written: "<tool_call>", "<|python_tag|>", "[TOOL_CALLS]" or "JSON"


def parse_text_tool_calls(text: str, offered: Collection[str]) -> TextToolCalls | None:
    """The tool calls written in `text` for tools in `offered`, or None when it holds none."""
    if not offered:
        return None
    if "<tool_call>" in text:
        return _hermes(text, offered)
    for marker, end in _PREFIXED.items():
        before, found, calls_text = text.partition(marker)
        if found:
            calls = _calls(_json_values(end.sub("", calls_text) if end else calls_text), offered)
            return TextToolCalls(before.strip(), calls, [], marker) if calls else None
    stripped = text.strip()
    fence = _FENCE.match(stripped)
    calls = _calls(_json_values(fence.group(1) if fence else stripped), offered)
    return TextToolCalls("", calls, [], "JSON") if calls else None


def _hermes(text: str, offered: Collection[str]) -> TextToolCalls | None:
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    kept: list[str] = []
    position = 0
    for block in _HERMES.finditer(text):
        inner = block.group(1).strip()
        values = _json_values(inner)
        parsed = _calls(values, offered)
        name = _HERMES_NAME.search(inner)
        if parsed:
            calls += parsed
        elif values is None and name and name.group(1) in offered:
            invalid.append(
                invalid_tool_call(name=name.group(1), args=inner, id=None, error="the tool call is not valid JSON")
            )
        else:
            continue  # not a call of an offered tool: it stays in the text
        kept.append(text[position : block.start()])
        position = block.end()
    if not (calls or invalid):
        return None
    kept.append(text[position:])
    return TextToolCalls("".join(kept).strip(), calls, invalid, "<tool_call>")


def _json_values(text: str) -> list[Any] | None:
    """The JSON values `text` is made of (lists flattened), separated by whitespace, ';' or ','; None if
    anything else is in it."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = 0
    while True:
        while position < len(text) and text[position] in _SEPARATORS:
            position += 1
        if position == len(text):
            return values or None
        try:
            value, position = decoder.raw_decode(text, position)
        except ValueError:
            return None
        values += value if isinstance(value, list) else [value]


def _calls(values: list[Any] | None, offered: Collection[str]) -> list[ToolCall]:
    """Tool calls when every value is a call of an offered tool, else none: half a match is no match."""
    calls = [_call(value, offered) for value in values or []]
    return [c for c in calls if c is not None] if calls and None not in calls else []


def _call(value: Any, offered: Collection[str]) -> ToolCall | None:
    if not isinstance(value, dict) or not set(value) <= _CALL_KEYS:
        return None
    if isinstance(value.get("function"), dict):  # {"type": "function", "function": {"name": ..., ...}}
        return _call(value["function"], offered)
    name = value.get("name")
    if not isinstance(name, str) or name not in offered:
        return None
    args = value.get("arguments", value.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return None
    return tool_call(name=name, args=args, id=None) if isinstance(args, dict) else None
