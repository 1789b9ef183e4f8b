"""What local servers (vLLM, Ollama, llama.cpp, LM Studio) really send, served by the scripted model over
real HTTP: made to work, or refused in one line that names the endpoint and what to check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agents.loop import AgentLimits, run_agent
from agents.model_errors import ModelAnswerError, ModelContextError, ModelNotFoundError, ModelUnavailableError
from agents.model_replies import REASONING_KEY, TEXT_TOOL_CALLS_KEY
from agents.models import ModelClient, ModelSpec
from agents.pricing import Price, cost
from agents.tokens import count_text
from agents.tools import READ_ONLY_TOOLS, Toolset
from agents.usage import UsageLedger
from sandboxes.base import SandboxSpec
from sandboxes.local import LocalBackend


def _tool(name: str, **properties: str) -> dict:
    schema = {"type": "object", "properties": {k: {"type": v} for k, v in properties.items()}}
    return {"type": "function", "function": {"name": name, "description": f"The {name} tool.", "parameters": schema}}


TOOLS = [_tool("edit_file", path="string"), _tool("run_command", command="string")]
EDIT = ("edit_file", {"path": "a.py"})
RUN = ("run_command", {"command": "pytest"})
BOTH_STREAMS = pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])


def client(server, stream=False, ledger=None, role="coder", **spec) -> ModelClient:
    spec.setdefault("model", "qwen2.5-coder:32b")
    return ModelClient(ModelSpec(base_url=server.base_url, stream=stream, **spec), role, ledger, agent=f"{role}-1")


def calls(reply: AIMessage) -> list[tuple[str, dict]]:
    return [(c["name"], c["args"]) for c in reply.tool_calls]


# -- tool calls written in the text -------------------------------------------------------------


@BOTH_STREAMS
@pytest.mark.parametrize(
    ("content", "syntax", "expected", "left"),
    [
        (
            'I will edit it.\n<tool_call>\n{"name": "edit_file", "arguments": {"path": "a.py"}}\n</tool_call>\n'
            '<tool_call>{"name": "run_command", "arguments": {"command": "pytest"}}</tool_call>',
            "<tool_call>",
            [EDIT, RUN],
            "I will edit it.",
        ),
        # Cut at the stop token before the closing tag, as Qwen's servers often do.
        ('<tool_call>\n{"name": "edit_file", "arguments": {"path": "a.py"}}\n', "<tool_call>", [EDIT], ""),
        (
            '<|python_tag|>{"name": "edit_file", "parameters": {"path": "a.py"}}; '
            '{"name": "run_command", "parameters": {"command": "pytest"}}<|eom_id|>',
            "<|python_tag|>",
            [EDIT, RUN],
            "",
        ),
        ('{"name": "edit_file", "parameters": {"path": "a.py"}}', "JSON", [EDIT], ""),  # Llama 3.1's JSON form
        (
            '```json\n[{"name": "edit_file", "arguments": {"path": "a.py"}},'
            ' {"name": "run_command", "arguments": "{\\"command\\": \\"pytest\\"}"}]\n```',
            "JSON",
            [EDIT, RUN],
            "",
        ),
        ('[TOOL_CALLS][{"name": "edit_file", "arguments": {"path": "a.py"}}]', "[TOOL_CALLS]", [EDIT], ""),
    ],
    ids=["hermes", "hermes-unclosed", "python-tag", "llama-json", "fenced-list", "mistral"],
)
def test_tool_calls_written_in_the_text_become_tool_calls(scripted, stream, content, syntax, expected, left):
    server = scripted([{"content": content}])

    reply = client(server, stream=stream).invoke([HumanMessage("fix it")], tools=TOOLS)

    assert calls(reply) == expected
    assert reply.content == left
    assert reply.additional_kwargs[TEXT_TOOL_CALLS_KEY] == syntax
    ids = [c["id"] for c in reply.tool_calls]
    assert all(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "content",
    [
        '<tool_call>{"name": "deploy", "arguments": {}}</tool_call>',  # a tool that was not offered
        '{"name": "deploy", "arguments": {}}',
        '{"name": "edit_file", "arguments": {"path": "a.py"}, "why": "data, not a call"}',
        'The call would be {"name": "edit_file", "arguments": {"path": "a.py"}}.',  # prose around bare JSON
    ],
)
def test_text_that_is_not_a_call_of_an_offered_tool_stays_content(scripted, content):
    server = scripted([{"content": content}])

    reply = client(server).invoke([HumanMessage("fix it")], tools=TOOLS)

    assert reply.tool_calls == [] and reply.invalid_tool_calls == []
    assert reply.content == content
    assert TEXT_TOOL_CALLS_KEY not in reply.additional_kwargs


def test_without_tools_offered_a_json_answer_stays_an_answer(scripted):
    content = '{"name": "edit_file", "arguments": {"path": "a.py"}}'
    server = scripted([{"content": content}])

    assert client(server).invoke([HumanMessage("give me JSON")]).content == content


def test_a_broken_written_call_of_an_offered_tool_is_an_invalid_call_the_agent_is_told(scripted):
    server = scripted([{"content": '<tool_call>{"name": "edit_file", "arguments": {"path": </tool_call>'}])

    reply = client(server).invoke([HumanMessage("fix it")], tools=TOOLS)

    (invalid,) = reply.invalid_tool_calls
    assert invalid["name"] == "edit_file" and "not valid JSON" in invalid["error"] and invalid["id"]


def test_written_calls_go_back_as_tool_calls_answered_by_id(scripted):
    server = scripted(
        [
            {
                "match": {"last_role": "user"},
                "content": 'Editing.<tool_call>{"name": "edit_file", "arguments": {"path": "a.py"}}</tool_call>',
            },
            {"match": {"last_role": "tool"}, "content": "done"},
        ]
    )
    model = client(server)
    first = model.invoke([HumanMessage("fix it")], tools=TOOLS)
    history = [HumanMessage("fix it"), first, ToolMessage("edited", tool_call_id=first.tool_calls[0]["id"])]

    assert model.invoke(history, tools=TOOLS).content == "done"

    assistant, tool = server.requests[1].messages[1:]
    assert assistant["content"] == "Editing."
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in assistant["tool_calls"]
    ] == [(first.tool_calls[0]["id"], "edit_file", {"path": "a.py"})]
    assert tool["tool_call_id"] == first.tool_calls[0]["id"]


def test_an_agent_on_a_server_without_a_tool_parser_finishes_its_work(scripted, tmp_path: Path):
    (tmp_path / "README.md").write_text("# demo\n")
    hermes = '<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'
    server = scripted(
        [
            {"match": {"last_role": "user"}, "content": hermes.format(name="view_file", args='{"path": "README.md"}')},
            {
                "match": {"last_message_contains": "# demo"},
                "content": "Read it.\n" + hermes.format(name="submit", args='{"summary": "the README says demo"}'),
            },
        ]
    )
    sandbox = LocalBackend().start(SandboxSpec(workspace=tmp_path))
    try:
        outcome = run_agent(
            client(server), Toolset(sandbox, READ_ONLY_TOOLS), "You read.", "Read the README.", AgentLimits(max_steps=5)
        )
    finally:
        sandbox.stop()

    assert outcome.submitted, outcome.reason
    assert outcome.summary == "the README says demo"


# -- reasoning ----------------------------------------------------------------------------------


@BOTH_STREAMS
@pytest.mark.parametrize(
    "entry",
    [
        {"content": "<think>The test fails because x is 1.</think>\n\nx must be 2."},
        {"content": "The test fails because x is 1.</think>x must be 2."},  # the template opened the block
        {"reasoning_content": "The test fails because x is 1.", "content": "x must be 2."},
    ],
    ids=["think-tags", "template-opened", "reasoning-field"],
)
def test_reasoning_is_kept_out_of_the_content_and_the_history(scripted, stream, entry):
    server = scripted(
        [{**entry, "match": {"last_role": "user"}}, {"match": {"last_role": "assistant"}, "content": "ok"}]
    )
    model = client(server, stream=stream)

    reply = model.invoke([HumanMessage("why?")])

    assert reply.content == "x must be 2."
    assert reply.additional_kwargs[REASONING_KEY] == "The test fails because x is 1."
    model.invoke([HumanMessage("why?"), reply, AIMessage("and?")])
    assert server.requests[1].messages[1]["content"] == "x must be 2."


@BOTH_STREAMS
def test_reasoning_then_a_tool_call_written_in_the_text(scripted, stream):
    server = scripted(
        [
            {
                "reasoning_content": "I should edit a.py.",
                "quirks": {"omit_usage": True},
                "content": '<tool_call>{"name": "edit_file", "arguments": {"path": "a.py"}}</tool_call>',
            }
        ]
    )
    ledger = UsageLedger()

    reply = client(server, stream=stream, ledger=ledger).invoke([HumanMessage("fix it")], tools=TOOLS)

    assert calls(reply) == [EDIT] and reply.content == ""
    assert reply.additional_kwargs[REASONING_KEY] == "I should edit a.py."
    (usage,) = ledger.records
    assert usage.estimated and usage.output_tokens > count_text("I should edit a.py.")


def test_reasoning_in_ollamas_reasoning_field(scripted):
    message = {"role": "assistant", "content": "x must be 2.", "reasoning": "The test fails because x is 1."}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    server = scripted([{"body": {"id": "x", "object": "chat.completion", "model": "qwen3", "choices": [choice]}}])

    reply = client(server).invoke([HumanMessage("why?")])

    assert (reply.content, reply.additional_kwargs[REASONING_KEY]) == ("x must be 2.", "The test fails because x is 1.")


def test_an_answer_that_stopped_while_reasoning_is_all_reasoning(scripted):
    server = scripted([{"content": "<think>Let me think about the whole repository", "finish_reason": "length"}])

    reply = client(server).invoke([HumanMessage("plan")])

    assert reply.content == "" and reply.additional_kwargs[REASONING_KEY].startswith("Let me think")


# -- tool calls as servers really send them ---------------------------------------------------


@BOTH_STREAMS
def test_arguments_sent_as_a_json_object(scripted, stream):
    server = scripted(
        [
            {
                "tool_calls": [{"name": "edit_file", "arguments": {"path": "a.py"}}],
                "quirks": {"arguments_as_object": True},
            }
        ]
    )

    assert calls(client(server, stream=stream).invoke([HumanMessage("fix")], tools=TOOLS)) == [EDIT]


@BOTH_STREAMS
@pytest.mark.parametrize(
    "entry",
    [
        {
            "tool_calls": [
                {"name": "edit_file", "arguments": {"path": "a.py"}},
                {"name": "run_command", "arguments": {"command": "pytest"}},
            ],
            "quirks": {"omit_tool_call_ids": True},
        },
        {
            "tool_calls": [
                {"name": "edit_file", "arguments": {"path": "a.py"}, "id": "call_0"},
                {"name": "run_command", "arguments": {"command": "pytest"}, "id": "call_0"},
            ]
        },
    ],
    ids=["missing-ids", "repeated-ids"],
)
def test_tool_calls_get_ids_unique_in_the_conversation(scripted, stream, entry):
    server = scripted([{**entry, "repeat": True}])
    model = client(server, stream=stream)

    first = model.invoke([HumanMessage("fix")], tools=TOOLS)
    results = [ToolMessage("ok", tool_call_id=c["id"]) for c in first.tool_calls]
    second = model.invoke([HumanMessage("fix"), first, *results], tools=TOOLS)

    assert calls(first) == calls(second) == [EDIT, RUN]
    ids = [c["id"] for c in first.tool_calls + second.tool_calls]
    assert all(ids) and len(set(ids)) == 4


@BOTH_STREAMS
def test_tool_calls_with_finish_reason_stop_count(scripted, stream):
    server = scripted([{"tool_calls": [{"name": "edit_file", "arguments": {"path": "a.py"}}], "finish_reason": "stop"}])

    assert calls(client(server, stream=stream).invoke([HumanMessage("fix")], tools=TOOLS)) == [EDIT]


def test_streamed_tool_call_deltas_without_an_index(scripted):
    server = scripted(
        [
            {
                "tool_calls": [
                    {"name": "edit_file", "arguments": {"path": "a.py"}},
                    {"name": "run_command", "arguments": {"command": "pytest"}},
                ],
                "quirks": {"omit_tool_call_index": True},
            }
        ]
    )

    assert calls(client(server, stream=True).invoke([HumanMessage("fix")], tools=TOOLS)) == [EDIT, RUN]


# -- usage ----------------------------------------------------------------------------------------


@BOTH_STREAMS
def test_without_usage_tokens_are_counted_and_marked_estimated(scripted, stream):
    answer = "The fix is to set x to 2 in a.py, then run the tests again."
    server = scripted([{"content": answer, "quirks": {"omit_usage": True}}])
    ledger = UsageLedger()
    prompt = "Why does test_x fail? " * 20

    client(server, stream=stream, ledger=ledger, model="gpt-4o-mini").invoke([HumanMessage(prompt)])

    (usage,) = ledger.records
    assert usage.estimated and ledger.total().estimated_calls == 1
    assert usage.input_tokens >= count_text(prompt) and usage.output_tokens >= count_text(answer)
    assert usage.cost == pytest.approx(cost("gpt-4o-mini", usage.input_tokens, usage.output_tokens)) and usage.cost > 0


def test_budgets_keep_applying_without_usage(scripted, tmp_path: Path):
    server = scripted(
        [
            {
                "match": {"role": "coder"},
                "quirks": {"omit_usage": True},
                "repeat": True,
                "tool_calls": [{"name": "list_files", "arguments": {}}],
            }
        ]
    )
    sandbox = LocalBackend().start(SandboxSpec(workspace=tmp_path))
    try:
        outcome = run_agent(
            client(server),
            Toolset(sandbox, READ_ONLY_TOOLS),
            "You look.",
            "Look around. " * 50,
            AgentLimits(max_steps=50, max_tokens=2_000),
        )
    finally:
        sandbox.stop()

    assert outcome.status == "limit" and outcome.reason.startswith("token limit reached"), outcome.reason
    assert outcome.usage.estimated_calls == outcome.usage.calls < 50


@BOTH_STREAMS
def test_cached_input_tokens_are_booked_at_the_cached_price(scripted, stream):
    usage = {"prompt_tokens": 10_000, "completion_tokens": 500, "cached_tokens": 8_000}
    server = scripted([{"content": "ok", "usage": usage, "repeat": True}])
    ledger = UsageLedger()

    client(server, stream=stream, ledger=ledger, model="gpt-4.1").invoke([HumanMessage("hi")])
    client(
        server,
        stream=stream,
        ledger=ledger,
        model="my-vllm-model",
        input_price=1.0,
        output_price=4.0,
        cached_input_price=0.1,
    ).invoke([HumanMessage("hi")])

    table, override = ledger.records
    assert (table.input_tokens, table.cached_input_tokens, table.output_tokens) == (10_000, 8_000, 500)
    assert table.cost == pytest.approx((2_000 * 2.00 + 8_000 * 0.50 + 500 * 8.00) / 1e6)
    assert override.cost == pytest.approx((2_000 * 1.0 + 8_000 * 0.1 + 500 * 4.0) / 1e6)
    assert ledger.total().cached_input_tokens == 16_000 and not table.estimated


def test_cached_prices():
    assert cost("gpt-4o-mini", 1_000_000, 0, cached_input_tokens=1_000_000) == pytest.approx(0.075)
    assert cost("gpt-4o-2024-05-13", 1_000_000, 0, cached_input_tokens=1_000_000) == pytest.approx(5.0)  # no discount
    assert cost("x", 100, 0, Price(1.0, 2.0), cached_input_tokens=100) == pytest.approx(100 / 1e6)  # no cached rate
    with pytest.raises(ValueError, match="cached_input_price needs input_price"):
        ModelSpec(model="gpt-4o", cached_input_price=0.1)


# -- answers that are not chat completions ------------------------------------------------------


def _one_line_error(caught: pytest.ExceptionInfo, server) -> str:
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"the coder model 'qwen2.5-coder:32b' at {server.base_url}")
    assert "Error" not in message and "Traceback" not in message
    return message


@BOTH_STREAMS
def test_no_choices_is_retried_then_a_one_line_error(scripted, stream):
    body = {"id": "x", "object": "chat.completion", "choices": []}
    if stream:
        body = "data: " + json.dumps({**body, "object": "chat.completion.chunk"}) + "\n\ndata: [DONE]\n\n"
    server = scripted(
        [{"body": body, "repeat": True, "content_type": "text/event-stream" if stream else "application/json"}]
    )

    with pytest.raises(ModelAnswerError) as caught:
        client(server, stream=stream, max_retries=1).invoke([HumanMessage("hi")])

    message = _one_line_error(caught, server)
    assert "with no choices" in message and "look at the model server's log" in message
    assert message.endswith("(max_retries=1)") and len(server.requests) == 2


@BOTH_STREAMS
def test_an_answer_cut_short_is_retried(scripted, stream):
    server = scripted([{"content": "The answer is long enough to be cut.", "quirks": {"truncate": 60}}, "whole"])

    assert client(server, stream=stream, max_retries=1).invoke([HumanMessage("hi")]).content == "whole"
    assert len(server.requests) == 2


@BOTH_STREAMS
def test_an_answer_always_cut_short_is_a_one_line_error(scripted, stream):
    server = scripted([{"content": "The answer is long enough to be cut.", "quirks": {"truncate": 60}, "repeat": True}])

    with pytest.raises(ModelAnswerError) as caught:
        client(server, stream=stream, max_retries=1).invoke([HumanMessage("hi")])

    assert "cut short" in _one_line_error(caught, server)


@BOTH_STREAMS
def test_a_web_page_with_status_200_names_the_page_and_the_base_url(scripted, stream):
    page = "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>...</body></html>"
    server = scripted([{"body": page, "content_type": "text/html", "repeat": True}])

    with pytest.raises(ModelAnswerError) as caught:
        client(server, stream=stream, max_retries=3).invoke([HumanMessage("hi")])

    message = _one_line_error(caught, server)
    assert "an HTML page titled 'Welcome to nginx!'" in message and "ends in /v1" in message
    assert len(server.requests) == 1  # another try cannot help


def test_a_proxy_error_page_says_the_model_server_behind_it_may_be_down(scripted):
    page = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
    server = scripted([{"body": page, "content_type": "text/html", "status": 502, "repeat": True}])

    with pytest.raises(ModelUnavailableError) as caught:
        client(server, max_retries=1).invoke([HumanMessage("hi")])

    message = _one_line_error(caught, server)
    assert "502 an HTML page titled '502 Bad Gateway' (from a web server or proxy" in message
    assert "look at the model server's log" in message and len(server.requests) == 2


def test_a_base_url_without_v1_is_named(scripted):
    server = scripted([{"body": "404 page not found", "content_type": "text/plain", "status": 404}])

    with pytest.raises(ModelNotFoundError) as caught:
        client(server).invoke([HumanMessage("hi")])

    assert "text '404 page not found'; check that base_url" in _one_line_error(caught, server)


def test_an_error_sent_with_status_200_is_that_error(scripted):
    error = {
        "code": 400,
        "message": "the request exceeds the available context size",
        "type": "exceed_context_size_error",
    }
    server = scripted([{"body": {"error": error}}])

    with pytest.raises(ModelContextError) as caught:
        client(server).invoke([HumanMessage("hi")])

    assert "exceeds the model's context window: the request exceeds the available context size" in _one_line_error(
        caught, server
    )


def test_a_stream_asked_for_and_a_whole_body_sent_says_to_turn_streaming_off(scripted):
    server = scripted(
        [
            {
                "body": {
                    "id": "x",
                    "object": "chat.completion",
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
                    ],
                }
            }
        ]
    )

    with pytest.raises(ModelAnswerError) as caught:
        client(server, stream=True).invoke([HumanMessage("hi")])

    assert "set stream = false" in _one_line_error(caught, server)


def test_json_that_is_not_a_chat_completion(scripted):
    server = scripted([{"body": {"object": "something else"}}])

    with pytest.raises(ModelAnswerError) as caught:
        client(server).invoke([HumanMessage("hi")])

    assert "not a chat completion (no 'choices'; keys: object)" in _one_line_error(caught, server)
