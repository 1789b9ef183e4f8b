"""The scripted model as an OpenAI-compatible HTTP server, in a thread or as a command.

Endpoints: POST /v1/chat/completions (plain and streaming), GET /v1/models, the context
window as the server kind of the script's `server` reports it (GET /props for llama.cpp,
POST /api/show for Ollama), and for tests GET /_shipyard/requests, GET /_shipyard/pending
and POST /_shipyard/reset (an optional JSON body replaces the script).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

import uvicorn
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agents.models import ROLE_HEADER
from agents.scripted_model.render import Reply, error_body
from agents.scripted_model.script import ChatRequest, Entry, Script, describe_request
from agents.tokens import count_messages, count_text, count_tools

# Request headers worth keeping in the log: who asked, and which retry this was.
RECORDED_HEADERS = (ROLE_HEADER.lower(), "authorization", "user-agent", "x-stainless-retry-count")


class RecordedRequest(BaseModel):
    """One chat completion request as the server saw it, and what it answered."""

    seq: int
    time: float
    role: str | None
    model: str | None
    stream: bool
    headers: dict[str, str]
    body: Any
    entry: int | None  # index of the script entry that answered; None if none matched
    status: int
    tokens: int | None = None  # the prompt's tokens (messages and tools), counted with agents.tokens

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []


class ScriptedModel:
    """The state behind the app: the script being replayed and the request log.

    Handlers run on the server's event loop while tests read and reset from their own
    thread, so every access goes through one lock (never held across an await).
    """

    def __init__(self, script: Script):
        self._lock = threading.Lock()
        self.reset(script)

    def reset(self, script: Script | None = None) -> None:
        """Forget the log and replay the script (or a new one) from the start."""
        with self._lock:
            if script is not None:
                self.script = script
            self._used: set[int] = set()
            self._served: Counter[int] = Counter()
            self._log: list[RecordedRequest] = []

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    @property
    def pending(self) -> list[int]:
        """Indices of entries not used yet (repeat entries never are)."""
        with self._lock:
            return [i for i, e in enumerate(self.script.responses) if i not in self._used and not e.repeat]

    def take(self, request: ChatRequest) -> tuple[int, Entry, int] | None:
        """The entry that answers `request` (index, entry, times served before), used up."""
        with self._lock:
            for index, entry in enumerate(self.script.responses):
                if index not in self._used and entry.match.fits(request):
                    if not entry.repeat:
                        self._used.add(index)
                    nth = self._served[index]
                    self._served[index] += 1
                    return index, entry, nth
            return None

    def release(self, index: int, seq: int) -> None:
        """Give back the entry of a request whose client went away before the answer (status 499).

        A client killed mid-request (a crash test) will ask again when it resumes; the
        answer it never received must still be there for it.
        """
        with self._lock:
            self._used.discard(index)
            self._served[index] -= 1
            self._log[seq - 1] = self._log[seq - 1].model_copy(update={"status": 499})

    def record(self, request: Request, body: Any, entry: int | None, status: int, tokens: int | None = None) -> int:
        headers = {name: request.headers[name] for name in RECORDED_HEADERS if name in request.headers}
        if "authorization" in headers:
            headers["authorization"] = _mask(headers["authorization"])
        fields = body if isinstance(body, dict) else {}
        with self._lock:
            seq = len(self._log) + 1
            self._log.append(
                RecordedRequest(
                    seq=seq,
                    time=time.time(),
                    role=request.headers.get(ROLE_HEADER),
                    model=fields.get("model") if isinstance(fields.get("model"), str) else None,
                    stream=bool(fields.get("stream")),
                    headers=headers,
                    body=body,
                    entry=entry,
                    status=status,
                    tokens=tokens,
                )
            )
            return seq

    def describe_pending(self) -> str:
        entries = self.script.responses
        pending = [f"#{i} {entries[i].describe()}" for i in self.pending]
        repeats = [f"#{i} {e.describe()}" for i, e in enumerate(entries) if e.repeat]
        return "; ".join(pending + repeats) or "none (the script is used up)"


def _mask(authorization: str) -> str:
    # A real key may be sent to a scripted server by mistake; never keep it whole.
    scheme, _, key = authorization.partition(" ")
    return f"{scheme} {key[:3]}...{key[-4:]}" if len(key) > 12 else authorization


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, None), status_code=status)


def _not_found(request: Request) -> Response:
    # What a server of another kind answers: plain text, as Go's and Python's web servers do.
    return Response(f"404 page not found: {request.url.path}", status_code=404, media_type="text/plain")


def _chat_request(request: Request, body: Any) -> ChatRequest | None:
    if not isinstance(body, dict):
        return None
    try:
        return ChatRequest(
            role=request.headers.get(ROLE_HEADER), model=body.get("model"), messages=body.get("messages")
        )
    except ValidationError:
        return None


def too_long(window: int | None, tokens: int, body: dict[str, Any]) -> str | None:
    """OpenAI's words for a request over the context window, or None if it fits (or there is no window)."""
    completion = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    if window is None or tokens + completion <= window:
        return None
    if completion:
        asked = f"you requested {tokens + completion} tokens ({tokens} in the messages, {completion} in the completion)"
    else:
        asked = f"your messages resulted in {tokens} tokens"
    return (
        f"This model's maximum context length is {window} tokens. However, {asked}. "
        "Please reduce the length of the messages or completion."
    )


def create_app(model: ScriptedModel) -> Starlette:
    async def chat_completions(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = (await request.body()).decode("utf-8", "replace")
        chat = _chat_request(request, body)
        if chat is None:
            model.record(request, body, None, 400)
            return _error(400, "scripted model: the body must be a JSON object with a 'messages' list", "invalid_body")

        tokens = count_messages(chat.messages) + count_tools(body.get("tools"))
        refusal = too_long(model.script.context_window, tokens, body)
        if refusal is not None:
            model.record(request, body, None, 400, tokens)
            return _error(400, refusal, "context_length_exceeded")

        taken = model.take(chat)
        if taken is None:
            model.record(request, body, None, 400, tokens)
            message = (
                f"scripted model: no script entry matches this request: {describe_request(chat)}. "
                f"Unused entries: {model.describe_pending()}"
            )
            return _error(400, message, "unmatched_request")

        index, entry, nth = taken
        seq = model.record(request, body, index, entry.status, tokens)
        latency = entry.latency if entry.latency is not None else model.script.latency
        if latency:
            await asyncio.sleep(latency)
            if entry.redeliver and await request.is_disconnected():
                model.release(index, seq)
                return Response(status_code=499)

        headers = {}
        if entry.retry_after is not None:
            headers = {"retry-after": f"{entry.retry_after:g}", "retry-after-ms": str(round(entry.retry_after * 1000))}
        truncate = entry.quirks.truncate
        if entry.body is not None:
            raw = entry.body.encode() if isinstance(entry.body, str) else json.dumps(entry.body).encode()
            return Response(raw[:truncate], status_code=entry.status, media_type=entry.content_type, headers=headers)
        if entry.is_error:
            content = error_body(entry.status, entry.message, entry.code, chat.model)
            return JSONResponse(content, status_code=entry.status, headers=headers)

        reply = Reply(entry, chat, body.get("tools"), seq, index, nth)
        if not body.get("stream"):
            return Response(json.dumps(reply.completion()).encode()[:truncate], media_type="application/json")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def events() -> AsyncIterator[bytes]:
            sent = 0
            for event in [*(json.dumps(chunk) for chunk in reply.chunks(include_usage)), "[DONE]"]:
                data = f"data: {event}\n\n".encode()
                if truncate is not None:  # the stream stops there, as from a server that died
                    data = data[: max(truncate - sent, 0)]
                    if not data:
                        return
                sent += len(data)
                yield data

        return StreamingResponse(events(), media_type="text/event-stream")

    async def models(request: Request) -> Response:
        endpoint = model.script.server
        names = endpoint.models or sorted({e.match.model for e in model.script.responses if e.match.model})
        vllm = endpoint.kind == "vllm" and endpoint.context_window
        extra = {"max_model_len": endpoint.context_window} if vllm else {}
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "shipyard-scripted", **extra}
            for name in names or ["scripted"]
        ]
        return JSONResponse({"object": "list", "data": data})

    async def props(request: Request) -> Response:
        endpoint = model.script.server
        if endpoint.kind != "llama.cpp":
            return _not_found(request)
        return JSONResponse({"default_generation_settings": {"n_ctx": endpoint.context_window}, "total_slots": 1})

    async def ollama_show(request: Request) -> Response:
        endpoint = model.script.server
        if endpoint.kind != "ollama":
            return _not_found(request)
        info = {"general.architecture": "qwen2"}
        if endpoint.context_window:
            info["qwen2.context_length"] = endpoint.context_window
        return JSONResponse({"modelfile": "", "parameters": "", "template": "", "model_info": info})

    async def requests(request: Request) -> Response:
        return JSONResponse([r.model_dump() for r in model.requests])

    async def pending(request: Request) -> Response:
        entries = model.script.responses
        return JSONResponse({"pending": [{"index": i, "entry": entries[i].describe()} for i in model.pending]})

    async def reset(request: Request) -> Response:
        raw = await request.body()
        try:
            data = json.loads(raw) if raw.strip() else None
            # Only data: a string would be taken as a path to read on this machine.
            if data is not None and not isinstance(data, (dict, list)):
                raise ValueError("the body must be a script (a JSON object or list)")
            model.reset(None if data is None else Script.load(data))
        except ValueError as exc:  # ScriptError and JSONDecodeError alike
            return _error(400, f"scripted model: reset refused: {exc}", "invalid_script")
        return JSONResponse({"ok": True, "entries": len(model.script.responses)})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/props", props, methods=["GET"]),
            Route("/api/show", ollama_show, methods=["POST"]),
            Route("/_shipyard/requests", requests, methods=["GET"]),
            Route("/_shipyard/pending", pending, methods=["GET"]),
            Route("/_shipyard/reset", reset, methods=["POST"]),
        ]
    )


class ScriptedModelServer:
    """A scripted model on 127.0.0.1, served from a background thread.

    with ScriptedModelServer([{"content": "hi"}]) as server:
        ModelSpec(base_url=server.base_url, model="gpt-4o-mini")
    """

    def __init__(
        self, script: Script | Path | str | list[Any] | dict[str, Any], host: str = "127.0.0.1", port: int = 0
    ):
        self.model = ScriptedModel(Script.load(script))
        self.host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as its base URL."""
        return f"{self.url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.model.requests

    @property
    def pending(self) -> list[int]:
        return self.model.pending

    def reset(self, script: Script | Path | str | list[Any] | dict[str, Any] | None = None) -> None:
        self.model.reset(None if script is None else Script.load(script))

    def start(self, timeout: float = 10.0) -> Self:
        # Binding here, not in uvicorn, gives the ephemeral port before the thread starts.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.model),
            log_level="warning",
            access_log=False,
            lifespan="off",
            # Handlers still sleeping for clients that timed out must not delay stop().
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="scripted-model", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"the scripted model server did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(script_path: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve a script file in the foreground until interrupted (for `shipyard scripted-model serve`)."""
    model = ScriptedModel(Script.load(script_path))
    # As a model server loads its tokenizer before it listens: the first request must not pay for it.
    count_text("")
    print(f"scripted model: {len(model.script.responses)} entries from {script_path}; base URL http://{host}:{port}/v1")
    uvicorn.run(create_app(model), host=host, port=port, log_level="info", lifespan="off")
