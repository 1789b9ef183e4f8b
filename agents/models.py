"""The model layer: one OpenAI-compatible chat client per role, and what the calls cost.

Built on langchain-openai's ChatOpenAI and the openai SDK under it. The SDK already
retries 429, 408/409, 5xx, timeouts and connection errors with exponential backoff and
honours Retry-After, so this module only configures it, turns what still fails into a
one-line ModelError, and books every call's tokens, cost and latency in a UsageLedger.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal, get_args

import openai
from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import BaseTool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from agents.pricing import Price, cost, price_for

Role = Literal["planner", "coder", "test_fixer", "reviewer"]
ROLES: tuple[Role, ...] = get_args(Role)

OPENAI_BASE_URL = "https://api.openai.com/v1"

# Sent with every call: real endpoints ignore it; the scripted model matches on it.
ROLE_HEADER = "X-Shipyard-Role"

# Local servers (Ollama, vLLM, llama.cpp, LM Studio) often need no key, but the SDK
# insists on one.
NO_KEY = "no-key"

# Seconds before asking again after a malformed answer, doubling on every try.
MALFORMED_BACKOFF = 0.5

# How endpoints word "the prompt does not fit": OpenAI, vLLM, llama.cpp, LiteLLM.
_CONTEXT_ERROR = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|prompt is too long|too many tokens", re.IGNORECASE
)


class ModelError(RuntimeError):
    """A model call failed; the message is one line that says what to do."""


class ModelAuthError(ModelError):
    """The endpoint refused the key (401/403), or there is no key."""


class ModelNotFoundError(ModelError):
    """404: an unknown model name, or a base URL that is not an OpenAI-compatible API."""


class ModelContextError(ModelError):
    """The conversation does not fit the model's context window."""


class ModelUnavailableError(ModelError):
    """Rate limits, server errors, timeouts or no connection, still failing after the retries."""


class ModelSpec(BaseModel):
    """Which model serves a role, and how to reach it. The API key itself is never stored."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(None, description=f"None means OpenAI ({OPENAI_BASE_URL})")
    model: str
    api_key_env: str = Field("OPENAI_API_KEY", description="the NAME of the environment variable holding the key")
    temperature: float | None = None
    max_tokens: int | None = Field(None, gt=0)
    timeout: float = Field(120, gt=0, description="seconds per HTTP attempt")
    max_retries: int = Field(4, ge=0)
    stream: bool = False
    input_price: float | None = Field(None, ge=0, description="USD per million input tokens; overrides the table")
    output_price: float | None = Field(None, ge=0, description="USD per million output tokens; overrides the table")

    @model_validator(mode="after")
    def _both_prices(self) -> ModelSpec:
        if (self.input_price is None) != (self.output_price is None):
            raise ValueError("give both input_price and output_price, or neither")
        return self

    @property
    def price_override(self) -> Price | None:
        if self.input_price is None or self.output_price is None:
            return None
        return Price(self.input_price, self.output_price)


class Usage(BaseModel):
    """One model call's bill."""

    role: str
    model: str
    agent: str | None = None
    input_tokens: int
    output_tokens: int
    cost: float = Field(description="USD; 0 when the model is unpriced")
    priced: bool
    reported: bool = Field(True, description="False when the endpoint returned no token counts (tokens are then 0)")
    latency: float = Field(description="seconds, retries included")


class UsageTotals(BaseModel):
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency: float = 0.0
    unpriced_calls: int = 0

    def plus(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(**{name: getattr(self, name) + getattr(other, name) for name in UsageTotals.model_fields})

    def minus(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(**{name: getattr(self, name) - getattr(other, name) for name in UsageTotals.model_fields})

    def add(self, usage: Usage) -> None:
        self.calls += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cost += usage.cost
        self.latency += usage.latency
        self.unpriced_calls += not usage.priced


class UsageLedger:
    """Every call of a job, shared by its agents across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Usage] = []

    def record(self, usage: Usage) -> None:
        with self._lock:
            self._records.append(usage)

    @property
    def records(self) -> list[Usage]:
        with self._lock:
            return list(self._records)

    def total(self) -> UsageTotals:
        totals = UsageTotals()
        for usage in self.records:
            totals.add(usage)
        return totals

    def by_role(self) -> dict[str, UsageTotals]:
        return self._grouped(lambda u: u.role)

    def by_model(self) -> dict[str, UsageTotals]:
        return self._grouped(lambda u: u.model)

    def by_agent(self) -> dict[str, UsageTotals]:
        return self._grouped(lambda u: u.agent or u.role)

    def _grouped(self, key: Callable[[Usage], str]) -> dict[str, UsageTotals]:
        groups: dict[str, UsageTotals] = {}
        for usage in self.records:
            groups.setdefault(key(usage), UsageTotals()).add(usage)
        return groups


class ModelClient:
    """The chat model of one role (optionally one agent), booking its calls in a ledger."""

    def __init__(self, spec: ModelSpec, role: Role, ledger: UsageLedger | None = None, agent: str | None = None):
        self.spec = spec
        self.role = role
        self.agent = agent
        self.ledger = ledger if ledger is not None else UsageLedger()
        self.base_url = spec.base_url or OPENAI_BASE_URL
        key = os.environ.get(spec.api_key_env, "").strip()
        self._key_set = bool(key)
        if not key and spec.base_url is None:
            raise ModelAuthError(f"no API key for the {role} model {spec.model}: ${spec.api_key_env} is not set")
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
        )

    def invoke(
        self, messages: Sequence[BaseMessage], tools: Sequence[dict | BaseTool | type] | None = None
    ) -> AIMessage:
        """One chat completion; tool calls come back parsed in `AIMessage.tool_calls`."""
        model = self.chat.bind_tools(list(tools)) if tools else self.chat
        started = time.monotonic()
        for attempt in range(self.spec.max_retries + 1):
            try:
                reply = model.invoke(list(messages))
                break
            except (openai.OpenAIError, ContextOverflowError) as exc:
                raise self._error(exc) from exc
            except (ValueError, TypeError, LookupError) as exc:
                # What langchain and the SDK raise on a 200 that is not a chat completion: a body
                # cut short by a server or proxy that died mid-answer (worth another try, as the
                # SDK does not retry it), or a base URL that points at a web page.
                if attempt == self.spec.max_retries:
                    raise ModelError(
                        f"{self._where} answered with something that is not an OpenAI chat completion "
                        f"({type(exc).__name__}: {_one_line(str(exc), 200)}) (max_retries={self.spec.max_retries})"
                    ) from exc
                time.sleep(min(MALFORMED_BACKOFF * 2**attempt, 8.0))
        self._book(reply, time.monotonic() - started)
        return reply

    @property
    def _where(self) -> str:
        return f"the {self.role} model {self.spec.model!r} at {self.base_url}"

    def _book(self, reply: AIMessage, latency: float) -> None:
        usage = reply.usage_metadata
        input_tokens = usage["input_tokens"] if usage else 0
        output_tokens = usage["output_tokens"] if usage else 0
        override = self.spec.price_override
        self.ledger.record(
            Usage(
                role=self.role,
                model=self.spec.model,
                agent=self.agent,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost=cost(self.spec.model, input_tokens, output_tokens, override),
                priced=price_for(self.spec.model, override) is not None,
                reported=usage is not None,
                latency=latency,
            )
        )

    def _error(self, exc: Exception) -> ModelError:
        where = self._where
        retried = f"(max_retries={self.spec.max_retries})"
        if isinstance(exc, openai.APIStatusError):
            status, detail = exc.status_code, _detail(exc)
            if status in (401, 403):
                if not self._key_set:
                    return ModelAuthError(
                        f"{self.base_url} refused the request ({status}): ${self.spec.api_key_env} is not set"
                    )
                return ModelAuthError(
                    f"the key in ${self.spec.api_key_env} was refused by {self.base_url} ({status}: {detail})"
                )
            if status == 404:
                return ModelNotFoundError(f"{where}: not found (404): unknown model name or wrong base URL: {detail}")
            if isinstance(exc, ContextOverflowError) or _is_context_error(exc, detail):
                return ModelContextError(f"{where}: the conversation exceeds the model's context window: {detail}")
            if status in (408, 409, 429) or status >= 500:
                return ModelUnavailableError(f"{where} is unavailable: {status} {detail} {retried}")
            return ModelError(f"{where} rejected the request ({status}): {detail}")
        if isinstance(exc, ContextOverflowError):
            return ModelContextError(
                f"{where}: the conversation exceeds the model's context window: {_one_line(str(exc))}"
            )
        if isinstance(exc, openai.APITimeoutError):
            return ModelUnavailableError(f"{where} did not answer within {self.spec.timeout:g}s {retried}")
        if isinstance(exc, openai.APIConnectionError):
            cause: BaseException = exc
            while cause.__cause__ is not None:  # the socket error says more than "Connection error."
                cause = cause.__cause__
            return ModelUnavailableError(
                f"{where} cannot be reached: {_one_line(str(cause)) or type(cause).__name__} {retried}"
            )
        return ModelError(f"{where}: {_one_line(str(exc))}")


def _detail(exc: openai.APIStatusError) -> str:
    """The endpoint's own error message, rather than the SDK's dump of the whole body."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else body
    return _one_line(message if isinstance(message, str) and message else exc.message)


def _is_context_error(exc: openai.APIStatusError, detail: str) -> bool:
    code = exc.body.get("code") if isinstance(exc.body, dict) else None
    return code == "context_length_exceeded" or (
        exc.status_code in (400, 413, 422) and bool(_CONTEXT_ERROR.search(detail))
    )


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
