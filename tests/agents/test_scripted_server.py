"""The scripted model server as any OpenAI client sees it: the raw SDK and plain HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage

from agents.model_errors import ModelContextError
from agents.models import ROLE_HEADER, ModelClient, ModelSpec
from agents.scripted_model import Script, ScriptedModelServer, ScriptError
from agents.tokens import count_messages, count_tools


def sdk(server, role: str | None = None) -> openai.OpenAI:
    headers = {ROLE_HEADER: role} if role else None
    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0, default_headers=headers)


def ask(client: openai.OpenAI, text: str, **kwargs):
    return client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": text}], **kwargs)


def test_sdk_plain_completion(scripted):
    server = scripted([{"content": "hello", "usage": {"prompt_tokens": 7, "completion_tokens": 1}}])

    completion = ask(sdk(server), "hi")

    assert completion.choices[0].message.content == "hello"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        7,
        1,
        8,
    )
    assert completion.model == "scripted"


def test_sdk_tool_calls(scripted):
    server = scripted(
        [{"tool_calls": [{"name": "view", "arguments": {"path": "README.md"}}, {"name": "bad", "arguments": "{oops"}]}]
    )

    message = ask(sdk(server), "look").choices[0]

    assert message.finish_reason == "tool_calls"
    calls = message.message.tool_calls
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_0_0_0", "view", '{"path": "README.md"}'),
        ("call_0_0_1", "bad", "{oops"),  # a string is sent verbatim
    ]


def test_sdk_stream_with_tool_call_deltas_and_usage(scripted):
    arguments = {"path": "src/app.py", "old": "return 1", "new": "return 2"}
    server = scripted(
        [{"content": "Editing the file now.", "tool_calls": [{"name": "edit_file", "arguments": arguments}]}]
    )

    chunks = list(ask(sdk(server), "edit", stream=True, stream_options={"include_usage": True}))

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Editing the file now."
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert deltas[0].index == 0 and deltas[0].id == "call_0_0_0" and deltas[0].function.name == "edit_file"
    assert all(d.index == 0 and d.id is None for d in deltas[1:])
    assert len(deltas) > 2  # the arguments arrive in pieces
    assert json.loads("".join(d.function.arguments for d in deltas)) == arguments
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(scripted):
    server = scripted(["a fairly long answer that spans several chunks"])

    chunks = list(ask(sdk(server), "hi", stream=True))

    assert all(c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "a fairly long answer that spans several chunks"


def test_models_endpoint(scripted):
    server = scripted(
        [{"match": {"model": "qwen2.5-coder"}, "content": "x"}, {"match": {"model": "gpt-4o"}, "content": "y"}]
    )

    assert [m.id for m in sdk(server).models.list()] == ["gpt-4o", "qwen2.5-coder"]


def _raw(server, stream: bool = False, **body) -> httpx.Response:
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream, **body}
    return httpx.post(f"{server.base_url}/chat/completions", json=request)


def _events(response: httpx.Response) -> list:
    data = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    return [json.loads(d) for d in data if d != "[DONE]"]


def test_quirks_of_tool_calls_as_sent(scripted):
    calls = [{"name": "view", "arguments": {"path": "a"}}, {"name": "view", "arguments": {"path": "b"}}]
    quirks = {"arguments_as_object": True, "omit_tool_call_ids": True, "omit_tool_call_index": True, "omit_usage": True}
    server = scripted([{"tool_calls": calls, "finish_reason": "stop", "quirks": quirks, "repeat": True}])

    whole = _raw(server).json()
    streamed = _events(_raw(server, stream=True, stream_options={"include_usage": True}))

    (choice,) = whole["choices"]
    assert choice["finish_reason"] == "stop" and "usage" not in whole
    assert [c["function"] for c in choice["message"]["tool_calls"]] == [
        {"name": "view", "arguments": {"path": "a"}}, {"name": "view", "arguments": {"path": "b"}}
    ]
    assert all("id" not in c for c in choice["message"]["tool_calls"])
    deltas = [d for c in streamed for d in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [d["function"]["arguments"] for d in deltas] == [{"path": "a"}, {"path": "b"}]
    assert all("index" not in d and "id" not in d for d in deltas)
    assert all(c["choices"] and "usage" not in c for c in streamed)


def test_reasoning_and_cached_tokens_as_sent(scripted):
    usage = {"prompt_tokens": 100, "completion_tokens": 5, "cached_tokens": 64}
    server = scripted([{"reasoning_content": "first think, then answer", "content": "answer", "usage": usage,
                        "repeat": True}])

    whole = _raw(server).json()
    streamed = _events(_raw(server, stream=True, stream_options={"include_usage": True}))

    assert whole["choices"][0]["message"]["reasoning_content"] == "first think, then answer"
    assert whole["usage"]["prompt_tokens_details"] == {"cached_tokens": 64}
    deltas = [c["choices"][0]["delta"] for c in streamed if c["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "first think, then answer"
    assert "".join(d.get("content", "") for d in deltas) == "answer"
    assert streamed[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 64}


@pytest.mark.parametrize("stream", [False, True])
def test_truncate_cuts_the_answer_after_so_many_bytes(scripted, stream):
    server = scripted([{"content": "a long answer, long enough to be cut", "quirks": {"truncate": 50}}])

    response = _raw(server, stream=stream)

    assert response.status_code == 200 and len(response.content) == 50


def test_raw_bodies_have_their_content_type(scripted):
    server = scripted([{"body": "<html><title>502 Bad Gateway</title></html>", "status": 502,
                        "content_type": "text/html"}])

    response = _raw(server)

    assert (response.status_code, response.headers["content-type"]) == (502, "text/html; charset=utf-8")
    assert response.text == "<html><title>502 Bad Gateway</title></html>"


def test_the_server_kind_answers_its_own_context_window_questions(scripted):
    server = scripted({"server": {"kind": "vllm", "context_window": 4096, "models": ["a", "b"]}, "responses": []})
    assert [(m["id"], m["max_model_len"]) for m in httpx.get(f"{server.base_url}/models").json()["data"]] == [
        ("a", 4096), ("b", 4096)
    ]
    assert httpx.get(f"{server.url}/props").status_code == 404

    server = scripted({"server": {"kind": "llama.cpp", "context_window": 8192}, "responses": []})
    assert httpx.get(f"{server.url}/props").json()["default_generation_settings"]["n_ctx"] == 8192
    assert "max_model_len" not in httpx.get(f"{server.base_url}/models").json()["data"][0]

    server = scripted({"server": {"kind": "ollama", "context_window": 16384}, "responses": []})
    info = httpx.post(f"{server.url}/api/show", json={"model": "qwen"}).json()["model_info"]
    assert info["qwen2.context_length"] == 16384
    server = scripted({"responses": []})
    assert httpx.post(f"{server.url}/api/show", json={"model": "qwen"}).status_code == 404


def test_roles_consume_their_own_entries_in_order_whatever_the_interleaving(scripted):
    server = scripted(
        [
            {"match": {"role": "coder"}, "content": "coder 1"},
            {"match": {"role": "planner"}, "content": "planner 1"},
            {"match": {"role": "coder"}, "content": "coder 2"},
            {"match": {"role": "reviewer"}, "content": "reviewer 1"},
            {"match": {"role": "planner"}, "content": "planner 2"},
        ]
    )
    answers: dict[str, list[str]] = {"coder": [], "planner": [], "reviewer": []}

    def agent(role: str, calls: int) -> None:
        client = sdk(server, role)
        for _ in range(calls):
            answers[role].append(ask(client, "go").choices[0].message.content)

    # Reviewer first, then the others in parallel: arrival order must not matter.
    agent("reviewer", 1)
    threads = [threading.Thread(target=agent, args=(role, 2)) for role in ("planner", "coder")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert answers == {
        "coder": ["coder 1", "coder 2"],
        "planner": ["planner 1", "planner 2"],
        "reviewer": ["reviewer 1"],
    }
    assert server.pending == []


def test_match_on_message_contents_last_role_and_model(scripted):
    server = scripted(
        [
            {"match": {"last_role": "tool", "last_message_contains": "FAILED test_x"}, "content": "fix the test"},
            {"match": {"any_message_contains": "secret plan"}, "content": "saw the plan"},
            {"match": {"model": "small"}, "content": "small model"},
            {"match": {"last_role": "user"}, "content": "from the user"},
        ]
    )
    client = sdk(server)
    tool_turn = [
        {"role": "user", "content": "the secret plan"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "1 FAILED test_x"},
    ]

    def answer(messages, model="big"):
        return client.chat.completions.create(model=model, messages=messages).choices[0].message.content

    assert answer(tool_turn) == "fix the test"
    assert answer(tool_turn) == "saw the plan"  # the first entry is used up; the plan is earlier in the history
    assert answer([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], model="small") == "small model"
    assert answer([{"role": "user", "content": "hi"}]) == "from the user"


def test_repeat_entries_stay(scripted):
    server = scripted([{"match": {"role": "coder"}, "content": "again", "repeat": True}, {"content": "once"}])

    assert [ask(sdk(server, "coder"), "x").choices[0].message.content for _ in range(3)] == ["again"] * 3
    assert ask(sdk(server), "x").choices[0].message.content == "once"
    assert server.pending == []


def test_unmatched_request_is_a_400_naming_role_and_last_message(scripted):
    server = scripted([{"match": {"role": "planner"}, "content": "plan"}])

    response = httpx.post(
        f"{server.base_url}/chat/completions",
        headers={ROLE_HEADER: "coder"},
        json={"model": "m", "messages": [{"role": "tool", "tool_call_id": "c", "content": "exit code 1"}]},
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unmatched_request"
    assert "role='coder'" in error["message"] and "last message (tool): 'exit code 1'" in error["message"]
    assert "#0 [role='planner'] -> content 'plan'" in error["message"]
    assert [(r.entry, r.status) for r in server.requests] == [(None, 400)]


def test_error_entries_carry_status_code_and_retry_after(scripted):
    server = scripted(
        [
            {"status": 429, "retry_after": 1.5, "message": "slow down"},
            {"status": 502, "body": "<html>bad gateway</html>"},
        ]
    )

    limited = httpx.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": []})
    gateway = httpx.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": []})

    assert limited.status_code == 429
    assert (limited.headers["retry-after"], limited.headers["retry-after-ms"]) == ("1.5", "1500")
    assert limited.json()["error"] == {
        "message": "slow down",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert (gateway.status_code, gateway.text) == (502, "<html>bad gateway</html>")


def test_a_request_over_the_context_window_is_refused_as_openai_does(scripted):
    server = scripted({"context_window": 200, "responses": ["short enough"]})
    tools = [{"type": "function", "function": {"name": "view_file", "description": "show a file", "parameters": {}}}]
    short = [{"role": "user", "content": "hello"}]
    long = [{"role": "user", "content": "word " * 300}]

    refused = httpx.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": long})
    breakdown = httpx.post(
        f"{server.base_url}/chat/completions", json={"model": "m", "messages": short, "max_tokens": 199}
    )
    answered = httpx.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": short, "tools": tools})

    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "message": f"This model's maximum context length is 200 tokens. However, your messages resulted in "
        f"{count_messages(long)} tokens. Please reduce the length of the messages or completion.",
        "type": "invalid_request_error",
        "param": None,
        "code": "context_length_exceeded",
    }
    tokens = count_messages(short)
    assert (
        f"you requested {tokens + 199} tokens ({tokens} in the messages, 199 in the completion)"
        in (breakdown.json()["error"]["message"])
    )
    assert answered.json()["choices"][0]["message"]["content"] == "short enough"  # refusals use up no entry
    assert [(r.status, r.tokens) for r in server.requests] == [
        (400, count_messages(long)),
        (400, tokens),
        (200, tokens + count_tools(tools)),
    ]


def test_a_context_window_refusal_is_a_model_context_error(scripted):
    server = scripted({"context_window": 100, "responses": ["never"]})
    model = ModelClient(ModelSpec(base_url=server.base_url, model="m", max_retries=0), role="coder")

    with pytest.raises(ModelContextError, match="maximum context length is 100 tokens"):
        model.invoke([HumanMessage("word " * 200)])


def test_request_log_and_reset_over_http(scripted):
    server = scripted(["first"])
    ask(sdk(server, "coder"), "hello")

    log = httpx.get(f"{server.url}/_shipyard/requests").json()
    assert [(r["seq"], r["role"], r["entry"], r["status"]) for r in log] == [(1, "coder", 0, 200)]
    assert log[0]["body"]["messages"] == [{"role": "user", "content": "hello"}]

    assert httpx.post(f"{server.url}/_shipyard/reset", json={"responses": ["second", "third"]}).json()["entries"] == 2
    assert server.requests == []
    assert httpx.get(f"{server.url}/_shipyard/pending").json()["pending"][1] == {
        "index": 1,
        "entry": "[any request] -> content 'third'",
    }
    assert ask(sdk(server), "again").choices[0].message.content == "second"
    assert httpx.post(f"{server.url}/_shipyard/reset", json={"responses": [{"bogus": 1}]}).status_code == 400
    assert httpx.post(f"{server.url}/_shipyard/reset", json="/etc/passwd").status_code == 400  # data, never a path


@pytest.mark.parametrize(
    "body", [b"not json", b'{"model": "m"}', b'{"model": "m", "messages": ["hi"]}', b'{"model": 4, "messages": []}']
)
def test_a_malformed_body_is_rejected_and_recorded(scripted, body):
    server = scripted(["unused"])

    response = httpx.post(f"{server.base_url}/chat/completions", content=body)

    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_body"
    assert server.requests[0].status == 400 and server.pending == [0]


def test_script_file_formats(tmp_path):
    yaml_file = tmp_path / "script.yaml"
    yaml_file.write_text(
        "latency: 0.01\n"
        "responses:\n"
        "  - match: {role: planner}\n"
        "    content: the plan\n"
        "  - tool_calls:\n"
        "      - {name: edit_file, arguments: {path: a.py}}\n"
        "  - just text\n"
        "  - {status: 429, retry_after: 0.1}\n"
    )
    script = Script.load(yaml_file)
    assert script.latency == 0.01
    assert [e.describe() for e in script.responses] == [
        "[role='planner'] -> content 'the plan'",
        "[any request] -> tool calls edit_file",
        "[any request] -> content 'just text'",
        "[any request] -> error 429",
    ]
    json_file = tmp_path / "script.json"
    json_file.write_text(json.dumps(["a", {"content": "b", "repeat": True}]))
    assert [e.content for e in Script.load(json_file).responses] == ["a", "b"]


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ([{"status": 500, "content": "x"}], "cannot also have content"),
        ([{"match": {"role": "coder"}}], "needs content, tool_calls"),
        ([{"content": "x", "match": {"rol": "coder"}}], "rol"),
        ({"responses": [], "latncy": 1}, "latncy"),
        ([{"content": "x", "quirks": {"truncate_at": 3}}], "truncate_at"),
        ({"server": {"kind": "tgi"}, "responses": []}, "server.kind"),
    ],
)
def test_invalid_scripts_are_refused_with_the_reason(data, complaint):
    with pytest.raises(ScriptError, match=complaint):
        Script.load(data)


def test_unreadable_script_file_names_the_path(tmp_path):
    with pytest.raises(ScriptError, match="missing.yaml: cannot read the script"):
        Script.load(tmp_path / "missing.yaml")


def test_latency_delays_the_answer(scripted):
    server = scripted({"latency": 0.2, "responses": ["slow", {"content": "fast", "latency": 0}]})
    client = sdk(server)

    started = time.monotonic()
    ask(client, "1")
    slow = time.monotonic() - started
    started = time.monotonic()
    ask(client, "2")
    assert slow >= 0.2 > time.monotonic() - started


def test_runs_as_a_command(tmp_path):
    script = tmp_path / "demo.yaml"
    script.write_text("responses:\n  - {match: {model: demo-model}, content: from the command line}\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.scripted_model", str(script), "--port", str(port)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        deadline = time.monotonic() + 120  # a loaded machine can take long to start Python
        while True:
            try:
                completion = client.chat.completions.create(
                    model="demo-model", messages=[{"role": "user", "content": "hi"}]
                )
                break
            except openai.APIConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        assert completion.choices[0].message.content == "from the command line"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_bad_script_on_the_command_line_exits_2(tmp_path):
    script = tmp_path / "bad.yaml"
    script.write_text("responses: [{status: 500, content: x}]\n")

    result = subprocess.run(
        [sys.executable, "-m", "agents.scripted_model", str(script)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert result.returncode == 2
    assert "bad.yaml: not a valid script" in result.stderr


def test_server_starts_on_an_ephemeral_port_and_stops():
    with ScriptedModelServer(["bye"]) as server:
        assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
        assert ask(sdk(server), "hi").choices[0].message.content == "bye"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/models")


def test_an_abandoned_request_gives_a_redeliver_entry_back() -> None:
    """A client that goes away mid-answer (killed, timed out) finds the answer again when it asks again."""
    with ScriptedModelServer([{"content": "slow", "latency": 0.5, "redeliver": True}]) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.base_url}/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]},
                       timeout=0.1)
        deadline = time.monotonic() + 60
        while server.requests[0].status != 499 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.requests[0].status == 499
        assert server.pending == [0]
        hello = {"messages": [{"role": "user", "content": "hi"}]}
        again = httpx.post(f"{server.base_url}/chat/completions", json=hello)
        assert again.json()["choices"][0]["message"]["content"] == "slow"
        assert server.pending == []
