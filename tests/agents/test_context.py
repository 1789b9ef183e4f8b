"""Fitting a conversation into a context window: eliding, condensing, and the overflow retry."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from agents.context import SUMMARY_ID, Condensation, ContextOptions, ContextOverflow, ContextWindow
from agents.model_errors import ModelContextError
from agents.models import ModelClient, ModelSpec
from agents.prompts import render
from agents.tokens import count_messages

TASK = "Fix the rounding bug in totals.py"
# Words of the condenser's prompt, for scripts to answer summary requests apart from the agent's.
CONDENSER = render("condenser").split("\n")[0][:40]


def code(chars: int, seed: int) -> str:
    """Source-like text of about `chars` characters that tokenizes like real code."""
    lines, size, j = [], 0, 0
    while size < chars:
        line = f"    result_{seed}_{j} = compute_{j % 7}(items[{j}], factor={(j * 7 + seed) % 13})  # step {j}"
        lines.append(line)
        size += len(line) + 1
        j += 1
    return "\n".join(lines)[:chars]


def step(n: int, output_chars: int = 2000, note: str = "") -> list[BaseMessage]:
    call = {"name": "view_file", "args": {"path": f"f{n}.py"}, "id": f"call_{n}"}
    return [AIMessage(note, tool_calls=[call]), ToolMessage(code(output_chars, n), tool_call_id=f"call_{n}")]


def conversation(steps: int, output_chars: int = 2000, note: str = "") -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage("You are a coder."), HumanMessage(TASK)]
    for n in range(steps):
        messages += step(n, output_chars, note)
    return messages


def assert_pairing(messages: list[BaseMessage]) -> None:
    """What OpenAI-compatible servers require: each tool result answers a call of the assistant
    message just before it, and every call gets its result before the next message."""
    waiting: set[str] = set()
    for message in messages:
        if isinstance(message, ToolMessage):
            assert message.tool_call_id in waiting, f"result {message.tool_call_id} without its call"
            waiting.discard(message.tool_call_id)
            continue
        assert not waiting, f"calls {waiting} without results"
        if isinstance(message, AIMessage):
            waiting = {call["id"] for call in message.tool_calls}
    assert not waiting, f"calls {waiting} without results"


class Summarizer:
    """A stand-in model for unit tests: answers every request with a fixed summary, and keeps them."""

    def __init__(self, answer: str = "Files read: f0.py to f3.py. Remaining: fix totals.py."):
        self.answer = answer
        self.requests: list[list[BaseMessage]] = []

    def invoke(self, messages: list[BaseMessage]) -> AIMessage:
        self.requests.append(messages)
        return AIMessage(self.answer)


def _call(message: AIMessage) -> str:
    return f"view_file(path={message.tool_calls[0]['args']['path']!r})"


def window_for(tokens: int, **options: object) -> ContextWindow:
    """A window whose budget (no tools) is exactly `tokens`."""
    return ContextWindow(tokens + 500, ContextOptions(margin=0, answer_room=500, **options))


def elided(message: BaseMessage) -> bool:
    return isinstance(message, ToolMessage) and str(message.content).startswith("[output of view_file")


def test_a_conversation_that_fits_is_sent_unchanged():
    messages = conversation(4)
    summarizer = Summarizer()

    fitted = window_for(count_messages(messages)).fit(messages, None, summarizer)

    assert fitted == messages
    assert summarizer.requests == []


def test_old_observations_are_elided_in_one_line_the_last_ones_kept():
    messages = conversation(10)
    summarizer, reports = Summarizer(), []

    fitted = window_for(count_messages(messages) // 2).fit(messages, None, summarizer, reports.append)

    results = [m for m in fitted if isinstance(m, ToolMessage)]
    assert [elided(m) for m in results] == [True] * 7 + [False] * 3  # keep_observations=3
    assert results[0].content == (
        "[output of view_file(path='f0.py') elided: 2,000 characters; call the tool again to see it]"
    )
    assert fitted[-6:] == messages[-6:]  # the last three steps as they were
    assert fitted[:2] == messages[:2]  # the system prompt and the task
    assert [m for m in fitted if isinstance(m, AIMessage)] == [m for m in messages if isinstance(m, AIMessage)]
    assert_pairing(fitted)
    assert count_messages(fitted) <= count_messages(messages) // 2
    assert summarizer.requests == [] and reports == []


def test_eliding_goes_in_batches_and_never_changes_what_was_elided():
    window = window_for(count_messages(conversation(10)) * 3 // 4)
    history = window.fit(conversation(10), None, Summarizer())
    full_counts = []

    for n in range(10, 30):
        fitted = window.fit(history + step(n), None, Summarizer())
        assert all(fitted[i] == history[i] for i, m in enumerate(history) if elided(m))  # elided stays as it was
        full_counts.append(sum(isinstance(m, ToolMessage) and not elided(m) for m in fitted))
        history = fitted

    # The conversation grows untouched for a while, then is cut back to the last three, again and again.
    assert min(full_counts) == 3 and max(full_counts) > 4
    assert sum(1 for a, b in zip(full_counts, full_counts[1:], strict=False) if b < a) >= 2
    assert_pairing(history)


def test_fewer_are_kept_when_three_do_not_fit_but_always_the_latest_step_s():
    messages = conversation(6, output_chars=6000)
    latest = count_messages(messages[:2] + messages[-2:])

    fitted = window_for(latest + 300).fit(messages, None, Summarizer())

    results = [m for m in fitted if isinstance(m, ToolMessage)]
    assert [elided(m) for m in results] == [True] * 5 + [False]
    assert fitted[-1] == messages[-1]
    assert_pairing(fitted)


def test_condensing_replaces_the_middle_with_a_summary_keeping_task_and_latest_steps():
    note = "I looked at the helper and it rounds half down, which explains part of the totals. " * 15
    messages = conversation(30, output_chars=1500, note=note)
    summarizer, reports = Summarizer(), []
    budget = count_messages(messages) // 4

    fitted = window_for(budget).fit(messages, None, summarizer, reports.append)

    assert fitted[:2] == messages[:2]
    assert fitted[2].id == SUMMARY_ID and summarizer.answer in fitted[2].content
    assert isinstance(fitted[3], AIMessage)  # the kept steps start with an assistant message
    assert fitted[-1] == messages[-1]  # the latest result, in full
    kept_calls = [m.tool_calls[0]["id"] for m in fitted if isinstance(m, AIMessage)]
    assert kept_calls == [f"call_{n}" for n in range(30 - len(kept_calls), 30)]  # the latest steps, in order
    assert_pairing(fitted)
    assert count_messages(fitted) <= budget

    # One summary request, made from the template, with the task and the condensed steps in it.
    assert len(summarizer.requests) == 1
    system, prompt = summarizer.requests[0]
    assert system.content == render("condenser")
    assert TASK in prompt.content and "view_file(path='f0.py')" in prompt.content and note[:200] in prompt.content
    assert f"view_file(path='f{29}.py')" not in prompt.content  # the kept steps are not summarized
    assert count_messages(summarizer.requests[0]) <= budget

    [report] = reports
    assert report.reason == "window"
    assert report.tokens_before == count_messages(messages) and report.tokens_after == count_messages(fitted)
    assert report.messages_condensed == len(messages) - len(fitted) + 1
    assert report.summary == summarizer.answer


def test_a_second_condensation_builds_on_the_first_summary():
    note = "Notes on what this file does and how it relates to the totals computation. " * 15
    window = window_for(count_messages(conversation(30, 1500, note)) // 4)
    summarizer = Summarizer("FIRST SUMMARY: f0 to f20 read.")
    first = window.fit(conversation(30, 1500, note), None, summarizer)
    grown = first + [m for n in range(30, 60) for m in step(n, 1500, note)]

    summarizer.answer = "SECOND SUMMARY"
    second = window.fit(grown, None, summarizer)

    assert "FIRST SUMMARY" in summarizer.requests[1][1].content  # the previous summary is carried forward
    assert [m.id for m in second].count(SUMMARY_ID) == 1
    assert "SECOND SUMMARY" in second[2].content and second[:2] == first[:2]
    assert_pairing(second)


@pytest.mark.parametrize("steps", [40, 400])
def test_the_transcript_given_to_the_summarizer_is_cut_to_fit_its_request(steps):
    messages = conversation(steps, output_chars=1500, note="x " * 2000)
    summarizer = Summarizer()
    budget = count_messages(messages[:80]) // 20

    fitted = window_for(budget).fit(messages, None, summarizer)

    [request] = summarizer.requests
    assert count_messages(request) <= budget
    assert "... [" in request[1].content  # entries were cut short
    if steps == 400:  # so many that only the latest fit, even cut short
        assert "earlier entries left out]" in request[1].content
    last_condensed = next(m for m in reversed(messages) if isinstance(m, AIMessage) and m not in fitted)
    assert _call(last_condensed) in request[1].content  # the latest condensed steps are always there
    assert count_messages(fitted) <= budget
    assert_pairing(fitted)


def test_a_long_summary_is_cut_to_its_share_of_the_budget():
    messages = conversation(30, output_chars=1500, note="Some notes on this step. " * 60)
    budget = count_messages(messages) // 4
    summarizer = Summarizer("A very long summary. " * 5000)

    fitted = window_for(budget).fit(messages, None, summarizer)

    assert count_messages(fitted) <= budget
    assert "[summary cut short]" in fitted[2].content


def test_an_empty_summary_falls_back_to_the_calls_made():
    messages = conversation(30, output_chars=1500, note="Some notes on this step. " * 60)

    fitted = window_for(count_messages(messages) // 4).fit(messages, None, Summarizer(""))

    assert "Tool calls made in the condensed steps: view_file(path='f0.py')" in fitted[2].content


def test_a_task_too_large_for_the_window_is_one_clear_error():
    messages = [SystemMessage("You are a coder."), HumanMessage(code(20_000, 1))] + step(0)

    with pytest.raises(
        ContextOverflow, match=r"needs [\d,]+ tokens even condensed, more than the [\d,]+ .*larger window"
    ):
        window_for(1000).fit(messages, None, Summarizer())


def test_a_window_with_no_room_left_is_refused():
    with pytest.raises(ValueError, match="leaves nothing for the conversation"):
        ContextWindow(1000, ContextOptions(answer_room=1000))


def test_tool_schemas_count_against_the_budget():
    tools = [{"type": "function", "function": {"name": "view_file", "description": "show a file " * 50}}]
    window = ContextWindow(8000)

    assert window.budget(tools) < window.budget(None) < 8000 - window.answer_room


# --- the endpoint refuses anyway: condense and retry once, over real HTTP


def client(server) -> ModelClient:
    return ModelClient(ModelSpec(base_url=server.base_url, model="scripted", max_retries=0), role="coder")


def test_a_context_overflow_from_the_endpoint_condenses_and_retries_once(scripted):
    messages = conversation(12, output_chars=3000, note="Reading this file for the totals. " * 5)
    sent = count_messages(messages)
    server = scripted(
        {
            "context_window": sent * 3 // 4,  # smaller than the client believes
            "responses": [
                {"match": {"any_message_contains": CONDENSER}, "content": "Summary: f0 to f9 read.", "repeat": True},
                {"content": "Done reading."},
            ],
        }
    )
    window = ContextWindow(sent * 2, ContextOptions(margin=0, answer_room=500))
    reports: list[Condensation] = []

    reply, kept = window.invoke(client(server), messages, None, reports.append)

    assert reply.content == "Done reading."
    refused, summary_request, retried = server.requests
    assert refused.status == 400 and refused.tokens > sent * 3 // 4
    assert CONDENSER in str(summary_request.messages)
    assert retried.status == 200 and retried.tokens <= sent * 3 // 4
    assert kept[:2] == messages[:2] and kept[2].id == SUMMARY_ID and kept[-1] == messages[-1]
    assert_pairing(kept)
    [report] = reports
    assert report.reason == "overflow" and report.tokens_after <= report.tokens_before // 2


def test_a_refusal_after_the_retry_is_the_agent_s_error(scripted):
    messages = conversation(12, output_chars=3000, note="Reading this file for the totals. " * 5)
    too_long = {"status": 400, "code": "context_length_exceeded", "message": "prompt is too long"}
    server = scripted(
        [
            {"match": {"any_message_contains": CONDENSER}, "content": "Summary.", "repeat": True},
            too_long,
            too_long,
            "never asked",
        ]
    )
    window = ContextWindow(count_messages(messages) * 2, ContextOptions(margin=0, answer_room=500))

    with pytest.raises(ModelContextError, match="exceeds the model's context window: prompt is too long"):
        window.invoke(client(server), messages, None)

    assert [r.status for r in server.requests] == [400, 200, 400]  # the first try, the summary, one retry
    assert server.pending == [3]


def test_a_refusal_stating_a_window_too_small_for_the_task_is_one_clear_error(scripted):
    messages = conversation(12, output_chars=3000)
    server = scripted({"context_window": 300, "responses": ["never asked"]})
    window = ContextWindow(count_messages(messages) * 2, ContextOptions(margin=0, answer_room=100))

    with pytest.raises(ContextOverflow, match="context window of 300 tokens leaves"):
        window.invoke(client(server), messages, None)

    assert [r.status for r in server.requests] == [400]
    assert window.tokens == 300  # believed from now on
