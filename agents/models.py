"""The model layer: one OpenAI-compatible chat client per role, and what the calls cost.

Built on langchain-openai's ChatOpenAI and the openai SDK under it. The SDK already
retries 429, 408/409, 5xx, timeouts and connection errors with exponential backoff and
honours Retry-After, so this module only configures it, turns what still fails into a
one-line ModelError, and books every call's tokens, cost and latency in a UsageLedger.

What real servers send is made usable in two places, one on each side of langchain: the
raw answer in agents.model_wire (the HTTP client ChatOpenAI sends through), the parsed
message in agents.model_replies (reasoning, tool calls written as text, ids).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import openai
from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from agents.model_errors import (
    BASE_URL_HINT,
    ModelAnswerError,
    ModelAuthError,
    ModelStopped,
    model_error,
    one_line,
)
from agents.model_replies import REASONING_KEY, tidy_reply
from agents.model_wire import NormalisingHttpClient
from agents.pricing import cost, price_for
from agents.specs import OPENAI_BASE_URL, ROLES, ModelSpec, Role
from agents.tokens import count_messages, count_text
from agents.usage import Usage, UsageLedger

__all__ = ["OPENAI_BASE_URL", "ROLES", "ModelClient", "ModelSpec", "Role", "api_key", "warm_up"]

# Seconds between looks at whether a call in flight is to be given up.
STOP_POLL = 0.1

# Sent with every call: real endpoints ignore it; the scripted model matches on it.
ROLE_HEADER = "X-Shipyard-Role"

# Local servers (Ollama, vLLM, llama.cpp, LM Studio) often need no key, but the SDK
# insists on one.
NO_KEY = "no-key"


def api_key(spec: ModelSpec, role: str) -> str:
    """The key the role's endpoint gets ("" for a local server that needs none); ModelAuthError when OpenAI
    itself would be asked without one."""
    key = os.environ.get(spec.api_key_env, "").strip()
    if not key and spec.base_url is None:
        raise ModelAuthError(f"no API key for the {role} model {spec.model}: ${spec.api_key_env} is not set "
                             "(or give the role a base_url of its own in shipyard.toml)")
    return key


class ModelClient:
    """The chat model of one role (optionally one agent), booking its calls in a ledger."""

    def __init__(self, spec: ModelSpec, role: Role, ledger: UsageLedger | None = None, agent: str | None = None):
        self.spec = spec
        self.role = role
        self.agent = agent
        self.ledger = ledger if ledger is not None else UsageLedger()
        self.base_url = spec.base_url or OPENAI_BASE_URL
        self._stopped = threading.Event()
        key = api_key(spec, role)
        self._key_set = bool(key)
        self.chat = ChatOpenAI(
            model=spec.model,
            # Explicit, so that OPENAI_BASE_URL / OPENAI_API_BASE in the environment
            # cannot silently send a role somewhere its spec does not say.
            base_url=self.base_url,
            api_key=SecretStr(key or NO_KEY),
            temperature=spec.temperature,
            max_completion_tokens=spec.max_tokens,
            timeout=spec.timeout,
            max_retries=spec.max_retries,
            streaming=spec.stream,
            stream_usage=True,
            # The chat completions API is what every OpenAI-compatible server speaks.
            use_responses_api=False,
            default_headers={ROLE_HEADER: role},
            http_client=_http_client(),
        )

    @property
    def where(self) -> str:
        """The role, model and endpoint, as every error message of this client starts."""
        return f"the {self.role} model {self.spec.model!r} at {self.base_url}"

    def invoke(
        self, messages: Sequence[BaseMessage], tools: Sequence[dict | BaseTool | type] | None = None
    ) -> AIMessage:
        """One chat completion; tool calls come back parsed in `AIMessage.tool_calls`."""
        schemas = [convert_to_openai_tool(t) for t in tools or []]
        model = self.chat.bind_tools(schemas) if schemas else self.chat
        started = time.monotonic()
        try:
            reply = self._until_stopped(lambda: model.invoke(list(messages)))
        except (openai.OpenAIError, ContextOverflowError) as exc:
            raise model_error(
                exc,
                where=self.where,
                base_url=self.base_url,
                key_env=self.spec.api_key_env,
                key_set=self._key_set,
                timeout=self.spec.timeout,
                max_retries=self.spec.max_retries,
            ) from exc
        except (ValueError, TypeError, LookupError, AttributeError) as exc:
            # agents.model_wire turns every known deviation into something langchain reads or into
            # a clear error; this is for the ones nobody has met yet.
            raise ModelAnswerError(
                f"{self.where} sent a chat completion that cannot be read ({type(exc).__name__}: "
                f"{one_line(str(exc), 160)}): {BASE_URL_HINT}; if it is right, report this with the server's name"
            ) from exc
        reply = tidy_reply(reply, [s["function"]["name"] for s in schemas], messages)
        self._book(reply, messages, schemas, time.monotonic() - started)
        return reply

    def stop(self) -> None:
        """Give up the call in flight at once, and refuse further calls (the job stopped)."""
        self._stopped.set()

    def _until_stopped(self, call: Callable[[], Any]) -> Any:
        """`call()` on a thread of its own, given up as soon as `stop()` is called: an HTTP request cannot
        be interrupted in the thread waiting on it, and a cancelled job must not wait out a slow model. A
        given-up call ends on its own within its timeout; its answer is dropped."""
        if self._stopped.is_set():
            raise ModelStopped(f"{self.where}: not asked, the job stopped")
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append((True, call()))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
                outcome.append((False, exc))

        worker = threading.Thread(target=run, name=f"model-{self.agent or self.role}", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(STOP_POLL)
            if self._stopped.is_set() and not outcome:
                raise ModelStopped(f"{self.where}: the call was given up, the job stopped")
        ok, value = outcome[0]
        if ok:
            return value
        raise value

    def _book(
        self, reply: AIMessage, messages: Sequence[BaseMessage], schemas: list[dict[str, Any]], latency: float
    ) -> None:
        usage = reply.usage_metadata or {}
        input_tokens = usage.get("input_tokens") or 0
        output_tokens = usage.get("output_tokens") or 0
        # A prompt is never 0 tokens: 0 means the endpoint reported nothing (no usage at all, or
        # zeros, as some servers send for streams), and budgets would stop applying.
        estimated = not input_tokens
        if estimated:
            input_tokens = count_messages(messages) + (count_text(json.dumps(schemas)) if schemas else 0)
            if not output_tokens:
                reasoning = reply.additional_kwargs.get(REASONING_KEY, "")
                output_tokens = count_messages([reply]) + count_text(reasoning)
        cached = min((usage.get("input_token_details") or {}).get("cache_read") or 0, input_tokens)
        override = self.spec.price_override
        self.ledger.record(
            Usage(
                role=self.role,
                model=self.spec.model,
                agent=self.agent,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=cached,
                cost=cost(self.spec.model, input_tokens, output_tokens, override, cached),
                priced=price_for(self.spec.model, override) is not None,
                estimated=estimated,
                latency=latency,
            )
        )


def warm_up(specs: Sequence[ModelSpec] = ()) -> None:
    """Build what the first model call of a process would otherwise build on its way: the shared HTTP pool, and
    what langchain sets up once per endpoint (an SSL context: ~20 ms) for each of `specs`. Called on a thread while
    a job prepares. Not the token tables (60 MB): only a request that may not fit its window, or a reply without
    usage, needs them, and most never do. Needs no API key: nothing is sent."""
    _http_client()
    endpoints = list({(spec.base_url, spec.timeout): spec for spec in specs}.values()) or [ModelSpec(model="warm-up")]
    for spec in endpoints:
        # Its URL stated, a client asks for no key.
        ModelClient(spec.model_copy(update={"base_url": spec.base_url or OPENAI_BASE_URL}), "planner")


@cache
def _http_client() -> NormalisingHttpClient:
    # One pool for every client in the process, as langchain shares its default one: the SDK
    # passes each role's timeout with each request.
    return NormalisingHttpClient()
