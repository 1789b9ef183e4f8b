"""Fixtures for the model layer: a scripted model server over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agents.scripted_model import ScriptedModelServer


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[ScriptedModelServer]:
    # One server for the session: starting and stopping uvicorn costs ~0.15 s a test.
    with ScriptedModelServer([]) as server:
        yield server


@pytest.fixture
def scripted(scripted_server: ScriptedModelServer) -> Callable[[Any], ScriptedModelServer]:
    """Load a script (list, dict, Script or path) into the scripted server, with an empty request log."""

    def load(script: Any) -> ScriptedModelServer:
        scripted_server.reset(script)
        return scripted_server

    return load


@pytest.fixture(autouse=True)
def no_real_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests must behave the same whether or not the developer has real keys exported.
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(name, raising=False)
