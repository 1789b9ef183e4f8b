"""The one agent loop every role shares: ask the model, run its tool calls, repeat, within limits."""

from __future__ import annotations

import time
from typing import Any, Literal, Protocol

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field

from agents.context import Condensation, ContextWindow
from agents.model_errors import ModelError
from agents.tools import ToolObservation, Toolset
from agents.usage import UsageLedger, UsageTotals
from sandboxes.base import cap_output

# A model that answers in prose instead of calling tools is reminded this many times
# in a row before the run is given up.
MAX_NUDGES = 3
# The most of an answer's prose that is kept; tool call arguments are the tools' to bound.
MAX_REPLY_CHARS = 20_000
NUDGE = "Continue with a tool call. When the work is done, call `{finish}` exactly once."


class AgentLimits(BaseModel):
    max_steps: int = Field(60, ge=1)
    max_tokens: int = Field(2_000_000, ge=1)
    max_cost: float | None = Field(None, ge=0, description="USD for this agent")
    max_seconds: float = Field(1800, gt=0)


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


class AgentObserver(Protocol):
    """Told of every step, so that the orchestrator can log it; agents know nothing about jobs.
    It may raise to stop the agent (e.g. when the job is cancelled)."""

    def message(self, step: int, reply: AIMessage, usage: UsageTotals) -> None:
        """A model call answered; `usage` is that call's."""

    def tool_result(self, step: int, observation: ToolObservation, arguments: Any) -> None: ...

    def condensed(self, step: int, condensation: Condensation) -> None:
        """The history was shortened to fit the model's window."""

    def finished(self, outcome: AgentOutcome) -> None: ...


class Budget(Protocol):
    """What the agent's calls share with others (a job's budget)."""

    def exhausted(self) -> str | None:
        """Why no further model call may be made, or None."""


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
    observer: AgentObserver | None = None,
    finish_tool: str = "submit",
    budget: Budget | None = None,
    context: ContextWindow | None = None,
) -> AgentOutcome:
    """Run until the model calls `finish_tool`, a limit is hit, or the model fails for good.

    With a `context` window, each request is fitted into it first (old observations elided,
    history condensed), and the fitted conversation becomes the history."""
    observer = observer if observer is not None else _Unobserved()  # an empty list-like observer is still one
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
        observer.finished(result)
        return result

    def condensed(condensation: Condensation) -> None:
        observer.condensed(steps, condensation)

    while True:
        exceeded = _limit_hit(model, limits, steps, time.monotonic() - started) or (budget and budget.exhausted())
        if exceeded:
            return outcome("limit", exceeded, summary=_last_text(messages))
        steps += 1
        before = _agent_usage(model)
        try:
            if context is None:
                reply = model.invoke(messages, tools=toolset.schemas())
            else:
                reply, messages = context.invoke(model, messages, toolset.schemas(), condensed)
        except ModelError as exc:
            return outcome("error", str(exc), summary=_last_text(messages))
        reply = _bounded(reply)
        messages.append(reply)
        observer.message(steps, reply, _agent_usage(model).minus(before))

        calls = [(c["name"], c["args"], c["id"]) for c in reply.tool_calls]
        calls += [(c.get("name") or "", c.get("args"), c.get("id")) for c in reply.invalid_tool_calls]
        if not calls:
            nudges += 1
            if nudges > MAX_NUDGES:
                return outcome("error", f"the model stopped calling tools ({MAX_NUDGES} reminders)",
                               summary=text_of(reply))
            messages.append(HumanMessage(NUDGE.format(finish=finish_tool)))
            continue
        nudges = 0
        for index, (name, args, call_id) in enumerate(calls):
            observation = toolset.call(name, args)
            observer.tool_result(steps, observation, args)
            messages.append(
                ToolMessage(
                    observation.text,
                    tool_call_id=call_id or f"call_{steps}_{index}",
                    status="success" if observation.ok else "error",
                )
            )
            if observation.done and name == finish_tool:
                submission = observation.arguments or {}
                return outcome("submitted", "submitted", summary=str(submission.get("summary", "")),
                               submission=submission)


def _agent_usage(model: ChatModel) -> UsageTotals:
    return model.ledger.by_agent().get(model.agent or "", UsageTotals())


def _bounded(reply: AIMessage) -> AIMessage:
    """The answer with its prose cut to MAX_REPLY_CHARS (head and tail): a runaway model's megabytes
    would otherwise be kept, logged and sent back with every later request."""
    text = text_of(reply)
    if len(text) <= MAX_REPLY_CHARS:
        return reply
    return reply.model_copy(update={"content": cap_output(text, MAX_REPLY_CHARS)[0]})


def _limit_hit(model: ChatModel, limits: AgentLimits, steps: int, elapsed: float) -> str | None:
    usage = _agent_usage(model)
    if steps >= limits.max_steps:
        return f"step limit reached ({limits.max_steps} model calls)"
    if usage.input_tokens + usage.output_tokens >= limits.max_tokens:
        return f"token limit reached ({limits.max_tokens} tokens)"
    if limits.max_cost is not None and usage.cost >= limits.max_cost:
        return f"agent budget spent (${usage.cost:.4f} of ${limits.max_cost:.4f})"
    if elapsed >= limits.max_seconds:
        return f"time limit reached ({limits.max_seconds:.0f} s)"
    return None


def text_of(message: BaseMessage) -> str:
    """A message's text, whether its content is a string or a list of parts."""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def _last_text(messages: list[BaseMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, AIMessage) and text_of(message):
            return text_of(message)
    return ""


def calls_of(reply: AIMessage) -> list[dict[str, Any]]:
    """The tool calls of an answer, valid or not, as plain data for a log."""
    valid = [{"name": c["name"], "args": c["args"]} for c in reply.tool_calls]
    invalid = [{"name": c.get("name"), "args": c.get("args"), "error": c.get("error")}
               for c in reply.invalid_tool_calls]
    return valid + invalid


class _Unobserved:
    def message(self, step: int, reply: AIMessage, usage: UsageTotals) -> None:
        pass

    def tool_result(self, step: int, observation: ToolObservation, arguments: Any) -> None:
        pass

    def condensed(self, step: int, condensation: Condensation) -> None:
        pass

    def finished(self, outcome: AgentOutcome) -> None:
        pass
