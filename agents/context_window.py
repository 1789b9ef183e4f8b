"""How many tokens a model's context holds: as configured, else as its server says.

Servers that say, each in its own place (the last two at the server's root, not under /v1):
- vLLM: `max_model_len` with each model in GET /v1/models;
- llama.cpp: `default_generation_settings.n_ctx` in GET /props;
- Ollama: `<architecture>.context_length` in the `model_info` of POST /api/show. That is what the
  model can take; Ollama itself cuts prompts at its num_ctx (OLLAMA_CONTEXT_LENGTH) if that is less.
OpenAI's API says nothing either, but publishes its models' windows: those are known here. LM Studio
and most proxies say nothing: the answer is then None, and the caller uses a safe default. A server is
asked once per process for each model.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from typing import Any, NamedTuple

import httpx

from agents.models import OPENAI_BASE_URL, ModelSpec
from agents.pricing import lookup

# Seconds per question: the server answers from memory, and a server that is down must not hold the caller.
PROBE_TIMEOUT = 5.0


class ContextWindow(NamedTuple):
    tokens: int
    source: str  # "configured", "OpenAI's model list", "vLLM /v1/models", "llama.cpp /props" or "Ollama /api/show"


# Input plus output tokens, as OpenAI's model pages give them (checked 2025-08).
OPENAI_WINDOWS: dict[str, int] = {
    "gpt-4o": 128_000, "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576, "gpt-4.1-mini": 1_047_576, "gpt-4.1-nano": 1_047_576,
    "o3": 200_000, "o3-mini": 200_000, "o4-mini": 200_000,
    "gpt-5": 400_000, "gpt-5-mini": 400_000, "gpt-5-nano": 400_000,
}


# What each server said, per (base URL, model).
_lock = threading.Lock()
_known: dict[tuple[str, str], ContextWindow | None] = {}


def context_window(spec: ModelSpec) -> int | None:
    """The model's context window in tokens, or None when neither the spec nor the server says."""
    found = context_window_info(spec)
    return found.tokens if found else None


def context_window_info(spec: ModelSpec) -> ContextWindow | None:
    """The context window and where it came from."""
    if spec.context_window is not None:
        return ContextWindow(spec.context_window, "configured")
    if spec.base_url is None or spec.base_url.rstrip("/") == OPENAI_BASE_URL:
        tokens = lookup(OPENAI_WINDOWS, spec.model)
        return ContextWindow(tokens, "OpenAI's model list") if tokens else None
    return _discovered(spec.base_url.rstrip("/"), spec.model, os.environ.get(spec.api_key_env, "").strip())


def server_root(base_url: str) -> str:
    """The server's own address: the base URL without its OpenAI-compatible /v1."""
    return base_url.rstrip("/").removesuffix("/v1")


@cache
def _probe_http() -> httpx.Client:
    # One client for every question of the process: making one (its TLS context) costs more than asking.
    return httpx.Client(timeout=PROBE_TIMEOUT, follow_redirects=True)


def ask_server(method: str, url: str, api_key: str, **kwargs: Any) -> httpx.Response:
    """A quick question to a model server (raises httpx errors)."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    return _probe_http().request(method, url, headers=headers, **kwargs)


def listed_models(base_url: str, api_key: str) -> list[dict[str, Any]]:
    """The `data` of GET {base_url}/models; raises httpx errors, and ValueError for an answer that is not a list."""
    response = ask_server("GET", f"{base_url.rstrip('/')}/models", api_key)
    response.raise_for_status()
    data = response.json().get("data")
    if not isinstance(data, list):
        raise ValueError("GET /models answered without a 'data' list")
    return [entry for entry in data if isinstance(entry, dict)]


def _discovered(base_url: str, model: str, api_key: str) -> ContextWindow | None:
    key = (base_url, model)
    with _lock:
        if key in _known:
            return _known[key]
    root = server_root(base_url)
    answered = False
    found = None
    for source, ask in (
        ("vLLM /v1/models", lambda: _from_model_list(listed_models(base_url, api_key), model)),
        ("llama.cpp /props", lambda: _from_props(ask_server("GET", f"{root}/props", api_key))),
        ("Ollama /api/show", lambda: _from_ollama(ask_server("POST", f"{root}/api/show", api_key,
                                                             json={"model": model}))),
    ):
        try:
            tokens = ask()
        except (httpx.HTTPStatusError, ValueError, AttributeError):
            answered = True  # but it is not this kind of server
            continue
        except httpx.HTTPError:
            continue
        answered = True
        if tokens:
            found = ContextWindow(tokens, source)
            break
    if answered:  # a server that is down now may say tomorrow
        with _lock:
            _known[key] = found
    return found


def _from_model_list(models: list[dict[str, Any]], model: str) -> int | None:
    for entry in models:
        if entry.get("id") == model:
            return _positive(entry.get("max_model_len"))
    return None


def _from_props(response: httpx.Response) -> int | None:
    response.raise_for_status()
    return _positive((response.json().get("default_generation_settings") or {}).get("n_ctx"))


def _from_ollama(response: httpx.Response) -> int | None:
    response.raise_for_status()
    info = response.json().get("model_info") or {}
    return next((_positive(v) for k, v in info.items() if k.endswith(".context_length") and _positive(v)), None)


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
