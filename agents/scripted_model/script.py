"""The script a scripted model replays: its format, and which entry answers a request.

A script is a list of responses. Each request is answered by the FIRST entry not yet
used whose `match` fits it; the entry is then used up, unless it says `repeat: true`.
Matching on the agent's role lets parallel agents interleave deterministically: each
role consumes its own entries in order, whatever the arrival order across roles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.validation import problems


class ScriptError(ValueError):
    """A script that cannot be read or does not follow the format."""


class ChatRequest(BaseModel):
    """What matching looks at in one chat completion request."""

    role: str | None = None
    model: str | None = None
    messages: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def last_message(self) -> dict[str, Any]:
        return self.messages[-1] if self.messages else {}


def message_text(message: dict[str, Any]) -> str:
    """The searchable text of a chat message: its content and any tool calls it makes."""
    content = message.get("content")
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
    else:
        parts = [content if isinstance(content, str) else ""]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        parts.append(f"{function.get('name', '')} {function.get('arguments', '')}")
    return "\n".join(p for p in parts if p)


class Match(BaseModel):
    """Conditions a request must all meet; an empty match fits every request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str | None = None  # the X-Shipyard-Role header
    model: str | None = None  # the request's model name, exactly
    last_role: Literal["system", "developer", "user", "assistant", "tool"] | None = None
    last_message_contains: str | None = None
    any_message_contains: str | None = None

    def fits(self, request: ChatRequest) -> bool:
        last = request.last_message
        return (
            (self.role is None or self.role == request.role)
            and (self.model is None or self.model == request.model)
            and (self.last_role is None or self.last_role == last.get("role"))
            and (self.last_message_contains is None or self.last_message_contains in message_text(last))
            and (
                self.any_message_contains is None
                or any(self.any_message_contains in message_text(m) for m in request.messages)
            )
        )

    def describe(self) -> str:
        conditions = ", ".join(f"{k}={v!r}" for k, v in self.model_dump(exclude_none=True).items())
        return conditions or "any request"


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    # A dict is JSON-encoded by the server; a string is sent as is, e.g. to inject malformed JSON.
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = Field(None, description="default: call_<entry>_<times served>_<position>")

    def encoded_arguments(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


class TokenUsage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cached_tokens: int | None = Field(
        None, ge=0, description="of prompt_tokens, read from the prompt cache: sent in prompt_tokens_details"
    )


class Quirks(BaseModel):
    """How real servers depart from OpenAI's format, to reproduce on purpose."""

    model_config = ConfigDict(extra="forbid")

    arguments_as_object: bool = Field(False, description="function.arguments as a JSON object, not a string")
    omit_tool_call_ids: bool = Field(False, description="tool calls without an id")
    omit_tool_call_index: bool = Field(False, description="streamed tool-call deltas without an index")
    omit_usage: bool = Field(False, description="no usage at all, in a completion or a stream")
    truncate: int | None = Field(
        None, ge=0, description="send only this many bytes of the answer (a server or proxy dying mid-answer)"
    )


class Endpoint(BaseModel):
    """The server the scripted model poses as, for what clients ask besides chat completions."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["openai", "vllm", "llama.cpp", "ollama"] = "openai"
    models: list[str] | None = Field(None, description="what /v1/models lists; default: the models matched on")
    context_window: int | None = Field(
        None,
        gt=0,
        description="reported as the server kind does: vllm in /v1/models, llama.cpp in /props, "
        "ollama in /api/show; openai never reports it",
    )


class Entry(BaseModel):
    """One scripted response: an assistant message, an HTTP error, or a raw body."""

    model_config = ConfigDict(extra="forbid")

    match: Match = Match()
    content: str | None = None
    reasoning_content: str | None = Field(None, description="sent in a reasoning_content field, as vLLM does")
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = Field(None, description="default: tool_calls if there are any, else stop")
    usage: TokenUsage | None = Field(None, description="default: about a token per 4 characters")
    status: int = Field(200, ge=200, le=599)
    message: str | None = Field(None, description="the error message of an error entry")
    code: str | None = Field(None, description="the error code, e.g. context_length_exceeded")
    retry_after: float | None = Field(None, ge=0, description="seconds, sent as Retry-After and retry-after-ms")
    body: Any = Field(None, description="sent verbatim instead of a generated body (a string is sent raw)")
    content_type: str = Field("application/json", description="the media type of a raw body")
    quirks: Quirks = Quirks()
    latency: float | None = Field(None, ge=0, description="seconds before answering; default: the script's")
    repeat: bool = False
    redeliver: bool = Field(
        False, description="if the client goes away before the answer (killed mid-request), serve it again"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `- "some text"` is an entry that answers anything with that text.
        return {"content": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_kind(self) -> Entry:
        has_message = self.content is not None or self.reasoning_content is not None or bool(self.tool_calls)
        if self.is_error and has_message:
            raise ValueError("an error entry (status >= 400) cannot also have content or tool_calls")
        if self.body is not None and has_message:
            raise ValueError("an entry with a raw body cannot also have content or tool_calls")
        if not (has_message or self.is_error or self.body is not None):
            raise ValueError("an entry needs content, tool_calls, an error status or a body")
        return self

    @property
    def is_error(self) -> bool:
        return self.status >= 400

    def describe(self) -> str:
        if self.is_error:
            what = f"error {self.status}"
        elif self.body is not None:
            what = "raw body"
        elif self.tool_calls:
            what = "tool calls " + ", ".join(c.name for c in self.tool_calls)
        else:
            what = f"content {_clip(self.content or '', 40)!r}"
        return f"[{self.match.describe()}] -> {what}{' (repeat)' if self.repeat else ''}"


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency: float = Field(0.0, ge=0, description="default seconds before each response")
    server: Endpoint = Endpoint()
    context_window: int | None = Field(
        None, gt=0, description="tokens; a longer request (messages, tools, max tokens) gets a 400 as from OpenAI"
    )
    responses: list[Entry] = Field(default_factory=list)

    @classmethod
    def load(cls, source: Script | Path | str | list[Any] | dict[str, Any]) -> Script:
        """A script from a YAML or JSON file (a path), or from the same data in Python.

        A bare list is taken as the `responses`.
        """
        if isinstance(source, Script):
            return source
        where = "script"
        if isinstance(source, (str, Path)):
            where = str(source)
            try:
                source = yaml.safe_load(Path(source).read_text(encoding="utf-8"))  # JSON is YAML too
            except (OSError, yaml.YAMLError) as exc:
                raise ScriptError(f"{where}: cannot read the script: {exc}") from None
        if isinstance(source, list):
            source = {"responses": source}
        try:
            return cls.model_validate(source)
        except ValidationError as exc:
            found = problems(exc, "script")
            raise ScriptError(f"{where}: not a valid script: {found}") from None


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_request(request: ChatRequest) -> str:
    """One line saying who asked what, for error messages about unmatched requests."""
    last = request.last_message
    return (
        f"role={request.role!r} model={request.model!r} "
        f"last message ({last.get('role', 'none')}): {_clip(message_text(last), 160)!r}"
    )
