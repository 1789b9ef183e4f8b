"""Helpers of the core tests: the graph, the pipeline, the roles and the loop in this process, with a fake
chat model (the scripted server's script format, answered without HTTP) and the `local` sandbox on real
git repos. No Docker, no bubblewrap, no server: these run in seconds on any machine."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.fake_model import FakeModels
from agents.models import ModelSpec
from orchestrator.config.settings import load_settings
from orchestrator.runtime.director import Director
from sandboxes.base import SandboxSpec
from sandboxes.local import LocalBackend, LocalSandbox

MakeDirector = Callable[..., tuple[Director, FakeModels]]
# The context window of a fake model whose script sets none: more than any core test sends.
FAKE_WINDOW = 1_000_000


def director_maker(tmp_path: Path) -> tuple[MakeDirector, list[Director]]:
    """A Director whose agents answer from `script` in this process, in local sandboxes."""
    made: list[Director] = []

    def make(script: Any, models: FakeModels | None = None, priced: bool = False,
             sandbox_env: dict[str, str] | None = None, **settings: Any) -> tuple[Director, FakeModels]:
        fake = models or FakeModels(script)
        prices = {"input_price": 1.0, "output_price": 1.0} if priced else {}  # USD per million tokens
        base = load_settings(tmp_path)
        sandbox = base.sandbox.model_copy(update={"backend": "local", "env": sandbox_env or {}})
        # The fake's window is the script's (it refuses longer requests, as the scripted server does); stated, so
        # that no agent asks fake.invalid for it.
        spec = ModelSpec(base_url="http://fake.invalid/v1", model="fake",
                         context_window=fake.script.script.context_window or FAKE_WINDOW, **prices)
        config = base.model_copy(update={"state_dir": tmp_path / "state", "sandbox": sandbox,
                                         "models": {"default": spec}, **settings})
        director = Director(config, models=fake)
        made.append(director)
        return director, fake

    return make, made


def local_sandbox(workspace: Path) -> LocalSandbox:
    return LocalBackend().start(SandboxSpec(workspace=workspace))


def by_hand(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`argv` run in `cwd` as one would check a result by hand, but without the pytest plugins installed here
    (hypothesis, langsmith, textual's...): the projects under test use none, and loading them costs seconds."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
