"""What is left to fix in a model's answer once langchain has parsed it, whatever server sent it.

- Reasoning (`<think>...</think>` leading the content, or only `...</think>` when the chat template
  opened the block in the prompt; agents.model_wire puts `reasoning_content` fields in that form
  too) leaves the content, which goes back into the history, and is kept for the logs in
  `additional_kwargs[REASONING_KEY]`.
- Tool calls written in the text (agents.text_tool_calls) become tool calls, when the answer has
  no native ones; `additional_kwargs[TEXT_TOOL_CALLS_KEY]` says in which syntax.
- Every tool call gets an id unique in the conversation: servers omit them, or number every
  answer's calls from call_0 again, and tool results are matched to calls by id.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from langchain_core.messages import AIMessage, BaseMessage

from agents.model_wire import THINK_CLOSE, THINK_OPEN
from agents.text_tool_calls import parse_text_tool_calls

REASONING_KEY = "reasoning_content"
TEXT_TOOL_CALLS_KEY = "tool_calls_from_text"


def tidy_reply(reply: AIMessage, offered: Collection[str], history: Sequence[BaseMessage]) -> AIMessage:
    """`reply` with reasoning out of its content, text tool calls parsed, and unique tool-call ids."""
    content = reply.content
    extra = dict(reply.additional_kwargs)
    calls, invalid = list(reply.tool_calls), list(reply.invalid_tool_calls)
    if isinstance(content, str):
        reasoning, content = split_reasoning(content)
        if reasoning:
            extra[REASONING_KEY] = reasoning
        written = None if calls or invalid else parse_text_tool_calls(content, offered)
        if written is not None:
            content, calls, invalid = written.content, written.tool_calls, written.invalid_tool_calls
            extra[TEXT_TOOL_CALLS_KEY] = written.syntax
    taken = {c["id"] for m in history if isinstance(m, AIMessage) for c in [*m.tool_calls, *m.invalid_tool_calls]}
    return AIMessage(
        content=content,
        additional_kwargs=extra,
        response_metadata=reply.response_metadata,
        tool_calls=[{**c, "id": _unique(c.get("id"), taken)} for c in calls],
        invalid_tool_calls=[{**c, "id": _unique(c.get("id"), taken)} for c in invalid],
        usage_metadata=reply.usage_metadata,
        id=reply.id,
        name=reply.name,
    )


def split_reasoning(text: str) -> tuple[str, str]:
    """(reasoning, answer) of a content that may start with a reasoning block; ("", text) if it does not."""
    start, end = text.find(THINK_OPEN), text.find(THINK_CLOSE)
    if end != -1 and (start == -1 or start > end):  # opened by the chat template, in the prompt
        return text[:end].strip(), text[end + len(THINK_CLOSE) :].strip()
    if start == -1 or text[:start].strip():
        return "", text
    if end == -1:  # stopped while still reasoning
        return text[start + len(THINK_OPEN) :].strip(), ""
    return text[start + len(THINK_OPEN) : end].strip(), text[end + len(THINK_CLOSE) :].strip()


def _unique(call_id: str | None, taken: set[str | None]) -> str:
    if not call_id or call_id in taken:
        # Nine letters and digits: the one id form every template accepts (Mistral's demands it).
        call_id = uuid.uuid4().hex[:9]
    taken.add(call_id)
    return call_id
