"""Counting tokens without the endpoint's help: for servers that report no usage, and for fitting a
conversation into a context window before it is sent.

The count is OpenAI's o200k encoding (bpe-openai ships its vocabulary, so nothing is downloaded).
Open models tokenize differently, so for them it is an estimate: good to within ten or twenty per
cent on code and English, which is why every budget that relies on it keeps a margin.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

# What a chat message costs beyond its text (role, separators), as OpenAI documents for its models.
MESSAGE_OVERHEAD = 4

# Characters encoded at once: bpe-openai refuses a million characters or 200,000 tokens in one
# call, and a character is at most 4 bytes, so at most 4 tokens. Cutting a text costs at most a
# token per cut.
PIECE_CHARS = 50_000


@lru_cache(maxsize=1)
def _encoding() -> Any:
    # Imported at the first count: importing bpe-openai loads all of its vocabularies (most of a second), and
    # a process whose servers report usage and whose conversations fit never counts.
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def count_text(text: str) -> int:
    """Tokens in `text`."""
    encoding = _encoding()
    pieces = range(0, len(text), PIECE_CHARS)
    return sum(len(encoding.encode(text[i : i + PIECE_CHARS], disallowed_special=())) for i in pieces)


def count_messages(messages: Iterable[Any]) -> int:
    """Tokens of a list of chat messages (langchain messages or OpenAI-style dicts), tool calls included."""
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD + count_text(_message_text(message))
    return total


def most_tokens(messages: Iterable[Any], tools: Iterable[Any] | None = None) -> int:
    """A bound on count_messages(messages) + count_tools(tools) that needs no encoding: every token is at least
    one byte of UTF-8. Most requests are far inside their window, and this tells so at once."""
    total = sum(MESSAGE_OVERHEAD + len(_message_text(message).encode()) for message in messages)
    tools = list(tools or ())
    return total + (len(json.dumps(tools).encode()) if tools else 0)


def count_tools(tools: Iterable[Any] | None) -> int:
    """Tokens of the tool schemas sent with a request (OpenAI function-calling dicts)."""
    tools = list(tools or ())
    return count_text(json.dumps(tools)) if tools else 0


def _message_text(message: Any) -> str:
    if isinstance(message, dict):
        parts = [content_text(message.get("content"))]
        for call in message.get("tool_calls") or []:
            function = call.get("function", call)
            parts += [str(function.get("name", "")), str(function.get("arguments", function.get("args", "")))]
        return "\n".join(parts)
    parts = [content_text(getattr(message, "content", ""))]
    for call in getattr(message, "tool_calls", None) or []:
        parts += [str(call.get("name", "")), str(call.get("args", ""))]
    return "\n".join(parts)


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return "" if content is None else str(content)
