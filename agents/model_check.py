"""Whether a role's model can do an agent's work, asked of its endpoint (`shipyard models check`).

One tiny chat completion with one tool says at once whether the endpoint is reachable, knows the
model and calls tools, natively or only in its text; /v1/models and agents.context_window add
whether the model is listed and how large its context is.
"""

from __future__ import annotations

import os

import httpx
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from agents.context_window import ContextWindow, context_window_info, listed_models
from agents.model_errors import ModelError, one_line
from agents.model_replies import TEXT_TOOL_CALLS_KEY
from agents.models import OPENAI_BASE_URL, ModelClient, ModelSpec, Role

PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "report_ready",
        "description": "Report that you can call tools.",
        "parameters": {"type": "object", "properties": {"ready": {"type": "boolean"}}, "required": ["ready"]},
    },
}
PROBE_MESSAGES = [
    SystemMessage("You are being checked before real work. Answer only with a tool call."),
    HumanMessage("Call the tool report_ready with ready set to true."),
]
NO_TOOLS_HINT = (
    "the agents need tool calls: turn on the server's tool-call parser (vLLM: --enable-auto-tool-choice "
    "--tool-call-parser NAME; llama.cpp: --jinja) or choose a model made for tool calling"
)


class ModelCheck(BaseModel):
    role: str
    model: str
    base_url: str
    problem: str | None = None  # why the role cannot work; None when it can
    tools: str | None = None  # "native", or the syntax the model writes its calls in
    listed: bool | None = None  # in /v1/models; None when the server lists no models
    context: ContextWindow | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        """What will happen with this role, in one line."""
        head = f"{self.role}: {self.model} at {self.base_url} —"
        if self.problem is not None:
            return f"{head} will not work: {self.problem}"
        parts = ["reachable", "tools native" if self.tools == "native" else f"tools via text ({self.tools})"]
        if self.listed is False:
            parts.append("not listed in /v1/models")
        parts.append(_context_text(self.context))
        return f"{head} {', '.join(parts)}"


def check_model(spec: ModelSpec, role: Role) -> ModelCheck:
    """Probe the endpoint of `role`: one chat completion with one tool, its model list, its context window."""
    check = ModelCheck(role=role, model=spec.model, base_url=spec.base_url or OPENAI_BASE_URL)
    try:
        # No retries: a check says what is wrong now, and quickly.
        client = ModelClient(spec.model_copy(update={"max_retries": 0}), role)
    except ModelError as exc:
        check.problem = str(exc)
        return check
    try:
        reply = client.invoke(PROBE_MESSAGES, tools=[PROBE_TOOL])
    except ModelError as exc:
        # The line names role, model and endpoint already.
        check.problem = str(exc).removeprefix(client.where).removeprefix(":").strip()
        return check
    if not reply.tool_calls:
        said = one_line(reply.content if isinstance(reply.content, str) else str(reply.content), 60)
        check.problem = f"reachable, but it answered {said!r} instead of calling the offered tool: {NO_TOOLS_HINT}"
        return check
    check.tools = reply.additional_kwargs.get(TEXT_TOOL_CALLS_KEY, "native")
    check.listed = _listed(spec, check.base_url)
    check.context = context_window_info(spec)
    return check


def _listed(spec: ModelSpec, base_url: str) -> bool | None:
    try:
        ids = {entry.get("id") for entry in listed_models(base_url, os.environ.get(spec.api_key_env, "").strip())}
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return spec.model in ids if ids else None


def _context_text(context: ContextWindow | None) -> str:
    if context is None:
        return "context not reported (a safe default applies; set context_window to say it)"
    if context.source == "configured":
        return f"context {context.tokens} (configured)"
    if context.source.startswith("Ollama"):
        return f"context {context.tokens} (Ollama cuts prompts at its num_ctx if less: set OLLAMA_CONTEXT_LENGTH)"
    return f"context {context.tokens}"
