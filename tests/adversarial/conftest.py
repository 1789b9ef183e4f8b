"""Fixtures of the adversarial suite: the backends present, host secrets, hostile trees."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import BACKENDS, HostSecrets, LoopbackServer, host_secrets, make_big_tree, outside_tmp, require_backend

# Sandbox cases run on every backend present; each carries its backend's marker.
BACKEND_PARAMS = [pytest.param(name, marks=getattr(pytest.mark, name), id=name) for name in BACKENDS]


@pytest.fixture(params=BACKEND_PARAMS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return require_backend(request.param)


@pytest.fixture
def secrets_planted() -> Iterator[HostSecrets]:
    with host_secrets() as planted:
        yield planted


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory outside /tmp (see kit.outside_tmp)."""
    with outside_tmp() as path:
        yield path


@pytest.fixture(scope="session")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 files, made once per session."""
    return make_big_tree(tmp_path_factory.mktemp("big") / "tree", 100_000)
