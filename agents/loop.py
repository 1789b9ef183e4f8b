"""The one agent loop every role shares: ask the model, run its tool calls, repeat, within limits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field

from agents.context import Condensation, ContextWindow
from agents.models import ModelError, UsageLedger, UsageTotals
from agents.tools import Toolset

# Called for every step so the orchestrator can log it; agents know nothing about jobs.
EmitFn = Callable[[str, dict[str, Any]], None]

# A model that answers in prose instead of calling tools is reminded this many times
# in a row before the run is given up.
MAX_NUDGES = 3
NUDGE = "Continue with a tool call. When the work is done, call `{finish}` exactly once."


class AgentLimits(BaseModel):
    max_steps: int = Field(60, ge=1)
    max_tokens: int = Field(2_000_000, ge=1)
    max_cost: float | None = Field(None, ge=0, description="USD for this agent")
    max_seconds: float = Field(1800, gt=0)
    job_max_cost: float | None = Field(None, ge=0, description="USD for the whole job, shared by all agents")


class AgentOutcome(BaseModel):
    status: Literal["submitted", "limit", "error"]
    reason: str = Field(description="why the run ended, in a line")
    summary: str = ""
    submission: dict[str, Any] | None = Field(None, description="the arguments of the finishing tool call")
    steps: int = 0
    usage: UsageTotals = Field(default_factory=UsageTotals)
    seconds: float = 0.0

    @property
    def submitted(self) -> bool:
        return self.status == "submitted"


class ChatModel(Protocol):
    """The seam to the model layer (agents.models.ModelClient in production)."""

    agent: str | None
    ledger: UsageLedger

    def invoke(self, messages: list[BaseMessage], tools: list[dict[str, Any]] | None = None) -> AIMessage: ...


def run_agent(
    model: ChatModel,
    toolset: Toolset,
    system: str,
    task: str,
    limits: AgentLimits,
    emit: EmitFn | None = None,
    finish_tool: str = "submit",
    context: ContextWindow | None = None,
) -> AgentOutcome:
    """Run until the model calls `finish_tool`, a limit is hit, or the model fails for good.

    With a `context` window, each request is fitted into it first (old observations elided,
    history condensed), and the fitted conversation becomes the history."""
    emit = emit or (lambda kind, payload: None)
    messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(task)]
    started = time.monotonic()
    steps = nudges = 0

    def outcome(status: Literal["submitted", "limit", "error"], reason: str, **extra: Any) -> AgentOutcome:
        result = AgentOutcome(
            status=status,
            reason=reason,
            steps=steps,
            usage=_agent_usage(model),
            seconds=round(time.monotonic() - started, 3),
            **extra,
        )
        emit("agent.finished", result.model_dump(exclude={"usage"}) | {"usage": result.usage.model_dump()})
        return result

    def condensed(condensation: Condensation) -> None:
        emit("agent.condensed", {"step": steps, **condensation.model_dump()})

    while True:
        exceeded = _limit_hit(model, limits, steps, time.monotonic() - started)
        if exceeded:
            return outcome("limit", exceeded, summary=_last_text(messages))
        steps += 1
        try:
            if context is None:
                reply = model.invoke(messages, tools=toolset.schemas())
            else:
                reply, messages = context.invoke(model, messages, toolset.schemas(), condensed)
        except ModelError as exc:
            return outcome("error", str(exc), summary=_last_text(messages))
        messages.append(reply)
        emit("agent.message", {"step": steps, "content": _text(reply), "tool_calls": _calls_for_log(reply)})

        calls = [(c["name"], c["args"], c["id"]) for c in reply.tool_calls]
        calls += [(c.get("name") or "", c.get("args"), c.get("id")) for c in reply.invalid_tool_calls]
        if not calls:
            nudges += 1
            if nudges > MAX_NUDGES:
                return outcome("error", f"the model stopped calling tools ({MAX_NUDGES} reminders)", summary=_text(reply))
            messages.append(HumanMessage(NUDGE.format(finish=finish_tool)))
            continue
        nudges = 0
        for index, (name, args, call_id) in enumerate(calls):
            observation = toolset.call(name, args)
            emit(
                "agent.tool_result",
                {"step": steps, "tool": name, "arguments": args, "ok": observation.ok, "output": observation.text},
            )
            messages.append(
                ToolMessage(
                    observation.text,
                    tool_call_id=call_id or f"call_{steps}_{index}",
                    status="success" if observation.ok else "error",
                )
            )
            if observation.done and name == finish_tool:
                submission = observation.arguments or {}
                return outcome("submitted", "submitted", summary=str(submission.get("summary", "")), submission=submission)


def _agent_usage(model: ChatModel) -> UsageTotals:
    return model.ledger.by_agent().get(model.agent or "", UsageTotals())


def _limit_hit(model: ChatModel, limits: AgentLimits, steps: int, elapsed: float) -> str | None:
    usage = _agent_usage(model)
    if steps >= limits.max_steps:
        return f"step limit reached ({limits.max_steps} model calls)"
    if usage.input_tokens + usage.output_tokens >= limits.max_tokens:
        return f"token limit reached ({limits.max_tokens} tokens)"
    if limits.max_cost is not None and usage.cost >= limits.max_cost:
        return f"agent budget spent (${usage.cost:.4f} of ${limits.max_cost:.4f})"
    if limits.job_max_cost is not None:
        spent = model.ledger.total().cost
        if spent >= limits.job_max_cost:
            return f"job budget spent (${spent:.4f} of ${limits.job_max_cost:.4f})"
    if elapsed >= limits.max_seconds:
        return f"time limit reached ({limits.max_seconds:.0f} s)"
    return None


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def _last_text(messages: list[BaseMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, AIMessage) and _text(message):
            return _text(message)
    return ""


def _calls_for_log(reply: AIMessage) -> list[dict[str, Any]]:
    valid = [{"name": c["name"], "args": c["args"]} for c in reply.tool_calls]
    invalid = [{"name": c.get("name"), "args": c.get("args"), "error": c.get("error")} for c in reply.invalid_tool_calls]
    return valid + invalid
