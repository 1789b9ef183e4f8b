"""How a failed model call is told: ModelError and its kinds, each a line that says what to do."""

from __future__ import annotations

import json
import re

import openai
from langchain_core.exceptions import ContextOverflowError

# Marks an error answer that agents.model_wire made out of an unusable 2xx answer.
MALFORMED_HEADER = "x-shipyard-malformed"

BASE_URL_HINT = "check that base_url is the server's OpenAI-compatible API (it usually ends in /v1)"
LOG_HINT = "look at the model server's log"

# How endpoints word "the prompt does not fit": OpenAI, vLLM, llama.cpp, LiteLLM.
_CONTEXT_ERROR = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|prompt is too long|too many tokens", re.IGNORECASE
)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class ModelError(RuntimeError):
    """A model call failed; the message is one line that says what to do."""


class ModelAuthError(ModelError):
    """The endpoint refused the key (401/403), or there is no key."""


class ModelNotFoundError(ModelError):
    """404: an unknown model name, or a base URL that is not an OpenAI-compatible API."""


class ModelContextError(ModelError):
    """The conversation does not fit the model's context window."""


class ModelStopped(ModelError):
    """The call was given up because the agent's job stopped (cancelled, interrupted) while it waited."""


class ModelUnavailableError(ModelError):
    """Rate limits, server errors, timeouts or no connection, still failing after the retries."""


class ModelAnswerError(ModelError):
    """The endpoint answered, but not with a chat completion that can be used."""


def model_error(
    exc: Exception, *, where: str, base_url: str, key_env: str, key_set: bool, timeout: float, max_retries: int
) -> ModelError:
    """The ModelError for what the SDK or langchain raised; `where` names the role, model and endpoint."""
    retried = f"(max_retries={max_retries})"
    if isinstance(exc, openai.APIStatusError):
        status, detail = exc.status_code, _detail(exc)
        if exc.response.headers.get(MALFORMED_HEADER):
            again = f" {retried}" if exc.response.headers.get("x-should-retry") == "true" else ""
            return ModelAnswerError(f"{where} {detail}{again}")
        if status in (401, 403):
            if not key_set:
                return ModelAuthError(f"{base_url} refused the request ({status}): ${key_env} is not set")
            return ModelAuthError(f"the key in ${key_env} was refused by {base_url} ({status}: {detail})")
        foreign = _is_foreign(exc)
        if status == 404:
            hint = f"; {BASE_URL_HINT}" if foreign else ""
            return ModelNotFoundError(f"{where}: not found (404): unknown model name or wrong base URL: {detail}{hint}")
        if isinstance(exc, ContextOverflowError) or _is_context_error(exc, detail):
            return ModelContextError(f"{where}: the conversation exceeds the model's context window: {detail}")
        if status in (408, 409, 429) or status >= 500:
            hint = f": the model server behind it may be down or still starting; {LOG_HINT}" if foreign else ""
            return ModelUnavailableError(f"{where} is unavailable: {status} {detail}{hint} {retried}")
        return ModelError(f"{where} rejected the request ({status}): {detail}")
    if isinstance(exc, ContextOverflowError):
        return ModelContextError(f"{where}: the conversation exceeds the model's context window: {one_line(str(exc))}")
    if isinstance(exc, openai.APITimeoutError):
        return ModelUnavailableError(f"{where} did not answer within {timeout:g}s {retried}")
    if isinstance(exc, openai.APIConnectionError):
        cause: BaseException = exc
        while cause.__cause__ is not None:  # the socket error says more than "Connection error."
            cause = cause.__cause__
        return ModelUnavailableError(
            f"{where} cannot be reached: {one_line(str(cause)) or type(cause).__name__} {retried}"
        )
    return ModelError(f"{where}: {one_line(str(exc))}")


def describe_body(text: str) -> str:
    """What a body that is not the expected JSON is, in a few words: 'an HTML page titled ...'."""
    stripped = text.strip()
    if not stripped:
        return "an empty body"
    if looks_like_html(stripped):
        title = _TITLE.search(stripped)
        return f"an HTML page titled {one_line(title.group(1), 60)!r}" if title else "an HTML page"
    return f"text {one_line(stripped, 80)!r}"


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in head


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _detail(exc: openai.APIStatusError) -> str:
    """The endpoint's own error message, rather than the SDK's dump of the whole body."""
    body = exc.body
    if isinstance(body, dict) and body:
        message = body.get("message")
        return one_line(message if isinstance(message, str) and message else json.dumps(body), 200)
    if isinstance(body, str) and body.strip():
        origin = " (from a web server or proxy, not the model server)" if looks_like_html(body) else ""
        return describe_body(body) + origin
    return one_line(exc.message)


def _is_foreign(exc: openai.APIStatusError) -> bool:
    """Whether the error body is not an OpenAI error object, i.e. came from something else than the API."""
    return not (isinstance(exc.body, dict) and isinstance(exc.body.get("message"), str))


def _is_context_error(exc: openai.APIStatusError, detail: str) -> bool:
    code = exc.body.get("code") if isinstance(exc.body, dict) else None
    return code == "context_length_exceeded" or (
        exc.status_code in (400, 413, 422) and bool(_CONTEXT_ERROR.search(detail))
    )
