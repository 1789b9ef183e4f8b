"""A chat model in this process that answers from a script, as the scripted server does over HTTP.

The core's own tests (the loop, the roles, the subtask pipeline, the graph) run with it in seconds:
no server, no sockets. The script format, its matching, its bookkeeping and its context window are
the scripted server's (agents.scripted_model), so one script can drive both; what only HTTP can show (quirks,
raw bodies, streaming) is the server's to test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages
from pydantic import BaseModel

from agents.model_errors import ModelContextError, ModelError, ModelUnavailableError
from agents.models import ModelSpec
from agents.pricing import Price, cost
from agents.scripted_model.script import ChatRequest, Script
from agents.scripted_model.server import ScriptedModel, too_long
from agents.tokens import count_messages, count_tools
from agents.usage import Usage, UsageLedger


class Asked(BaseModel):
    """One question a fake model was asked."""

    role: str
    agent: str | None
    messages: list[dict[str, Any]]
    tokens: int = 0  # of the messages and tools, counted as the scripted server counts them
    refused: bool = False  # longer than the script's context_window


class FakeModels:
    """The script every fake agent of one run answers from, and what each was asked. Called with a
    role's model spec, it makes that agent's model, as the engine's model source does for real ones."""

    def __init__(self, source: Script | list[Any] | dict[str, Any]):
        self.script = ScriptedModel(Script.load(source))
        self.asked: list[Asked] = []
        self._lock = threading.Lock()

    def __call__(self, spec: ModelSpec, role: str, ledger: UsageLedger, agent: str | None) -> FakeChatModel:
        return FakeChatModel(self, role, ledger, agent, spec.model, spec.price_override)

    @property
    def pending(self) -> list[int]:
        """Script entries no question has used yet."""
        return self.script.pending

    def ask(self, role: str, agent: str | None, model: str, wire: list[dict[str, Any]], tokens: int) -> Any:
        """The entry that answers (see take), the question recorded; ModelContextError, as from OpenAI, for a
        request of more `tokens` than the script's window."""
        refusal = too_long(self.script.script.context_window, tokens, {})
        taken = None if refusal else self.take(role, agent, model, wire)
        with self._lock:
            self.asked.append(Asked(role=role, agent=agent, messages=wire, tokens=tokens, refused=refusal is not None))
        if refusal is not None:
            raise ModelContextError(f"the fake {role} model answered 400: {refusal}")
        return taken

    def take(self, role: str, agent: str | None, model: str, wire: list[dict[str, Any]]) -> Any:
        """The script's entry for the question, used up (None if no entry matches)."""
        return self.script.take(ChatRequest(role=role, model=model, messages=wire))


class FakeChatModel:
    """One agent's model (agents.loop.ChatModel)."""

    def __init__(self, models: FakeModels, role: str, ledger: UsageLedger | None = None, agent: str | None = None,
                 model: str = "fake", price: Price | None = None):
        self.models = models
        self.price = price
        self.role = role
        self.agent = agent
        self.model = model
        self.ledger = ledger if ledger is not None else UsageLedger()

    def invoke(self, messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]] | None = None) -> AIMessage:
        wire = convert_to_openai_messages(list(messages))
        prompt = count_messages(wire) + count_tools(tools)
        taken = self.models.ask(self.role, self.agent, self.model, wire, prompt)
        if taken is None:
            raise ModelError(f"the fake {self.role} model has no scripted answer for: {_last(wire)}")
        index, entry, nth = taken
        if entry.is_error:
            kind = ModelContextError if entry.code == "context_length_exceeded" else ModelUnavailableError
            raise kind(f"the fake {self.role} model answered {entry.status}: {entry.message or 'scripted error'}")
        calls, invalid = [], []
        for n, call in enumerate(entry.tool_calls):
            call_id = call.id or f"call_{index}_{nth}_{n}"
            try:
                args = call.arguments if isinstance(call.arguments, dict) else json.loads(call.arguments)
            except json.JSONDecodeError as exc:
                # As langchain reports arguments an endpoint sent as broken JSON.
                invalid.append({"name": call.name, "args": call.arguments, "id": call_id, "error": str(exc),
                                "type": "invalid_tool_call"})
                continue
            calls.append({"name": call.name, "args": args, "id": call_id, "type": "tool_call"})
        reply = AIMessage(content=entry.content or "", tool_calls=calls, invalid_tool_calls=invalid)
        answer = count_messages([reply])
        self.ledger.record(Usage(role=self.role, model=self.model, agent=self.agent, input_tokens=prompt,
                                 output_tokens=answer, cost=cost(self.model, prompt, answer, self.price),
                                 priced=self.price is not None, estimated=True, latency=0.0))
        return reply


def _last(wire: list[dict[str, Any]]) -> str:
    text = str(wire[-1].get("content", "")) if wire else ""
    return " ".join(text.split())[:200]
