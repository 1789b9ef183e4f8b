"""Keeping an agent's conversation inside its model's context window, with room for the answer.

Before each request the conversation is measured (agents.tokens) and, only when it does not
fit, shrunk by the cheapest measure that is enough:

1. Elide old observations: every tool result but the latest `keep_observations` (and never
   those of the latest step, which the model has not seen yet) becomes one line saying what
   was elided and how to see it again. They go in one batch rather than one a step, so that
   the conversation then grows for a while with its beginning unchanged, which keeps the
   endpoint's prompt cache valid. If that is not enough, fewer are kept, down to none.
2. Condense: a model summarizes the middle of the conversation (files read and changed, what
   was tried, what failed, what remains) and the summary replaces it. The system prompt, the
   task (the first human message) and the latest steps stay as they are.

What is sent is what is kept: the caller replaces its history with the result, so later
requests build on the condensed conversation. Messages are removed only in whole steps (an
assistant message with its tool results), so every tool result still follows the assistant
message that called it, as OpenAI-compatible servers require.

For most models the count is an estimate; an endpoint that refuses a request as too long
anyway gets one retry, condensed to the window it states (believed from then on) or else to
half of what it refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, Literal, Protocol

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field

from agents.model_errors import ModelContextError
from agents.prompts import render
from agents.specs import DEFAULT_ANSWER_ROOM, ContextOptions
from agents.tokens import content_text, count_messages, count_text, count_tools, most_tokens

# Mark what this module put into a conversation; langchain does not send either field.
SUMMARY_ID = "shipyard-context-summary"
ELIDED = "shipyard_elided"

# How endpoints state their window when they refuse a request: OpenAI, vLLM and LiteLLM
# ("maximum context length is 8192 tokens"), llama.cpp ("available context size (8192 tokens)").
_STATED_WINDOW = re.compile(r"maximum context length is (\d+)|context size \((\d+) tokens\)", re.IGNORECASE)


# Characters shown to the summarizer of each step in its transcript, tried in turn until the
# transcript fits its request (None: all of them).
TRANSCRIPT_ENTRY_CHARS = (None, 4000, 2000, 1000, 500, 250)


class Summarizer(Protocol):
    """The model that writes summaries: the agent's own, or a cheaper one."""

    def invoke(self, messages: list[BaseMessage]) -> AIMessage: ...


class ToolChat(Protocol):
    """The agent's model (agents.loop.ChatModel, agents.models.ModelClient)."""

    def invoke(self, messages: list[BaseMessage], tools: list[dict[str, Any]] | None = None) -> AIMessage: ...


class ContextOverflow(ModelContextError):
    """The conversation cannot be made to fit: the task and the latest step alone are too large."""


class Condensation(BaseModel):
    """One condensation, as reported to the orchestrator."""

    reason: Literal["window", "overflow"] = Field(
        description="window: the conversation outgrew the budget; overflow: the endpoint refused it as too long"
    )
    tokens_before: int
    tokens_after: int
    messages_condensed: int = Field(description="messages replaced by the summary")
    observations_elided: int = Field(description="tool results elided along the way")
    window: int = Field(description="the context window in tokens, as now known")
    summary: str = ""


ReportFn = Callable[[Condensation], None]
Tools = list[dict[str, Any]] | None


class ContextWindow:
    """A model's context window, and how to keep a conversation inside it.

    window = ContextWindow(32_000)
    reply, messages = window.invoke(model, messages, tools, report=log_condensation)
    """

    def __init__(self, tokens: int, options: ContextOptions | None = None, summarizer: Summarizer | None = None):
        """`summarizer` writes the summaries; None means the agent's own model."""
        self.tokens = tokens
        self.options = options or ContextOptions()
        self.summarizer = summarizer
        if self.budget(None) <= 0:
            raise ValueError(
                f"a context window of {tokens} tokens leaves nothing for the conversation once "
                f"{self.answer_room} are kept for the answer: give the real window or a smaller answer_room"
            )

    @property
    def answer_room(self) -> int:
        return self.options.answer_room or min(DEFAULT_ANSWER_ROOM, self.tokens // 4)

    def budget(self, tools: Tools) -> int:
        """Tokens the messages of a request may take: the window, less the margin, the answer and the tools."""
        return self._room() - count_tools(tools)

    def _room(self) -> int:
        """Tokens the messages and tools of a request may take together."""
        return math.floor(self.tokens * (1 - self.options.margin)) - self.answer_room

    def invoke(
        self, model: ToolChat, messages: list[BaseMessage], tools: Tools, report: ReportFn | None = None
    ) -> tuple[AIMessage, list[BaseMessage]]:
        """Fit `messages`, ask `model`, and condense and retry once if the endpoint says they are too long.

        Returns the reply and the messages that were sent, which replace the caller's history. A
        refusal that states a smaller window than this one's is believed from then on.
        """
        summarizer = self.summarizer or model
        kept = self.fit(messages, tools, summarizer, report)
        try:
            return model.invoke(kept, tools=tools), kept
        except ModelContextError as exc:
            stated = _stated_window(str(exc))
            if stated is not None and stated < self.tokens:
                self.tokens = stated
            refused, limit = count_messages(kept), self.budget(tools)
            # Without a smaller window to go by, the count here fell short: aim well below what was refused.
            kept = self.condense(kept, summarizer, limit if limit < refused else refused // 2, "overflow", report)
            return model.invoke(kept, tools=tools), kept

    def fit(
        self, messages: Sequence[BaseMessage], tools: Tools, summarizer: Summarizer, report: ReportFn | None = None
    ) -> list[BaseMessage]:
        """The conversation to send: `messages` unchanged if they fit, else with old observations
        elided, else condensed. Raises ContextOverflow if even that does not fit."""
        if most_tokens(messages, tools) <= self._room():  # fits whatever the count: no need to count
            return list(messages)
        budget = self.budget(tools)
        sizes = [_size(m) for m in messages]
        before = sum(sizes)
        if before <= budget:
            return list(messages)
        calls = _calls_by_id(messages)
        latest = _last_step_start(messages)
        # Elidable results before the latest step, oldest first, with the tokens eliding each saves.
        older = [(i, short) for i, m in enumerate(messages[:latest]) if (short := _elided(m, calls)) is not None]
        savings = [sizes[i] - _size(short) for i, short in older]
        latest_results = sum(isinstance(m, ToolMessage) for m in messages[latest:])
        # Keep the configured number in full if that is enough, else fewer, down to none.
        cuts = [
            len(older) - min(len(older), max(0, keep - latest_results))
            for keep in range(self.options.keep_observations, -1, -1)
        ]
        for cut in cuts:
            if before - sum(savings[:cut]) <= budget:
                shortened = list(messages)
                for i, short in older[:cut]:
                    shortened[i] = short
                return shortened
        # From the messages as they were, so that the summary can draw on the results eliding would drop.
        return self._condense(list(messages), summarizer, budget, "window", report, before)

    def condense(
        self,
        messages: Sequence[BaseMessage],
        summarizer: Summarizer,
        limit: int,
        reason: Literal["window", "overflow"] = "window",
        report: ReportFn | None = None,
    ) -> list[BaseMessage]:
        """`messages` in at most `limit` tokens: the middle summarized, the head and the latest steps kept."""
        return self._condense(list(messages), summarizer, limit, reason, report, count_messages(messages))

    def _condense(
        self,
        messages: list[BaseMessage],
        summarizer: Summarizer,
        limit: int,
        reason: Literal["window", "overflow"],
        report: ReportFn | None,
        before: int,
    ) -> list[BaseMessage]:
        head_end = _head_end(messages)
        head, rest = messages[:head_end], messages[head_end:]
        starts = [i for i, m in enumerate(rest) if isinstance(m, AIMessage)]
        preamble = rest[: starts[0]] if starts else rest
        # Each step from its model message to the next one's (none before the first reply).
        steps = [rest[a:b] for a, b in pairwise([*starts, len(rest)])]

        # The latest step always; earlier ones while they take at most the recent share.
        tail = steps[-1:]
        tail_tokens = count_messages(m for step in tail for m in step)
        for step in reversed(steps[:-1]):
            tail_tokens += count_messages(step)
            if tail_tokens > self.options.recent_share * limit:
                break
            tail.insert(0, step)
        condensed = preamble + [m for step in steps[: len(steps) - len(tail)] for m in step]

        summary = ""
        middle = preamble
        if len(condensed) > len(preamble):
            summary = self._summarize(head, condensed, summarizer, limit)
            middle = [HumanMessage(render("condensed", summary=summary), id=SUMMARY_ID)]
        result = head + middle + [m for step in tail for m in step]

        # Still too long (a few huge steps): elide what is left, oldest first, the latest step last.
        sizes = [_size(m) for m in result]
        total = sum(sizes)
        calls = _calls_by_id(result)
        elided = 0
        for i, message in enumerate(result):
            if total <= limit:
                break
            short = _elided(message, calls)
            if short is not None:
                total -= sizes[i] - _size(short)
                result[i] = short
                elided += 1
        if total > limit:
            raise ContextOverflow(
                f"the conversation needs {total:,} tokens even condensed, more than the {limit:,} that a context "
                f"window of {self.tokens:,} tokens leaves for it: use a model with a larger window or a shorter task"
            )
        if report is not None:
            report(
                Condensation(
                    reason=reason,
                    tokens_before=before,
                    tokens_after=total,
                    messages_condensed=len(condensed) if summary else 0,
                    observations_elided=elided,
                    window=self.tokens,
                    summary=summary,
                )
            )
        return result

    def _summarize(
        self, head: list[BaseMessage], condensed: list[BaseMessage], summarizer: Summarizer, limit: int
    ) -> str:
        """A summary of the `condensed` messages, made to fit in a request of `limit` tokens."""
        task = content_text(head[-1].content) if head else ""
        previous = next((content_text(m.content) for m in condensed if m.id == SUMMARY_ID), None)
        steps = [m for m in condensed if m.id != SUMMARY_ID]
        most = min(self.answer_room, int(self.options.summary_share * limit))

        def request(transcript: list[str]) -> list[BaseMessage]:
            values = {"task": task, "previous": previous, "transcript": transcript, "words": most * 3 // 4}
            return [SystemMessage(render("condenser")), HumanMessage(render("condenser_task", **values))]

        room = limit - count_messages(request([]))
        if room <= 0:
            raise ContextOverflow(
                f"a summary request (the task and the instructions) needs more than the {limit:,} tokens that a "
                f"context window of {self.tokens:,} tokens leaves for it: use a model with a larger window "
                "or a shorter task"
            )
        reply = summarizer.invoke(request(_fit_transcript(_transcript(steps), room)))
        text = content_text(reply.content).strip() or _actions(steps)
        return _clip_tokens(text, most)


def _stated_window(error: str) -> int | None:
    found = _STATED_WINDOW.search(error)
    return int(found.group(1) or found.group(2)) if found else None


def _size(message: BaseMessage) -> int:
    return count_messages([message])


def _head_end(messages: Sequence[BaseMessage]) -> int:
    """Where the part that is never dropped ends: after the first human message (the task)."""
    for i, message in enumerate(messages):
        if isinstance(message, HumanMessage):
            return i + 1
        if not isinstance(message, SystemMessage):
            return i
    return len(messages)


def _last_step_start(messages: Sequence[BaseMessage]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], AIMessage):
            return i
    return len(messages)


def _calls(message: BaseMessage) -> list[dict[str, Any]]:
    if not isinstance(message, AIMessage):
        return []
    return [dict(c) for c in message.tool_calls] + [dict(c) for c in message.invalid_tool_calls]


def _calls_by_id(messages: Sequence[BaseMessage]) -> dict[str, dict[str, Any]]:
    return {call["id"]: call for message in messages for call in _calls(message) if call.get("id")}


def _call_text(call: dict[str, Any] | None) -> str:
    """`view_file(path='a.py')`: a tool call in a line, long arguments cut short."""
    if call is None:
        return "a tool call"
    args = call.get("args")
    if isinstance(args, dict):
        shown = ", ".join(f"{name}={_clip(repr(value), 60)}" for name, value in args.items())
    else:
        shown = _clip(str(args or ""), 60)
    return f"{call.get('name') or '?'}({shown})"


def _elided(message: BaseMessage, calls: dict[str, dict[str, Any]]) -> ToolMessage | None:
    """The one-line stand-in for a tool result, or None if it is not a result or would not get shorter."""
    if not isinstance(message, ToolMessage) or message.response_metadata.get(ELIDED):
        return None
    text = content_text(message.content)
    notice = (
        f"[output of {_call_text(calls.get(message.tool_call_id))} elided: {len(text):,} characters; "
        "call the tool again to see it]"
    )
    if len(notice) >= len(text):
        return None
    return ToolMessage(
        notice, tool_call_id=message.tool_call_id, status=message.status, response_metadata={ELIDED: True}
    )


def _transcript(messages: Sequence[BaseMessage]) -> list[str]:
    """The condensed steps as text for the summarizer, one entry a message."""
    calls = _calls_by_id(messages)
    entries = []
    for message in messages:
        text = content_text(message.content)
        if isinstance(message, AIMessage):
            made = ", ".join(_call_text(call) for call in _calls(message))
            entries.append(f"assistant: {text}" + (f"\ncalls: {made}" if made else ""))
        elif isinstance(message, ToolMessage) and not message.response_metadata.get(ELIDED):
            entries.append(f"result of {_call_text(calls.get(message.tool_call_id))}:\n{text}")
        elif isinstance(message, ToolMessage):
            entries.append(text)
        else:
            entries.append(f"user: {text}")
    return entries


def _fit_transcript(entries: list[str], room: int) -> list[str]:
    """`entries` in at most `room` tokens: each cut shorter in turn, then only the latest ones."""
    for most in TRANSCRIPT_ENTRY_CHARS:
        clipped = [_clip(entry, most) for entry in entries]
        if count_text("\n\n".join(clipped)) <= room:
            return clipped
    kept: list[str] = []
    used = count_text("[0000 earlier entries left out]")
    for entry in reversed(clipped):
        used += count_text(entry) + 1
        if used > room:
            break
        kept.insert(0, entry)
    return [f"[{len(clipped) - len(kept)} earlier entries left out]"] + kept


def _actions(messages: Sequence[BaseMessage]) -> str:
    """What stands in for a summary when the summarizer answers with nothing."""
    made = [_call_text(call) for message in messages for call in _calls(message)]
    return "Tool calls made in the condensed steps: " + ("; ".join(made) or "none")


def _clip(text: str, most: int | None) -> str:
    if most is None or len(text) <= most:
        return text
    return f"{text[:most]}... [{len(text) - most:,} more characters]"


def _clip_tokens(text: str, most: int) -> str:
    tokens = count_text(text)
    if tokens <= most:
        return text
    return text[: len(text) * most // tokens * 9 // 10] + "\n[summary cut short]"
