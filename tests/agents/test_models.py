"""The model layer against the scripted model server, over real HTTP."""

from __future__ import annotations

import socket
import threading

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, ValidationError

from agents.model_errors import ModelAuthError, ModelContextError, ModelError, ModelNotFoundError, ModelUnavailableError
from agents.models import ModelClient, ModelSpec
from agents.pricing import Price, cost, price_for
from agents.usage import UsageLedger

EDIT_ARGS = {"path": "a.py", "old": "x = 1", "new": "x = 2"}


@tool
def edit_file(path: str, old: str, new: str) -> str:
    """Replace `old` by `new` in the file at `path`."""
    return "ok"


class RunCommand(BaseModel):
    """Run a shell command in the sandbox."""

    cmd: str


def client(server, role="coder", ledger=None, **spec) -> ModelClient:
    spec.setdefault("model", "gpt-4o-mini")
    return ModelClient(ModelSpec(base_url=server.base_url, **spec), role, ledger)


def test_plain_content_sends_role_header_and_a_dummy_key(scripted):
    server = scripted([{"match": {"role": "planner"}, "content": "1. read the code\n2. fix it"}])

    reply = client(server, role="planner").invoke([SystemMessage("You plan."), HumanMessage("Fix the bug")])

    assert isinstance(reply, AIMessage)
    assert reply.content == "1. read the code\n2. fix it"
    assert reply.tool_calls == []
    (request,) = server.requests
    assert request.role == "planner"
    assert request.model == "gpt-4o-mini"
    assert request.headers["authorization"] == "Bearer no-key"  # no key in the env: local servers need none
    assert [m["role"] for m in request.messages] == ["system", "user"]


def test_sampling_settings_are_sent(scripted):
    server = scripted(["ok"])

    client(server, temperature=0.2, max_tokens=256).invoke([HumanMessage("hi")])

    body = server.requests[0].body
    assert (body["temperature"], body["max_completion_tokens"], body["stream"]) == (0.2, 256, False)


def test_the_key_comes_from_the_env_var_named_in_the_spec(scripted, monkeypatch):
    monkeypatch.setenv("VLLM_KEY", "sk-test-0123456789abcd")
    server = scripted(["ok"])

    client(server, api_key_env="VLLM_KEY").invoke([HumanMessage("hi")])

    assert server.requests[0].headers["authorization"] == "Bearer sk-...abcd"  # the server masks it


def test_openai_without_a_key_fails_at_once():
    with pytest.raises(ModelAuthError, match=r"\$OPENAI_API_KEY is not set"):
        ModelClient(ModelSpec(model="gpt-4o"), "planner")


def test_tool_calls_are_parsed_with_dict_arguments(scripted):
    server = scripted(
        [
            {
                "tool_calls": [
                    {"name": "edit_file", "arguments": EDIT_ARGS},
                    {"name": "RunCommand", "arguments": {"cmd": "pytest -q"}},
                ]
            }
        ]
    )

    reply = client(server).invoke([HumanMessage("make x 2")], tools=[edit_file, RunCommand])

    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("edit_file", EDIT_ARGS),
        ("RunCommand", {"cmd": "pytest -q"}),
    ]
    assert [c["id"] for c in reply.tool_calls] == ["call_0_0_0", "call_0_0_1"]  # deterministic
    sent = server.requests[0].body["tools"]
    assert [t["function"]["name"] for t in sent] == ["edit_file", "RunCommand"]


def test_a_tool_result_conversation_round_trips(scripted):
    server = scripted(
        [
            {"match": {"last_role": "user"}, "tool_calls": [{"name": "edit_file", "arguments": EDIT_ARGS}]},
            {"match": {"last_role": "tool", "last_message_contains": "ok"}, "content": "done"},
        ]
    )
    model = client(server)
    history = [HumanMessage("make x 2")]
    first = model.invoke(history, tools=[edit_file])
    history += [first, ToolMessage("ok", tool_call_id=first.tool_calls[0]["id"])]

    assert model.invoke(history, tools=[edit_file]).content == "done"
    sent = server.requests[1].messages
    assert sent[1]["tool_calls"][0]["function"]["name"] == "edit_file"
    assert sent[2] == {"role": "tool", "content": "ok", "tool_call_id": "call_0_0_0"}


def test_malformed_tool_arguments_become_invalid_tool_calls(scripted):
    server = scripted([{"tool_calls": [{"name": "edit_file", "arguments": '{"path": "a.py", '}]}])

    reply = client(server).invoke([HumanMessage("edit")], tools=[edit_file])

    assert reply.tool_calls == []
    assert reply.invalid_tool_calls[0]["name"] == "edit_file"
    assert reply.invalid_tool_calls[0]["args"] == '{"path": "a.py", '


def test_streaming_with_content_and_tool_calls(scripted):
    text = "I will change the constant and then run the tests."
    server = scripted(
        [
            {
                "content": text,
                "tool_calls": [{"name": "edit_file", "arguments": EDIT_ARGS}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 30},
            }
        ]
    )
    ledger = UsageLedger()

    reply = client(server, ledger=ledger, stream=True).invoke([HumanMessage("make x 2")], tools=[edit_file])

    assert isinstance(reply, AIMessage)
    assert reply.content == text
    assert [(c["name"], c["args"], c["id"]) for c in reply.tool_calls] == [("edit_file", EDIT_ARGS, "call_0_0_0")]
    assert (reply.usage_metadata["input_tokens"], reply.usage_metadata["output_tokens"]) == (120, 30)
    body = server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert ledger.total().input_tokens == 120 and not ledger.records[0].estimated


def test_usage_and_cost_are_booked_per_role_and_model(scripted):
    usage = {"prompt_tokens": 1000, "completion_tokens": 500}
    server = scripted(
        [
            {"match": {"role": "planner"}, "content": "plan", "usage": usage},
            {"match": {"role": "coder"}, "content": "code", "usage": usage},
            {"match": {"role": "reviewer"}, "content": "approve", "usage": usage},
        ]
    )
    ledger = UsageLedger()
    client(server, role="planner", ledger=ledger, model="gpt-4o-mini").invoke([HumanMessage("plan")])
    client(server, role="coder", ledger=ledger, model="qwen2.5-coder:7b").invoke([HumanMessage("code")])
    client(
        server, role="reviewer", ledger=ledger, model="my-azure-deployment", input_price=1.0, output_price=2.0
    ).invoke([HumanMessage("review")])

    planner, coder, reviewer = ledger.records
    assert planner.cost == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6) and planner.priced
    assert coder.cost == 0.0 and not coder.priced  # a local model: free, and said to be unpriced
    assert reviewer.cost == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6) and reviewer.priced
    assert all(u.latency > 0 for u in ledger.records)
    assert set(ledger.by_role()) == {"planner", "coder", "reviewer"}
    assert ledger.by_model()["qwen2.5-coder:7b"].unpriced_calls == 1
    total = ledger.total()
    assert (total.calls, total.input_tokens, total.output_tokens) == (3, 3000, 1500)
    assert total.cost == pytest.approx(planner.cost + reviewer.cost)


def test_estimated_usage_is_deterministic(scripted):
    server = scripted([{"content": "abcdefgh", "repeat": True}])
    model = client(server)
    first = model.invoke([HumanMessage("12345678")]).usage_metadata
    second = model.invoke([HumanMessage("12345678")]).usage_metadata
    assert first["input_tokens"] == second["input_tokens"] == 2
    assert first["output_tokens"] == second["output_tokens"] == 2


def test_one_ledger_is_shared_by_parallel_agents(scripted):
    server = scripted([{"content": "ok", "usage": {"prompt_tokens": 10, "completion_tokens": 1}, "repeat": True}])
    ledger = UsageLedger()
    models = [
        ModelClient(ModelSpec(base_url=server.base_url, model="gpt-4o"), "coder", ledger, agent=f"coder-{i}")
        for i in range(8)
    ]

    threads = [threading.Thread(target=lambda m=m: [m.invoke([HumanMessage("go")]) for _ in range(3)]) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert ledger.total().calls == 24 and ledger.total().input_tokens == 240
    assert {name: totals.calls for name, totals in ledger.by_agent().items()} == {f"coder-{i}": 3 for i in range(8)}


@pytest.mark.parametrize("stream", [False, True])
def test_retries_a_429_honouring_retry_after(scripted, stream):
    server = scripted([{"status": 429, "retry_after": 0.05}, "recovered"])

    assert client(server, stream=stream).invoke([HumanMessage("hi")]).content == "recovered"

    first, second = server.requests
    assert (first.status, second.status) == (429, 200)
    assert [r.headers["x-stainless-retry-count"] for r in (first, second)] == ["0", "1"]
    # Retry-After said 0.05 s; the SDK's own backoff would have waited at least 0.375 s.
    assert 0.05 <= second.time - first.time < 0.35


def test_retries_a_500_with_exponential_backoff(scripted):
    server = scripted([{"status": 500}, "recovered"])

    assert client(server).invoke([HumanMessage("hi")]).content == "recovered"

    first, second = server.requests
    assert (first.status, second.status) == (500, 200)
    assert second.time - first.time >= 0.3  # 0.5 s less up to 25 % jitter


def test_exhausted_retries_raise_model_unavailable(scripted):
    server = scripted([{"status": 503, "retry_after": 0.01, "repeat": True}])

    with pytest.raises(ModelUnavailableError) as caught:
        client(server, max_retries=2).invoke([HumanMessage("hi")])

    assert len(server.requests) == 3
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"the coder model 'gpt-4o-mini' at {server.base_url} is unavailable: 503")
    assert message.endswith("(max_retries=2)")


def test_refused_key_is_a_clear_auth_error_and_not_retried(scripted, monkeypatch):
    monkeypatch.setenv("SHIPYARD_TEST_KEY", "sk-wrong-0123456789")
    server = scripted([{"status": 401}])

    with pytest.raises(ModelAuthError) as caught:
        client(server, api_key_env="SHIPYARD_TEST_KEY").invoke([HumanMessage("hi")])

    assert str(caught.value).startswith(f"the key in $SHIPYARD_TEST_KEY was refused by {server.base_url} (401: ")
    assert len(server.requests) == 1


def test_refusal_without_a_key_says_the_variable_is_unset(scripted):
    server = scripted([{"status": 403}])

    with pytest.raises(ModelAuthError, match=r"refused the request \(403\): \$OPENAI_API_KEY is not set"):
        client(server).invoke([HumanMessage("hi")])


def test_unknown_model_is_model_not_found(scripted):
    server = scripted([{"status": 404}])

    with pytest.raises(
        ModelNotFoundError,
        match="not found .404.: unknown model name or wrong base URL: The model `gpt-9` does not exist",
    ):
        client(server, model="gpt-9").invoke([HumanMessage("hi")])


@pytest.mark.parametrize(
    "entry",
    [
        {
            "status": 400,
            "code": "context_length_exceeded",
            "message": "This model's maximum context length is 128000 tokens.",
        },
        # vLLM says it without a code
        {
            "status": 400,
            "message": "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
        },
    ],
)
def test_context_overflow_is_a_context_error(scripted, entry):
    server = scripted([entry])

    with pytest.raises(
        ModelContextError, match="exceeds the model's context window: This model's maximum context length"
    ):
        client(server).invoke([HumanMessage("a very long conversation")])


def test_other_rejections_are_model_errors_with_the_endpoint_message(scripted):
    server = scripted([{"status": 422, "message": "tools are not supported by this model"}])

    with pytest.raises(ModelError, match=r"rejected the request \(422\): tools are not supported by this model"):
        client(server).invoke([HumanMessage("hi")])


def test_timeouts_are_retried_then_reported(scripted):
    server = scripted(
        [{"content": "too late", "latency": 0.6}, "in time", {"content": "too late", "latency": 0.6, "repeat": True}]
    )
    model = client(server, timeout=0.25, max_retries=1)

    assert model.invoke([HumanMessage("hi")]).content == "in time"
    with pytest.raises(ModelUnavailableError, match=r"did not answer within 0.25s \(max_retries=1\)"):
        model.invoke([HumanMessage("hi")])


def test_unreachable_endpoint_is_unavailable():
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = ModelClient(ModelSpec(base_url=f"http://127.0.0.1:{port}/v1", model="llama3", max_retries=0), "coder")

    with pytest.raises(
        ModelUnavailableError,
        match=f"the coder model 'llama3' at http://127.0.0.1:{port}/v1 cannot be reached: .*Connection refused",
    ):
        model.invoke([HumanMessage("hi")])


def test_an_unmatched_request_names_role_and_last_message(scripted):
    server = scripted([{"match": {"role": "planner"}, "content": "plan"}])

    with pytest.raises(ModelError) as caught:
        client(server, role="reviewer").invoke([HumanMessage("please review the diff")])

    message = str(caught.value)
    assert "no script entry matches this request: role='reviewer'" in message
    assert "'please review the diff'" in message
    assert "#0 [role='planner'] -> content 'plan'" in message
    assert server.requests[0].entry is None


def test_spec_prices_come_in_pairs():
    with pytest.raises(ValidationError, match="both input_price and output_price"):
        ModelSpec(model="x", input_price=1.0)
    assert ModelSpec(model="x", input_price=1.0, output_price=3.0).price_override == Price(1.0, 3.0)


def test_price_table():
    assert cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini")
    assert price_for("gpt-4o-2024-05-13") == Price(5.0, 15.0)
    assert price_for("qwen2.5-coder:32b") is None and cost("qwen2.5-coder:32b", 10**6, 10**6) == 0.0
    assert cost("qwen2.5-coder:32b", 10**6, 0, Price(0.5, 1.0)) == pytest.approx(0.5)


def test_the_warm_up_needs_no_api_key(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agents.models import warm_up

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    warm_up()  # on its thread, a raise would print a traceback at the start of every job
