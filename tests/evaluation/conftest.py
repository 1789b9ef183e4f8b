"""Fixtures of the evaluation tests: a sandbox backend, and the mini-suite's scripted model over HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from agents.scripted_model import ScriptedModelServer
from orchestrator.apps.evaluation import mini_suite


@pytest.fixture
def bubblewrap() -> str:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    return "bubblewrap"


@pytest.fixture
def mini_suite_server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(mini_suite.SCRIPT) as server:
        yield server
