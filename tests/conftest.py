"""Shared test set-up: isolation from the user's config, no silent skips in CI, the Docker daemon and image."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import docker

# CI sets these when the backend is present on the machine: a skipped test of that
# backend then means something is broken, so it is reported as a failure.
REQUIRED_MARKERS = {"docker": "SHIPYARD_REQUIRE_DOCKER", "bubblewrap": "SHIPYARD_REQUIRE_BUBBLEWRAP"}


def pytest_collection_finish(session: pytest.Session) -> None:
    # What the imports made lives as long as the process: the collector need not walk it again at every
    # full collection (the LangChain, pydantic and SQLAlchemy heap made each one cost a good part of a second).
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads ~/.config/shipyard or writes the user's state dir."""
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    for name in list(os.environ):
        if name.startswith("SHIPYARD_") and not name.startswith("SHIPYARD_REQUIRE_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    """The machine's Docker daemon; the test is skipped when none answers."""
    import docker  # here: only the Docker tests pay for importing docker-py

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker daemon answers: {exc}")
    return client


@pytest.fixture(scope="module")
def image(client: docker.DockerClient) -> str:
    """Shipyard's sandbox image, built if missing."""
    from sandboxes.image_build import DEFAULT_TAG, build_image

    build_image(DEFAULT_TAG)  # returns at once when the image is up to date
    return DEFAULT_TAG


@pytest.fixture(scope="session")
def mcp_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `mcp` SDK, copied once, for the test MCP server to run with in sandboxes (tests/mcpkit.py)."""
    from mcpkit import copy_sdk  # here: only the MCP tests pay for importing the SDK

    sdk = tmp_path_factory.mktemp("mcp") / "sdk"
    copy_sdk(sdk)
    return sdk


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if not report.skipped:
        return
    for marker, flag in REQUIRED_MARKERS.items():
        if item.get_closest_marker(marker) and os.environ.get(flag):
            report.outcome = "failed"
            report.longrepr = (f"skipped although {flag} is set (the {marker} backend should work here): "
                               f"{report.longrepr}")
