"""What OpenAI-compatible servers really send, made into what the openai SDK and langchain expect.

Local servers (vLLM, Ollama, llama.cpp, LM Studio) and the proxies in front of them drift from
OpenAI's format in ways that make the SDK or langchain fail deep inside (an IndexError, a pydantic
dump) or silently drop a tool call. The raw answer is only at hand in the HTTP client the SDK
sends through, so that is where it is fixed: ChatOpenAI takes `NormalisingHttpClient` as its
`http_client`. A chat completion that comes back 2xx is read whole (a stream too: the caller
wants the finished message anyway, and the read timeout still applies chunk by chunk), checked,
and rewritten before the SDK parses it:

- `arguments` sent as a JSON object are encoded as the string OpenAI sends;
- stream deltas without their tool call's `index` get one (langchain drops them otherwise);
- reasoning sent in a `reasoning_content` or `reasoning` field (which langchain drops) is put
  in front of the content as <think>...</think>, the form other servers leave in the content
  itself, so that one later step (agents.model_replies) takes both out of the content;
- an `error` object sent with status 200 becomes an error answer with the error's own status;
- anything else that is not a usable chat completion (an HTML page, a body or stream cut short,
  no choices) becomes a 502 answer made here, marked with MALFORMED_HEADER, whose message says
  in a line what the endpoint sent and what to check.

Error answers, made here or not, then go through the SDK's retry loop (backoff, Retry-After);
the `x-should-retry` header, which the SDK obeys, says whether another try could help (a body
cut short: yes; a web page instead of an API: no). Everything else passes through untouched.
"""

from __future__ import annotations

import json
from typing import Any

import openai

from agents.model_errors import BASE_URL_HINT, LOG_HINT, MALFORMED_HEADER, describe_body, one_line

# The fields vLLM, llama.cpp and DeepSeek (reasoning_content) or Ollama (reasoning) put reasoning in.
REASONING_FIELDS = ("reasoning_content", "reasoning")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

_DROPPED_HEADERS = ("content-length", "content-encoding", "transfer-encoding", "content-type")


class Malformed(Exception):
    """An answer that is not a usable chat completion; `message` starts with what the endpoint sent."""

    def __init__(self, message: str, retry: bool):
        super().__init__(message)
        self.message = message
        self.retry = retry


class ErrorIn200(Exception):
    """An `error` object sent with a success status."""

    def __init__(self, error: Any):
        super().__init__(str(error))
        self.error = error if isinstance(error, dict) else {"message": str(error)}
        code = self.error.get("code")
        self.status = code if isinstance(code, int) and 400 <= code <= 599 else 400


class NormalisingHttpClient(openai.DefaultHttpxClient):
    """The SDK's default HTTP client (proxies from the environment included), normalising chat completions."""

    def send(self, request: Any, **kwargs: Any) -> Any:
        response = super().send(request, **kwargs)
        if request.method != "POST" or not request.url.path.endswith("/chat/completions") or not response.is_success:
            return response
        try:
            raw = response.read()
        finally:
            response.close()
        try:
            if _asks_for_stream(request):
                return _answer(response, 200, normalise_stream(raw).encode(), "text/event-stream")
            return _answer(response, 200, json.dumps(normalise_completion(raw)).encode(), "application/json")
        except ErrorIn200 as exc:
            return _answer(response, exc.status, json.dumps({"error": exc.error}).encode(), "application/json")
        except Malformed as exc:
            body = {"error": {"message": exc.message, "type": "malformed_answer", "code": None}}
            headers = {MALFORMED_HEADER: "1", "x-should-retry": "true" if exc.retry else "false"}
            return _answer(response, 502, json.dumps(body).encode(), "application/json", headers)


def normalise_completion(raw: bytes) -> dict[str, Any]:
    """A whole chat completion, fixed where it can be; Malformed or ErrorIn200 where it cannot."""
    data = _json_body(raw)
    choices = data.get("choices")
    if not isinstance(choices, list):
        keys = ", ".join(sorted(data)[:6]) or "none"
        raise Malformed(f"sent JSON that is not a chat completion (no 'choices'; keys: {keys}): {BASE_URL_HINT}", False)
    if not choices:
        raise Malformed(f"sent a chat completion with no choices (the server made no answer): {LOG_HINT}", True)
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise Malformed(f"sent a chat completion whose choice has no message: {LOG_HINT}", True)
        reasoning = _pop_reasoning(message)
        if reasoning:
            message["content"] = f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{message.get('content') or ''}"
        for call in message.get("tool_calls") or []:
            _encode_arguments(call)
    return data


def normalise_stream(raw: bytes) -> str:
    """A whole event stream of chunks, fixed where it can be, as the event stream text to parse."""
    text = raw.decode("utf-8", "replace")
    events = _sse_data(text)
    if not events:
        # A server that ignored `stream` and sent a whole body, or an error, or a web page.
        _json_body(raw)
        raise Malformed("answered a streaming request with a plain JSON body: set stream = false for this model", False)
    fixer = _StreamFixer()
    chunks: list[dict[str, Any]] = []
    done = False
    for number, event in enumerate(events, 1):
        if event.strip() == "[DONE]":
            done = True
            break
        try:
            chunk = json.loads(event)
        except ValueError:
            raise Malformed(
                f"sent an event stream cut short or garbled (event {number} is not JSON: {one_line(event, 80)!r}): "
                f"{LOG_HINT}",
                True,
            ) from None
        if not isinstance(chunk, dict):
            raise Malformed(f"sent a stream event that is not a chunk object: {one_line(event, 80)!r}", True)
        if "error" in chunk and not chunk.get("choices"):
            raise ErrorIn200(chunk["error"])
        chunks.append(fixer.fix(chunk))
    if not fixer.saw_choice:
        raise Malformed(f"sent an event stream with no choices in it (the server made no answer): {LOG_HINT}", True)
    if not (done or fixer.saw_finish):
        raise Malformed(
            f"sent an event stream cut short (it ended after {len(chunks)} chunks, without a finish_reason or "
            f"[DONE]): {LOG_HINT}",
            True,
        )
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"


class _StreamFixer:
    """Fixes chunks in order: what a delta lacks depends on the deltas before it."""

    def __init__(self) -> None:
        self.saw_choice = self.saw_finish = False
        self._thinking = False
        self._last_call = -1

    def fix(self, chunk: dict[str, Any]) -> dict[str, Any]:
        for choice in chunk.get("choices") or []:
            self.saw_choice = True
            self.saw_finish |= bool(choice.get("finish_reason"))
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._fold_reasoning(delta)
                for call in delta.get("tool_calls") or []:
                    self._index(call)
                    _encode_arguments(call)
        return chunk

    def _fold_reasoning(self, delta: dict[str, Any]) -> None:
        reasoning, content = _pop_reasoning(delta), delta.get("content") or ""
        text = ""
        if reasoning:
            text = reasoning if self._thinking else THINK_OPEN + reasoning
            self._thinking = True
        if content and self._thinking:
            text += THINK_CLOSE
            self._thinking = False
        if text:
            delta["content"] = text + content

    def _index(self, call: dict[str, Any]) -> None:
        # Without an index, a delta with an id starts the next call; one without continues the last.
        if isinstance(call.get("index"), int):
            self._last_call = call["index"]
            return
        if call.get("id") or self._last_call < 0:
            self._last_call += 1
        call["index"] = self._last_call


def _json_body(raw: bytes) -> dict[str, Any]:
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        stripped = text.strip()
        if stripped.startswith(("{", "[")):
            raise Malformed(
                f"sent a JSON body cut short after {len(raw)} bytes (the server or a proxy stopped mid-answer): "
                f"{LOG_HINT}",
                True,
            ) from None
        if not stripped:
            raise Malformed(f"sent an empty body: {LOG_HINT}", True) from None
        raise Malformed(f"sent {describe_body(text)} instead of a chat completion: {BASE_URL_HINT}", False) from None
    if not isinstance(data, dict):
        raise Malformed(f"sent JSON that is not a chat completion ({type(data).__name__}): {BASE_URL_HINT}", False)
    if data.get("error") and not data.get("choices"):
        raise ErrorIn200(data["error"])
    return data


def _pop_reasoning(message: dict[str, Any]) -> str:
    texts = [message.pop(field, None) for field in REASONING_FIELDS]
    return "".join(t for t in texts if isinstance(t, str))


def _encode_arguments(call: Any) -> None:
    function = call.get("function") if isinstance(call, dict) else None
    if isinstance(function, dict) and isinstance(function.get("arguments"), (dict, list)):
        function["arguments"] = json.dumps(function["arguments"])


def _asks_for_stream(request: Any) -> bool:
    try:
        return bool(json.loads(request.content).get("stream"))
    except (ValueError, AttributeError):
        return False


def _sse_data(text: str) -> list[str]:
    """The data of each server-sent event; an event's data lines are joined by newlines."""
    events: list[str] = []
    lines: list[str] = []
    for line in text.splitlines() + [""]:
        if not line.strip():
            if lines:
                events.append("\n".join(lines))
                lines = []
        elif line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
    return events


def _answer(original: Any, status: int, content: bytes, content_type: str, extra: dict[str, str] | None = None) -> Any:
    headers = {k: v for k, v in original.headers.items() if k.lower() not in _DROPPED_HEADERS}
    headers.update({"content-type": content_type, **(extra or {})})
    return type(original)(status, headers=headers, content=content, request=original.request)
